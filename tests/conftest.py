"""Shared fixtures: the real datasets (small samples) and the real MiniLM encoder."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mtl_hybrid.datasets import DATA_HOME_VARIABLE, load_reviews  # noqa: E402

TASKS = ["category", "sentiment"]


@pytest.fixture(scope="session", autouse=True)
def onnx_dir(tmp_path_factory) -> Path:
    """A folder of this test session for the exports of the onnx backends."""
    from mtl_hybrid.onnx_backend import ONNX_DIR_VARIABLE

    folder = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ONNX_DIR_VARIABLE, str(folder))
        yield folder


@pytest.fixture(scope="session")
def data_home() -> Path:
    value = os.environ.get(DATA_HOME_VARIABLE)
    if value:
        return Path(value)
    beside_checkout = Path(__file__).resolve().parents[2] / "shared" / "data"
    if beside_checkout.is_dir():
        return beside_checkout
    pytest.fail(f"{DATA_HOME_VARIABLE} must point at the folder of the review CSVs.")


def _sample(frame: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """Take up to ``per_class`` rows of every (category, sentiment) pair."""
    parts = [group.sample(min(len(group), per_class), random_state=seed) for _, group in frame.groupby(TASKS)]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="session")
def clothing(data_home) -> pd.DataFrame:
    """About 180 women's clothing reviews, every category and sentiment present."""
    frame = load_reviews(data_home / "womens_clothing_reviews.csv", extra_columns=["clothing_id"])
    return _sample(frame, per_class=10, seed=0)


@pytest.fixture(scope="session")
def reviews(data_home) -> pd.DataFrame:
    """About 120 multi-domain Amazon reviews (four categories, two sentiments)."""
    frame = load_reviews(data_home / "multi_domain_sentiment.csv", extra_columns=["asin"])
    frame = frame[frame["text"].str.len() < 600]
    return _sample(frame, per_class=15, seed=0)


@pytest.fixture(scope="session")
def clothing_csv(clothing, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "clothing.csv"
    clothing.to_csv(path, index=False)
    return path


def save_tiny_model(folder: Path, model_class, config) -> str:
    """Save a randomly initialised ``model_class(config)`` with the real MiniLM
    tokenizer and mean pooling as a sentence-transformers directory, and return its path."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer

    from mtl_hybrid.encoding import default_model_path

    torch.manual_seed(0)
    model_class(config).save_pretrained(folder / "transformer")
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(folder / "transformer")

    transformer = Transformer(str(folder / "transformer"), max_seq_length=64)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder / "model"))
    return str(folder / "model")


def minilm_vocabulary_size() -> int:
    """Return the vocabulary size of the real MiniLM tokenizer."""
    from transformers import AutoTokenizer

    from mtl_hybrid.encoding import default_model_path

    return AutoTokenizer.from_pretrained(default_model_path()).vocab_size


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT (hidden size 32) with the real MiniLM
    tokenizer, saved as a sentence-transformers directory; fast to fine-tune."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=minilm_vocabulary_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return save_tiny_model(tmp_path_factory.mktemp("tiny"), BertModel, config)
