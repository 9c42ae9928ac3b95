"""MultiTaskClassifier: task handling, missing labels and output shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from mtl_hybrid import MultiTaskClassifier, XGBoostHead


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    Y = pd.DataFrame(
        {
            "category": np.where(X[:, 0] > 0, "books", "kitchen"),
            "sentiment": np.array(["negative", "neutral", "positive"])[np.argmax(X[:, 1:4], axis=1)],
        }
    )
    return X, Y


def test_dataframe_in_dataframe_out(data):
    X, Y = data
    model = MultiTaskClassifier(LogisticRegression()).fit(X, Y)
    predicted = model.predict(X)
    assert isinstance(predicted, pd.DataFrame)
    assert list(predicted.columns) == ["category", "sentiment"]
    assert model.tasks_ == ["category", "sentiment"]


def test_array_in_array_out(data):
    X, Y = data
    predicted = MultiTaskClassifier(LogisticRegression()).fit(X, Y.to_numpy()).predict(X)
    assert isinstance(predicted, np.ndarray)
    assert predicted.shape == (200, 2)


def test_one_dimensional_single_task(data):
    X, Y = data
    model = MultiTaskClassifier(LogisticRegression()).fit(X, Y["category"].to_numpy())
    assert model.predict(X).shape == (200,)
    assert model.classes_.tolist() == ["books", "kitchen"]
    assert model.predict_proba(X).shape == (200, 2)


def test_missing_labels_skip_task_rows(data):
    X, Y = data
    Y = Y.copy()
    Y.loc[:49, "sentiment"] = None
    Y.loc[50:59, "category"] = np.nan
    model = MultiTaskClassifier(DummyClassifier(strategy="prior")).fit(X, Y)
    expected_sentiment = Y["sentiment"].iloc[50:].value_counts(normalize=True).sort_index().to_numpy()
    expected_category = Y["category"].drop(index=range(50, 60)).value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(model.estimators_["sentiment"].class_prior_, expected_sentiment)
    np.testing.assert_allclose(model.estimators_["category"].class_prior_, expected_category)


def test_dict_of_estimators(data):
    X, Y = data
    model = MultiTaskClassifier({"category": LogisticRegression(), "sentiment": XGBoostHead(n_estimators=20)}).fit(X, Y)
    assert isinstance(model.estimators_["category"], LogisticRegression)
    assert isinstance(model.estimators_["sentiment"], XGBoostHead)


def test_dict_missing_task_rejected(data):
    X, Y = data
    with pytest.raises(ValueError, match="no entry for task 'sentiment'"):
        MultiTaskClassifier({"category": LogisticRegression()}).fit(X, Y)


def test_predict_proba_per_task(data):
    X, Y = data
    probabilities = MultiTaskClassifier(LogisticRegression()).fit(X, Y).predict_proba(X)
    assert [p.shape for p in probabilities] == [(200, 2), (200, 3)]


def test_score_mean_macro_f1(data):
    X, Y = data
    model = MultiTaskClassifier(LogisticRegression()).fit(X, Y)
    predicted = model.predict(X)
    expected = np.mean([f1_score(Y[task], predicted[task], average="macro") for task in Y])
    assert model.score(X, Y) == pytest.approx(expected)


def test_length_mismatch_rejected(data):
    X, Y = data
    with pytest.raises(ValueError, match="200 rows in X, 150 in y"):
        MultiTaskClassifier().fit(X, Y.head(150))


def test_single_class_task_rejected(data):
    X, Y = data
    Y = Y.assign(sentiment="positive")
    with pytest.raises(ValueError, match="task 'sentiment' has only one class: 'positive'"):
        MultiTaskClassifier(LogisticRegression()).fit(X, Y)


def test_all_missing_task_rejected(data):
    X, Y = data
    with pytest.raises(ValueError, match="Task 'sentiment' has no labels"):
        MultiTaskClassifier(LogisticRegression()).fit(X, Y.assign(sentiment=None))


def test_empty_input_rejected():
    with pytest.raises(ValueError, match="0 sample"):
        MultiTaskClassifier().fit(np.empty((0, 3)), pd.DataFrame({"a": []}))
