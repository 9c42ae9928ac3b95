"""XGBoostHead on synthetic features and on real MiniLM embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_hybrid import SentenceEncoder, XGBoostHead


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    y = np.array(["books", "dvd", "kitchen"])[np.argmax(X[:, :3], axis=1)]
    return X, y


def test_string_labels(blobs):
    X, y = blobs
    head = XGBoostHead(n_estimators=60).fit(X, y)
    assert head.classes_.tolist() == ["books", "dvd", "kitchen"]
    assert set(head.predict(X)) <= set(head.classes_)
    assert (head.predict(X) == y).mean() > 0.9


def test_probabilities_sum_to_one(blobs):
    X, y = blobs
    probabilities = XGBoostHead(n_estimators=30).fit(X, y).predict_proba(X[:20])
    assert probabilities.shape == (20, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_early_stopping_keeps_best_round(blobs):
    X, _ = blobs
    noise = np.random.default_rng(1).choice(["a", "b"], size=len(X))
    head = XGBoostHead(n_estimators=300, early_stopping_rounds=5).fit(X, noise)
    assert head.best_iteration_ < 300


def test_no_early_stopping_uses_all_rounds(blobs):
    X, y = blobs
    head = XGBoostHead(n_estimators=25, early_stopping_rounds=None).fit(X, y)
    assert head.best_iteration_ == 25
    assert head.booster_.get_booster().num_boosted_rounds() == 25


def test_balanced_weights_favour_minority():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    y = np.where(X[:, 0] + rng.normal(scale=1.5, size=400) > 2.2, "negative", "positive")
    plain = XGBoostHead(n_estimators=50, early_stopping_rounds=None).fit(X, y)
    balanced = XGBoostHead(n_estimators=50, early_stopping_rounds=None, class_weight="balanced").fit(X, y)
    assert (balanced.predict(X) == "negative").sum() > (plain.predict(X) == "negative").sum()


def test_xgb_params_passed_through(blobs):
    X, y = blobs
    head = XGBoostHead(n_estimators=10, xgb_params={"max_leaves": 7, "grow_policy": "lossguide"}).fit(X, y)
    assert head.booster_.get_params()["max_leaves"] == 7
    assert head.booster_.get_params()["grow_policy"] == "lossguide"


def test_single_class_rejected(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="only one class: 'books'"):
        XGBoostHead().fit(X, np.full(len(X), "books"))


def test_seed_reproducible(blobs):
    X, y = blobs
    first = XGBoostHead(n_estimators=40, random_state=3).fit(X, y).predict_proba(X)
    second = XGBoostHead(n_estimators=40, random_state=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)


def test_real_embeddings_sentiment(clothing):
    encoder = SentenceEncoder().fit()
    X = encoder.transform(clothing["text"])
    y = clothing["category"].to_numpy()
    head = XGBoostHead(n_estimators=100).fit(X[:140], y[:140])
    accuracy = (head.predict(X[140:]) == y[140:]).mean()
    majority = max((y[140:] == label).mean() for label in set(y))
    assert accuracy > majority
