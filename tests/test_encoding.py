"""SentenceEncoder on the real all-MiniLM-L6-v2 model."""

from __future__ import annotations

import logging
import re
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from mtl_hybrid import SentenceEncoder, clear_memory_cache
from mtl_hybrid.encoding import shared_model


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder().fit()


@pytest.fixture(scope="module")
def texts(clothing):
    return clothing["text"].head(12).tolist()


def test_transform_shape(encoder, texts):
    embeddings = encoder.transform(texts)
    assert embeddings.shape == (12, 384)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_similar_reviews_closer(encoder):
    a, b, c = encoder.transform(["This dress fits perfectly", "The dress fits me well", "The blender broke after a week"])
    assert a @ b > a @ c


def test_input_types_agree(encoder, texts):
    expected = encoder.transform(texts)
    for variant in (np.array(texts, dtype=object), pd.Series(texts), pd.DataFrame({"text": texts}), tuple(texts)):
        np.testing.assert_array_equal(encoder.transform(variant), expected)


def test_clone_reuses_cache(encoder, texts):
    encoder.transform(texts)
    copy = clone(encoder).fit()
    copy.transform(texts)
    assert copy.cache_stats_.encoded == 0
    assert copy.cache_stats_.memory_hits == len(texts)


def test_clones_share_model(encoder):
    copy = clone(encoder).fit()
    assert shared_model(copy.model_name_or_path, copy.device) is shared_model(encoder.model_name_or_path, encoder.device)


def test_disk_cache_survives_memory_clear(tmp_path, texts):
    first = SentenceEncoder(cache_dir=tmp_path).fit()
    expected = first.transform(texts)
    clear_memory_cache()

    second = SentenceEncoder(cache_dir=tmp_path).fit()
    embeddings = second.transform(texts)
    assert second.cache_stats_.encoded == 0
    assert second.cache_stats_.disk_hits == len(texts)
    np.testing.assert_array_equal(embeddings, expected)


def test_options_change_cache_key(encoder, texts):
    encoder.transform(texts[:3])
    short = SentenceEncoder(max_seq_length=8).fit()
    short.transform(texts[:3])
    assert short.cache_stats_.encoded == 3


def test_long_text_truncated():
    encoder = SentenceEncoder(max_seq_length=16).fit()
    head = " ".join(["comfortable"] * 40)
    longer = head + " but the zipper broke and the seams ripped"
    np.testing.assert_allclose(encoder.transform([head])[0], encoder.transform([longer])[0], atol=1e-6)


def test_blank_texts_encoded(encoder, caplog):
    with caplog.at_level(logging.WARNING, logger="mtl_hybrid.encoding"):
        embeddings = encoder.transform(["", "   \n\t", "fine"])
    assert embeddings.shape == (3, 384)
    assert np.isfinite(embeddings).all()
    assert "2 of 3 texts are empty or whitespace-only" in caplog.text


@pytest.mark.parametrize(
    "bad, message",
    [
        (["ok", None], "row 1: None"),
        (["ok", float("nan")], "row 1: nan"),
        (["ok", 3], "row 1: 3 (int)"),
        (pd.DataFrame({"a": ["x"], "b": ["y"]}), "exactly one text column"),
    ],
)
def test_invalid_texts_rejected(encoder, bad, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        encoder.transform(bad)


def test_single_string_rejected(encoder):
    with pytest.raises(TypeError, match="wrap it in a list"):
        encoder.transform("one review")


def test_empty_input(encoder):
    assert encoder.transform([]).shape == (0, 384)


def test_pickle_excludes_model(encoder, texts):
    restored = pickle.loads(pickle.dumps(encoder))
    assert len(pickle.dumps(encoder)) < 10_000
    np.testing.assert_array_equal(restored.transform(texts[:2]), encoder.transform(texts[:2]))


def test_feature_names(encoder, texts):
    names = encoder.get_feature_names_out()
    assert len(names) == 384
    assert names[0] == "sentenceencoder0"
    frame = clone(encoder).set_output(transform="pandas").fit().transform(texts[:2])
    assert list(frame.columns) == list(names)


def test_invalid_param_rejected():
    with pytest.raises(ValueError, match="batch_size"):
        SentenceEncoder(batch_size=0).fit()


def test_damaged_disk_cache_rebuilt(tmp_path, texts):
    encoder = SentenceEncoder(cache_dir=tmp_path).fit()
    path = encoder._cache().disk_path
    path.write_bytes(b"this is not an SQLite database" * 100)
    clear_memory_cache()
    embeddings = SentenceEncoder(cache_dir=tmp_path).fit().transform(texts[:2])
    assert embeddings.shape == (2, 384)
    assert path.with_name(path.name + ".damaged").is_file()


@pytest.mark.parametrize("device, message", [("banana", "is not a torch device"), ("cuda:7", "CUDA is not available")])
def test_invalid_device_rejected(device, message):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("CUDA is available on this machine")
    with pytest.raises(ValueError, match=message):
        SentenceEncoder(device=device).fit()
