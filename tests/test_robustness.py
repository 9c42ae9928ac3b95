"""Arbitrary Unicode input, predictions from many threads, and reproducible training."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.pipeline import Pipeline

from mtl_hybrid import MultiTaskClassifier, SentenceEncoder, TunedXGBoostHead, XGBoostHead, clear_memory_cache
from mtl_hybrid.finetuning import MultiTaskFineTuner
from mtl_hybrid.pipeline import make_hybrid_pipeline

TASKS = ["category", "sentiment"]

# Any code point, lone surrogates and control characters included.
ANY_CHARACTER = st.characters(codec=None)
SPECIAL_TEXTS = st.sampled_from(
    [
        "",
        " \t\n\r ",
        "\x00\x01\x1b[31m\x7f",
        "\u202eevird gnol\u202c reversed",
        "\u05e9\u05de\u05dc\u05d4 \u05d9\u05e4\u05d4 \u0627\u0644\u0641\u0633\u062a\u0627\u0646 \u062c\u0645\u064a\u0644",
        "\U0001f457\U0001f44d\U0001f3fd\u200d\u2640\ufe0f",
        "\ufeff\u200b\u2028\u2029",
        "\ud800 unpaired \udfff",
        "\U0010ffff\U000e0001",
    ]
)
# Long texts are built by repetition: Hypothesis draws a short piece and a count.
LONG_TEXTS = st.builds(lambda piece, count: piece * count, st.text(ANY_CHARACTER, min_size=1, max_size=8), st.integers(500, 5000))
TEXTS = st.one_of(st.text(ANY_CHARACTER, max_size=60), SPECIAL_TEXTS, LONG_TEXTS)

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tiny_encoder(tiny_model):
    return SentenceEncoder(tiny_model).fit()


@pytest.fixture(scope="module")
def tiny_pipeline(tiny_model, clothing):
    pipeline = Pipeline(
        [("encoder", SentenceEncoder(tiny_model)), ("classifier", MultiTaskClassifier(XGBoostHead(n_estimators=20)))]
    )
    return pipeline.fit(clothing["text"], clothing[TASKS])


# ------------------------------------------------------------------ arbitrary Unicode


@FAST
@given(texts=st.lists(TEXTS, max_size=6))
@example(texts=[])
@example(texts=["", "", ""])
@example(texts=["\ud83d"])
def test_encoder_any_unicode(tiny_encoder, texts):
    embeddings = tiny_encoder.transform(texts)
    assert embeddings.shape == (len(texts), tiny_encoder.embedding_dimension_)
    assert np.isfinite(embeddings).all()


@FAST
@given(texts=st.lists(TEXTS, min_size=1, max_size=6))
@example(texts=["\x00"])
@example(texts=["a" * 100_000])
def test_pipeline_predict_any_unicode(tiny_pipeline, texts):
    predicted = tiny_pipeline.predict(texts)
    assert isinstance(predicted, pd.DataFrame)
    assert len(predicted) == len(texts)
    assert predicted["sentiment"].isin(["negative", "neutral", "positive"]).all()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.one_of(st.text(ANY_CHARACTER, max_size=40), SPECIAL_TEXTS), min_size=1, max_size=3))
def test_minilm_any_unicode(texts):
    embeddings = SentenceEncoder().fit().transform(texts)
    assert embeddings.shape == (len(texts), 384)
    assert np.isfinite(embeddings).all()


def test_surrogates_encode_as_replacement(tiny_encoder):
    clear_memory_cache()
    lone, replaced = tiny_encoder.transform(["bad \ud800 byte", "bad \ufffd byte"])
    np.testing.assert_array_equal(lone, replaced)


# ------------------------------------------------------------------ threads


def run_in_threads(function, inputs: list, workers: int = 8) -> list:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, inputs))


def test_threaded_predict_matches_serial(tiny_pipeline, clothing):
    texts = clothing["text"].tolist()[:64]
    chunks = [texts[i::8] for i in range(8)] + [texts] * 4

    clear_memory_cache()
    serial = [tiny_pipeline.predict_proba(chunk) for chunk in chunks]
    serial_labels = [tiny_pipeline.predict(chunk) for chunk in chunks]

    clear_memory_cache()
    threaded = run_in_threads(tiny_pipeline.predict_proba, chunks)
    threaded_labels = run_in_threads(tiny_pipeline.predict, chunks)

    for expected, actual in zip(serial_labels, threaded_labels):
        pd.testing.assert_frame_equal(actual, expected)
    for expected, actual in zip(serial, threaded):
        for task_expected, task_actual in zip(expected, actual):
            np.testing.assert_allclose(task_actual, task_expected, rtol=1e-5, atol=1e-6)


def test_threaded_windows_stay_apart(tiny_model, clothing):
    """Encoders with different token windows share one model; each thread must get
    the embeddings of its own window."""
    texts = [text for text in clothing["text"].tolist() if len(text) > 200][:16]
    short, full = SentenceEncoder(tiny_model, max_seq_length=8).fit(), SentenceEncoder(tiny_model).fit()

    clear_memory_cache()
    expected = {"short": short.transform(texts), "full": full.transform(texts)}
    assert not np.allclose(expected["short"], expected["full"])

    for _ in range(3):
        clear_memory_cache()
        jobs = [("short", short), ("full", full)] * 8
        results = run_in_threads(lambda job: (job[0], job[1].transform(texts)), jobs, workers=8)
        for name, embeddings in results:
            np.testing.assert_allclose(embeddings, expected[name], rtol=1e-5, atol=1e-6)


def test_threaded_finetuner_predict(tiny_model, clothing):
    tuner = MultiTaskFineTuner(tiny_model, epochs=1, max_seq_length=32, show_progress_bar=False)
    tuner.fit(clothing["text"], clothing[TASKS])
    chunks = [clothing["text"].tolist()[i::8] for i in range(8)]

    clear_memory_cache()
    serial = [tuner.predict(chunk) for chunk in chunks]
    clear_memory_cache()
    threaded = run_in_threads(tuner.predict, chunks)
    for expected, actual in zip(serial, threaded):
        pd.testing.assert_frame_equal(actual, expected)


def test_threaded_minilm_encoding(clothing):
    texts = clothing["text"].tolist()[:16]
    encoder = SentenceEncoder().fit()
    clear_memory_cache()
    expected = encoder.transform(texts)
    clear_memory_cache()
    for embeddings in run_in_threads(encoder.transform, [texts] * 8):
        np.testing.assert_array_equal(embeddings, expected)


# ------------------------------------------------------------------ seeds


def test_xgboost_pipeline_same_seed(tiny_model, clothing):
    texts, labels = clothing["text"], clothing[TASKS]
    first = make_hybrid_pipeline(tiny_model, random_state=7).set_params(classifier__estimator__n_estimators=30).fit(texts, labels)
    second = make_hybrid_pipeline(tiny_model, random_state=7).set_params(classifier__estimator__n_estimators=30).fit(texts, labels)
    for task_first, task_second in zip(first.predict_proba(texts), second.predict_proba(texts)):
        np.testing.assert_array_equal(task_first, task_second)
    pd.testing.assert_frame_equal(first.predict(texts), second.predict(texts))


def test_xgboost_pipeline_other_seed(tiny_model, clothing):
    """A different seed changes the model, so the same-seed test can fail."""
    texts, labels = clothing["text"], clothing[TASKS]
    first = make_hybrid_pipeline(tiny_model, random_state=7).set_params(classifier__estimator__n_estimators=30).fit(texts, labels)
    second = make_hybrid_pipeline(tiny_model, random_state=8).set_params(classifier__estimator__n_estimators=30).fit(texts, labels)
    assert not np.array_equal(first.predict_proba(texts)[0], second.predict_proba(texts)[0])


def test_tuned_head_same_seed(tiny_encoder, clothing):
    X = tiny_encoder.transform(clothing["text"])
    y = clothing["sentiment"].to_numpy()
    heads = [TunedXGBoostHead(XGBoostHead(n_estimators=20), n_trials=3, cv=2, random_state=3).fit(X, y) for _ in range(2)]
    assert heads[0].best_params_ == heads[1].best_params_
    np.testing.assert_array_equal(heads[0].predict_proba(X), heads[1].predict_proba(X))


def test_finetuner_same_seed(tiny_model, clothing):
    texts, labels = clothing["text"], clothing[TASKS]
    params = dict(epochs=2, head="mlp", hidden_size=16, max_seq_length=32, show_progress_bar=False, random_state=5)
    first = MultiTaskFineTuner(tiny_model, **params).fit(texts, labels)
    second = MultiTaskFineTuner(tiny_model, **params).fit(texts, labels)
    for name in first.heads_:
        np.testing.assert_array_equal(first.heads_[name], second.heads_[name])
    np.testing.assert_array_equal(first.transform(texts.head(8)), second.transform(texts.head(8)))
    pd.testing.assert_frame_equal(first.predict(texts), second.predict(texts))
