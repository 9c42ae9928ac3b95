"""Encoding in chunks into a .npy file, chunk helpers and the cache's remember=False mode."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mtl_hybrid import SentenceEncoder, clear_memory_cache
from mtl_hybrid.cache import _MEMORY, EmbeddingCache
from mtl_hybrid.streaming import NpyWriter, iter_chunks


@pytest.fixture(scope="module")
def texts(clothing):
    return clothing["text"].head(12).tolist()


def test_npy_equals_transform(texts, tmp_path):
    encoder = SentenceEncoder().fit()
    clear_memory_cache()
    streamed = encoder.transform_to_npy((text for text in texts), tmp_path / "embeddings.npy", chunk_size=5)
    assert isinstance(streamed, np.memmap)
    assert streamed.shape == (12, 384)
    np.testing.assert_allclose(streamed, encoder.transform(texts), atol=1e-5)
    assert np.load(tmp_path / "embeddings.npy").shape == (12, 384)


def test_npy_skips_memory_cache(texts, tmp_path):
    encoder = SentenceEncoder().fit()
    clear_memory_cache()
    encoder.transform_to_npy(texts, tmp_path / "embeddings.npy", chunk_size=5)
    assert len(_MEMORY.get(encoder._cache().namespace, {})) == 0
    assert encoder.cache_stats_.encoded == 12


def test_npy_fills_disk_cache(texts, tmp_path):
    clear_memory_cache()
    SentenceEncoder(cache_dir=tmp_path).fit().transform_to_npy(texts, tmp_path / "embeddings.npy", chunk_size=5)
    reader = SentenceEncoder(cache_dir=tmp_path).fit()
    reader.transform(texts)
    assert reader.cache_stats_.disk_hits == 12
    assert reader.cache_stats_.encoded == 0


def test_npy_invalid_row_named(texts, tmp_path):
    bad = texts[:7] + [None] + texts[7:]
    with pytest.raises(ValueError, match=re.escape("row 7: None")):
        SentenceEncoder().fit().transform_to_npy(iter(bad), tmp_path / "embeddings.npy", chunk_size=5)
    assert list(tmp_path.iterdir()) == []


def test_npy_dataframe_column(texts, tmp_path):
    encoder = SentenceEncoder().fit()
    streamed = encoder.transform_to_npy(pd.DataFrame({"text": texts[:3]}), tmp_path / "embeddings.npy")
    np.testing.assert_allclose(streamed, encoder.transform(texts[:3]), atol=1e-5)


def test_npy_single_string_rejected(tmp_path):
    with pytest.raises(TypeError, match="wrap it in a list"):
        SentenceEncoder().fit().transform_to_npy("one review", tmp_path / "embeddings.npy")


@pytest.mark.parametrize("chunk_size", [0, 2.5, True])
def test_npy_bad_chunk_size(chunk_size, tmp_path):
    with pytest.raises(ValueError, match="chunk_size must be an integer of at least 1"):
        SentenceEncoder().fit().transform_to_npy(["text"], tmp_path / "embeddings.npy", chunk_size=chunk_size)


def test_npy_writer_rows(tmp_path):
    path = tmp_path / "rows.npy"
    with NpyWriter(path, 3) as writer:
        writer.append(np.arange(6).reshape(2, 3))
        writer.append(np.zeros((0, 3)))
        writer.append(np.ones((1, 3)))
    np.testing.assert_array_equal(np.load(path), [[0, 1, 2], [3, 4, 5], [1, 1, 1]])


def test_npy_writer_empty(tmp_path):
    with NpyWriter(tmp_path / "rows.npy", 4):
        pass
    assert np.load(tmp_path / "rows.npy").shape == (0, 4)


def test_npy_writer_wrong_width(tmp_path):
    with pytest.raises(ValueError, match=r"rows must have shape \(n, 3\), got \(2, 4\)"):
        with NpyWriter(tmp_path / "rows.npy", 3) as writer:
            writer.append(np.zeros((2, 4)))
    assert list(tmp_path.iterdir()) == []


def test_npy_writer_keeps_old_file(tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, np.ones((1, 2)))
    with pytest.raises(RuntimeError):
        with NpyWriter(path, 2) as writer:
            writer.append(np.zeros((5, 2)))
            raise RuntimeError("interrupted")
    np.testing.assert_array_equal(np.load(path), np.ones((1, 2)))


def test_iter_chunks():
    assert list(iter_chunks(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(iter_chunks([], 3)) == []


def test_cache_remember_false():
    clear_memory_cache()
    cache = EmbeddingCache("test-remember")

    def compute(batch):
        return np.array([[len(text), 1.0] for text in batch], dtype=np.float32)

    vectors = cache.get_or_compute(["ab", "abc", "ab"], compute, remember=False)
    np.testing.assert_array_equal(vectors, [[2, 1], [3, 1], [2, 1]])
    assert _MEMORY["test-remember"] == {}
    assert cache.stats.encoded == 2
