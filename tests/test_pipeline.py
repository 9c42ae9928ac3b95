"""The hybrid pipeline on real reviews: search, cross-validation and persistence."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline

from mtl_hybrid import MultiTaskClassifier, SentenceEncoder, XGBoostHead, clear_memory_cache
from mtl_hybrid.encoding import shared_model
from mtl_hybrid.persistence import load_pipeline, read_manifest, save_pipeline
from mtl_hybrid.pipeline import make_hybrid_pipeline

TASKS = ["category", "sentiment"]


@pytest.fixture
def encode_counter(monkeypatch):
    """Count every text the shared MiniLM model encodes (the real encode still runs)."""
    model = shared_model()
    counts: Counter = Counter()
    real_encode = model.encode

    def counting_encode(texts, *args, **kwargs):
        counts.update(texts)
        return real_encode(texts, *args, **kwargs)

    monkeypatch.setattr(model, "encode", counting_encode)
    clear_memory_cache()
    return counts


def test_grid_search_encodes_each_text_once(clothing, encode_counter):
    data = clothing.head(90)
    pipeline = Pipeline([("encoder", SentenceEncoder()), ("classifier", MultiTaskClassifier(XGBoostHead(n_estimators=20)))])
    search = GridSearchCV(
        pipeline,
        {"classifier__estimator__max_depth": [2, 3]},
        cv=KFold(3, shuffle=True, random_state=0),
        n_jobs=1,
    )
    search.fit(data["text"], data[TASKS])

    assert set(encode_counter) == set(data["text"])
    assert max(encode_counter.values()) == 1
    assert search.best_params_["classifier__estimator__max_depth"] in (2, 3)


def test_cross_validate_scores(clothing):
    pipeline = Pipeline([("encoder", SentenceEncoder()), ("classifier", MultiTaskClassifier(LogisticRegression(max_iter=500)))])
    result = cross_validate(pipeline, clothing["text"], clothing[TASKS], cv=3)
    assert result["test_score"].shape == (3,)
    assert np.all((result["test_score"] > 0) & (result["test_score"] <= 1))


def test_pipeline_predicts_frame(clothing):
    pipeline = make_hybrid_pipeline().set_params(classifier__estimator__n_estimators=50)
    pipeline.fit(clothing["text"].head(150), clothing[TASKS].head(150))
    predicted = pipeline.predict(clothing["text"].tail(30))
    assert isinstance(predicted, pd.DataFrame)
    assert list(predicted.columns) == TASKS
    assert set(predicted["sentiment"]) <= {"negative", "neutral", "positive"}


def test_save_load_identical(clothing, tmp_path):
    pipeline = make_hybrid_pipeline().set_params(classifier__estimator__n_estimators=40)
    pipeline.fit(clothing["text"], clothing[TASKS])
    save_pipeline(pipeline, tmp_path / "model", metrics={"note": 1.0})

    restored = load_pipeline(tmp_path / "model")
    texts = ["Runs small but lovely fabric", "Returned it, the seams tore"]
    pd.testing.assert_frame_equal(restored.predict(texts), pipeline.predict(texts))
    for before, after in zip(pipeline.predict_proba(texts), restored.predict_proba(texts)):
        np.testing.assert_array_equal(before, after)

    manifest = read_manifest(tmp_path / "model")
    assert manifest["tasks"]["sentiment"] == ["negative", "neutral", "positive"]
    assert manifest["metrics"] == {"note": 1.0}


def test_save_refuses_existing(tmp_path, clothing):
    (tmp_path / "model").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        save_pipeline(make_hybrid_pipeline(), tmp_path / "model")


def test_load_incomplete_directory(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        load_pipeline(tmp_path / "model")


def test_load_damaged_file(clothing, tmp_path):
    pipeline = Pipeline([("encoder", SentenceEncoder()), ("classifier", MultiTaskClassifier(LogisticRegression()))])
    pipeline.fit(clothing["text"].head(60), clothing[TASKS].head(60))
    save_pipeline(pipeline, tmp_path / "model")
    head = tmp_path / "model" / "estimators" / "category.skops"
    data = bytearray(head.read_bytes())
    data[-1] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="category.skops does not match its SHA-256 checksum"):
        load_pipeline(tmp_path / "model")
