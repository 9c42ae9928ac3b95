"""The onnx and onnx-int8 backends of SentenceEncoder on the real all-MiniLM-L6-v2 model."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import time

import numpy as np
import onnx
import onnxruntime
import pytest
from conftest import minilm_vocabulary_size, save_tiny_model
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense

from mtl_hybrid import SentenceEncoder, clear_memory_cache
from mtl_hybrid.encoding import shared_model
from mtl_hybrid.onnx_backend import (
    DISABLED_OPTIMIZERS,
    MODEL_FILE,
    STALE_STAGING_SECONDS,
    OnnxSentenceModel,
    _publish,
    _session_options,
    calibration_texts,
    export_onnx_model,
    load_onnx_model,
    smooth_activations,
)


@pytest.fixture(scope="module")
def texts(reviews):
    return reviews["text"].head(12).tolist() + [""]


@pytest.fixture(scope="module")
def torch_embeddings(texts):
    return SentenceEncoder().fit().transform(texts)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_matches_torch(texts, torch_embeddings):
    embeddings = SentenceEncoder(backend="onnx").fit().transform(texts)
    assert embeddings.shape == (13, 384)
    assert embeddings.dtype == np.float32
    assert cosines(embeddings, torch_embeddings).min() > 0.9999


def test_int8_close_to_torch(texts, torch_embeddings):
    embeddings = SentenceEncoder(backend="onnx-int8").fit().transform(texts)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert cosines(embeddings, torch_embeddings).mean() > 0.98


def test_export_reused(onnx_dir, caplog):
    SentenceEncoder(backend="onnx-int8").fit()
    folders = {variant: export_onnx_model(quantize=variant == "int8", onnx_dir=onnx_dir) for variant in ("fp32", "int8")}
    modified = {variant: (folder / MODEL_FILE).stat().st_mtime_ns for variant, folder in folders.items()}

    with caplog.at_level(logging.DEBUG, logger="mtl_hybrid.onnx_backend"):
        again = {variant: export_onnx_model(quantize=variant == "int8", onnx_dir=onnx_dir) for variant in ("fp32", "int8")}
    assert again == folders
    assert {variant: (folder / MODEL_FILE).stat().st_mtime_ns for variant, folder in again.items()} == modified
    assert "Exported" not in caplog.text
    assert "Reusing" in caplog.text


def test_int8_export_metadata(onnx_dir):
    fp32 = export_onnx_model(onnx_dir=onnx_dir)
    int8 = export_onnx_model(quantize=True, onnx_dir=onnx_dir)
    metadata = json.loads((int8 / "export.json").read_text())
    assert metadata["variant"] == "int8"
    assert metadata["pooling"] == "mean"
    # The input of the attention and of the feed-forward block in each of the 6 layers.
    assert len(metadata["smoothing"]["activations"]) == 12
    assert metadata["smoothing"]["calibration_texts"] == len(calibration_texts()) == 64
    assert sorted(path.name for path in int8.glob("*.onnx")) == [MODEL_FILE]
    assert (int8 / MODEL_FILE).stat().st_size < 0.4 * (fp32 / MODEL_FILE).stat().st_size


def _run_graph(path, folder, texts) -> np.ndarray:
    model = OnnxSentenceModel(folder)
    model.session = onnxruntime.InferenceSession(
        str(path), _session_options(), providers=["CPUExecutionProvider"], disabled_optimizers=list(DISABLED_OPTIMIZERS)
    )
    return model.encode(texts)


def test_smoothing_keeps_float_output(onnx_dir, texts, tmp_path):
    """Smoothing rescales activations and weights against each other: the float
    graph's embeddings stay the same, while the scaled activations lose the range
    that per-tensor int8 quantisation has to cover."""
    fp32 = export_onnx_model(onnx_dir=onnx_dir)
    model = OnnxSentenceModel(fp32)
    smoothed = tmp_path / "smoothed.onnx"
    names = smooth_activations(
        fp32 / MODEL_FILE, smoothed, model.tokenizer, model.metadata["input_names"], calibration_texts()
    )
    assert len(names) == 12
    np.testing.assert_allclose(_run_graph(smoothed, fp32, texts), model.encode(texts), atol=2e-5)


def test_smoothing_brings_int8_closer(onnx_dir, texts, torch_embeddings, tmp_path):
    """The int8 export with smoothing is closer to PyTorch than the same graph
    quantised without it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = export_onnx_model(quantize=True, onnx_dir=onnx_dir)
    model = OnnxSentenceModel(int8)
    plain = tmp_path / "plain-int8.onnx"
    quantize_dynamic(
        str(export_onnx_model(onnx_dir=onnx_dir) / MODEL_FILE), str(plain), per_channel=True, weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    with_smoothing = cosines(model.encode(texts), torch_embeddings)
    without = cosines(_run_graph(plain, int8, texts), torch_embeddings)
    assert with_smoothing.mean() > without.mean()


def test_sessions_skip_slow_fusion(onnx_dir, tmp_path):
    """ONNX Runtime's SkipLayerNormalization fusion stays off (DISABLED_OPTIMIZERS)."""
    folder = export_onnx_model(quantize=True, onnx_dir=onnx_dir)
    options = _session_options()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(
        str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(DISABLED_OPTIMIZERS)
    )
    operators = {node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node}
    assert "LayerNormalization" in operators
    assert "SkipLayerNormalization" not in operators


def test_no_leftover_staging(onnx_dir):
    export_onnx_model(quantize=True, onnx_dir=onnx_dir)
    assert [path.name for path in onnx_dir.iterdir() if path.name.startswith(".")] == []


def test_publish_keeps_first_export(tmp_path):
    folder = tmp_path / "fp32-key"
    folder.mkdir()
    (folder / MODEL_FILE).write_bytes(b"first")
    (folder / "export.json").write_text("{}")
    staging = tmp_path / ".fp32-key.staging"
    staging.mkdir()
    (staging / MODEL_FILE).write_bytes(b"second")

    assert _publish(staging, folder) is False
    assert (folder / MODEL_FILE).read_bytes() == b"first"


def test_incomplete_export_replaced(tiny_model, tmp_path, texts):
    folder = export_onnx_model(tiny_model, onnx_dir=tmp_path)
    expected = OnnxSentenceModel(folder).encode(texts)
    (folder / MODEL_FILE).unlink()

    assert export_onnx_model(tiny_model, onnx_dir=tmp_path) == folder
    np.testing.assert_allclose(OnnxSentenceModel(folder).encode(texts), expected, atol=1e-6)


@pytest.mark.parametrize("damaged", [MODEL_FILE, "export.json"])
def test_damaged_export_exported_again(tiny_model, tmp_path, texts, damaged, caplog):
    folder = export_onnx_model(tiny_model, onnx_dir=tmp_path)
    expected = OnnxSentenceModel(folder).encode(texts)
    content = (folder / damaged).read_bytes()
    (folder / damaged).write_bytes(content[: len(content) // 2])

    with caplog.at_level(logging.WARNING, logger="mtl_hybrid.onnx_backend"):
        model = load_onnx_model(tiny_model, onnx_dir=tmp_path)
    assert f"the ONNX export in {folder} could not be loaded" in caplog.text
    assert (folder / damaged).read_bytes() != content[: len(content) // 2]
    np.testing.assert_allclose(model.encode(texts), expected, atol=1e-6)
    assert sorted(path.name for path in tmp_path.iterdir()) == [folder.name]


def test_stale_staging_removed(tiny_model, tmp_path):
    folder = export_onnx_model(tiny_model, onnx_dir=tmp_path)
    shutil.rmtree(folder)
    stale, fresh = tmp_path / f".{folder.name}.old", tmp_path / f".{folder.name}.running"
    for path in (stale, fresh):
        path.mkdir()
        (path / MODEL_FILE).write_bytes(b"partial")
    an_hour_ago = time.time() - STALE_STAGING_SECONDS - 60
    os.utime(stale, (an_hour_ago, an_hour_ago))

    export_onnx_model(tiny_model, onnx_dir=tmp_path)
    assert not stale.exists()
    assert fresh.exists()


def test_export_folder_follows_umask(tiny_model, tmp_path):
    previous = os.umask(0o022)
    try:
        folder = export_onnx_model(tiny_model, onnx_dir=tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_unwritable_onnx_dir_named(tiny_model, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=r"Cannot write the ONNX export .* set MTL_HYBRID_ONNX_DIR to a writable folder"):
        export_onnx_model(tiny_model, onnx_dir=blocker / "onnx")


def test_unused_token_type_ids(tmp_path, reviews):
    """A DistilBERT model never reads token_type_ids, so its graph has no such input,
    even with a BERT tokenizer that produces them."""
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=minilm_vocabulary_size(), dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    model = save_tiny_model(tmp_path, DistilBertModel, config)

    texts = reviews["text"].head(4).tolist()
    folder = export_onnx_model(model, onnx_dir=tmp_path / "onnx")
    assert json.loads((folder / "export.json").read_text())["input_names"] == ["input_ids", "attention_mask"]
    expected = SentenceEncoder(model, device="cpu").fit().transform(texts)
    embeddings = SentenceEncoder(model, backend="onnx").fit().transform(texts)
    assert cosines(embeddings, expected).min() > 0.9999


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("window", [1, 513])
def test_window_out_of_range(backend, window):
    with pytest.raises(ValueError, match=rf"max_seq_length={window} is outside the token windows .* from 3 to 512"):
        SentenceEncoder(max_seq_length=window, backend=backend).fit()


def test_cache_key_per_backend(texts):
    clear_memory_cache()
    torch_encoder = SentenceEncoder().fit()
    torch_encoder.transform(texts[:3])
    for backend in ("onnx", "onnx-int8"):
        encoder = SentenceEncoder(backend=backend).fit()
        encoder.transform(texts[:3])
        assert encoder.cache_stats_.encoded == 3
        assert encoder._cache().namespace != torch_encoder._cache().namespace


def test_cache_key_per_export_version(monkeypatch):
    encoder = SentenceEncoder(backend="onnx-int8").fit()
    namespace = encoder._cache().namespace
    monkeypatch.setattr("mtl_hybrid.onnx_backend.EXPORT_VERSION", 1_000)
    assert encoder._cache().namespace != namespace


def test_window_truncates():
    encoder = SentenceEncoder(max_seq_length=16, backend="onnx").fit()
    head = " ".join(["comfortable"] * 40)
    longer = head + " but the zipper broke and the seams ripped"
    np.testing.assert_allclose(encoder.transform([head])[0], encoder.transform([longer])[0], atol=1e-6)


def test_tiny_model_pooling(tiny_model, reviews):
    """A model without a Normalize module: the unnormalised mean pooling matches torch."""
    texts = reviews["text"].head(6).tolist()
    expected = SentenceEncoder(tiny_model, normalize_embeddings=False, device="cpu").fit().transform(texts)
    embeddings = SentenceEncoder(tiny_model, normalize_embeddings=False, backend="onnx").fit().transform(texts)
    np.testing.assert_allclose(embeddings, expected, atol=1e-4)


def test_unsupported_model_rejected(tiny_model, tmp_path):
    model = SentenceTransformer(tiny_model, device="cpu")
    dense = Dense(model.get_embedding_dimension(), 8)
    SentenceTransformer(modules=[*model, dense], device="cpu").save(str(tmp_path / "dense"))
    with pytest.raises(ValueError, match=r"has \['Transformer', 'Pooling', 'Dense'\].*Use backend='torch'"):
        export_onnx_model(tmp_path / "dense", onnx_dir=tmp_path / "onnx")


def test_bad_backend_rejected():
    with pytest.raises(ValueError, match="The 'backend' parameter of SentenceEncoder must be a str among") as error:
        SentenceEncoder(backend="tensorrt").fit()
    assert "Got 'tensorrt' instead" in str(error.value)
    for accepted in ("'torch'", "'onnx'", "'onnx-int8'"):
        assert accepted in str(error.value)


def test_shared_model_bad_backend():
    with pytest.raises(ValueError, match=r"backend 'openvino' is not supported; use one of 'torch', 'onnx', 'onnx-int8'"):
        shared_model(backend="openvino")


def test_onnx_rejects_cuda():
    with pytest.raises(ValueError, match="runs on the CPU only, got device 'cuda'"):
        SentenceEncoder(backend="onnx", device="cuda").fit()
