"""Model bundles: safe formats, checksums, format versions, trusted types and atomic saves."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mtl_hybrid import MultiTaskClassifier, SentenceEncoder, TunedXGBoostHead, XGBoostHead
from mtl_hybrid.finetuning import MultiTaskFineTuner
from mtl_hybrid.persistence import (
    FORMAT_VERSION,
    ChecksumError,
    FormatVersionError,
    UnsafeContentError,
    UntrustedTypesError,
    load_pipeline,
    read_manifest,
    save_pipeline,
)

TASKS = ["category", "sentiment"]
TEXTS = ["Runs small but lovely fabric", "Returned it, the seams tore", "Perfect jeans for work", ""]


class MarkerPayload:
    """A pickle payload whose loading creates ``path``: the observable sign that
    unpickling ran code from the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


class MedianClassifier(ClassifierMixin, BaseEstimator):
    """A user's binary classifier outside scikit-learn, so skops does not trust its type."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.threshold_ = float(np.median(np.asarray(X)[:, 0]))
        return self

    def predict_proba(self, X):
        high = (np.asarray(X)[:, 0] > self.threshold_).astype(float)
        return np.column_stack([1 - high, high])

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


@pytest.fixture(scope="module")
def tiny_pipeline(tiny_model, clothing):
    pipeline = Pipeline(
        [("encoder", SentenceEncoder(tiny_model)), ("classifier", MultiTaskClassifier(XGBoostHead(n_estimators=20)))]
    )
    return pipeline.fit(clothing["text"], clothing[TASKS])


@pytest.fixture(scope="module")
def tuned_finetuner(tiny_model, clothing):
    tuner = MultiTaskFineTuner(tiny_model, epochs=1, max_seq_length=32, encoder_lr=1e-3, show_progress_bar=False)
    return tuner.fit(clothing["text"], clothing[TASKS])


@pytest.fixture
def bundle(tiny_pipeline, tmp_path) -> Path:
    return save_pipeline(tiny_pipeline, tmp_path / "model", metrics={"macro_f1": 0.5})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite_manifest(directory: Path, change) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def replace_file(directory: Path, name: str, data: bytes, *, update_checksum: bool) -> None:
    """Overwrite a bundle file; with ``update_checksum`` also fix its manifest entry,
    so that only the format checks can stop the file."""
    (directory / name).write_bytes(data)
    if update_checksum:
        rewrite_manifest(directory, lambda m: m["files"].update({name: {"sha256": sha256(directory / name), "size": len(data)}}))


def write_legacy_bundle(estimator, directory: Path) -> None:
    """Write a bundle as format version 1 did: a joblib pickle and its checksum."""
    directory.mkdir()
    joblib.dump(estimator, directory / "model.joblib")
    manifest = {"format_version": 1, "versions": {}, "tasks": {}, "files": {"model.joblib": sha256(directory / "model.joblib")}, "metrics": {}}
    (directory / "manifest.json").write_text(json.dumps(manifest))


def assert_same_predictions(restored, original, texts) -> None:
    expected, actual = original.predict(texts), restored.predict(texts)
    assert np.array_equal(np.asarray(actual, dtype=object), np.asarray(expected, dtype=object))
    for before, after in zip(original.predict_proba(texts), restored.predict_proba(texts)):
        np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ layout and round trips


def test_bundle_layout(bundle):
    manifest = read_manifest(bundle)
    assert manifest["format_version"] == FORMAT_VERSION
    assert set(manifest["files"]) == {"heads/category.ubj", "heads/sentiment.ubj", "metrics.json"}
    assert manifest["files"]["heads/category.ubj"]["sha256"] == sha256(bundle / "heads" / "category.ubj")
    assert manifest["tasks"]["sentiment"] == ["negative", "neutral", "positive"]
    assert manifest["encoder"]["type"] == "SentenceEncoder"
    assert manifest["encoder"]["embedded"] is None
    assert {"mtl-hybrid", "scikit-learn", "torch"} <= set(manifest["versions"])
    assert manifest["metrics"] == {"macro_f1": 0.5}
    assert json.loads((bundle / "metrics.json").read_text()) == {"macro_f1": 0.5}


def test_bundle_has_no_pickles(bundle):
    for path in bundle.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), path


def test_xgboost_round_trip(tiny_pipeline, bundle):
    restored = load_pipeline(bundle)
    assert_same_predictions(restored, tiny_pipeline, TEXTS)
    assert restored.get_params(deep=True).keys() == tiny_pipeline.get_params(deep=True).keys()


@pytest.mark.parametrize(
    "make_head",
    [
        lambda: LogisticRegression(max_iter=300),
        lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0),
        lambda: TunedXGBoostHead(XGBoostHead(n_estimators=15), n_trials=2, cv=2),
        lambda: {"category": LogisticRegression(max_iter=300), "sentiment": XGBoostHead(n_estimators=15, class_weight={"negative": 2.0})},
    ],
    ids=["logistic", "mlp", "tuned-xgboost", "per-task"],
)
def test_head_round_trip(tiny_model, clothing, tmp_path, make_head):
    pipeline = Pipeline([("encoder", SentenceEncoder(tiny_model)), ("classifier", MultiTaskClassifier(make_head()))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(clothing["text"], clothing[TASKS])
    restored = load_pipeline(save_pipeline(pipeline, tmp_path / "model"))
    assert_same_predictions(restored, pipeline, TEXTS)


def test_sklearn_steps_round_trip(tiny_model, clothing, tmp_path):
    pipeline = Pipeline(
        [
            ("encoder", SentenceEncoder(tiny_model)),
            ("scaler", StandardScaler()),
            ("classifier", MultiTaskClassifier(LogisticRegression(max_iter=300))),
        ]
    ).fit(clothing["text"], clothing[TASKS])
    restored = load_pipeline(save_pipeline(pipeline, tmp_path / "model"))
    assert_same_predictions(restored, pipeline, TEXTS)


def test_tfidf_pipeline_round_trip(clothing, tmp_path):
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("classifier", MultiTaskClassifier(LogisticRegression(max_iter=300)))])
    pipeline.fit(clothing["text"], clothing[TASKS])
    restored = load_pipeline(save_pipeline(pipeline, tmp_path / "model"))
    assert_same_predictions(restored, pipeline, TEXTS)


def test_finetuner_round_trip(tuned_finetuner, tmp_path):
    bundle = save_pipeline(tuned_finetuner, tmp_path / "model")
    manifest = read_manifest(bundle)
    assert manifest["encoder"]["embedded"] == "encoders/0"
    assert "encoders/0/model.safetensors" in manifest["files"]
    assert manifest["tasks"]["category"] == sorted(manifest["tasks"]["category"])
    assert [name for name in manifest["files"] if name.startswith("heads/")] == ["heads/model-finetuned.safetensors"]

    restored = load_pipeline(bundle)
    assert restored.encoder_path_ == str((bundle / "encoders" / "0").resolve())
    assert restored.history_ == tuned_finetuner.history_
    assert_same_predictions(restored, tuned_finetuner, TEXTS)


def test_frozen_finetuner_refers_to_model(tiny_model, clothing, tmp_path):
    tuner = MultiTaskFineTuner(tiny_model, epochs=1, freeze_encoder=True, show_progress_bar=False)
    tuner.fit(clothing["text"], clothing[TASKS])
    bundle = save_pipeline(tuner, tmp_path / "model")
    assert not (bundle / "encoders").exists()
    assert_same_predictions(load_pipeline(bundle), tuner, TEXTS)


def test_tuned_storage_password_masked(tmp_path):
    head = TunedXGBoostHead(XGBoostHead(n_estimators=10), n_trials=1, cv=2)
    head.fit(np.random.default_rng(0).normal(size=(60, 4)), np.repeat(["a", "b"], 30))
    head.set_params(storage="postgresql://optuna:secret@localhost/optuna")
    bundle = save_pipeline(head, tmp_path / "model")
    assert "secret" not in (bundle / "manifest.json").read_text()
    assert load_pipeline(bundle).storage == "postgresql://optuna:***@localhost/optuna"


def test_extra_files_listed(tiny_pipeline, tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "history.png").write_bytes(b"\x89PNG fake")
    bundle = save_pipeline(tiny_pipeline, tmp_path / "model", extra_files={"plots": plots})
    assert "plots/history.png" in read_manifest(bundle)["files"]


@pytest.mark.parametrize("name", ["manifest.json", "heads", "../outside", ".hidden"])
def test_extra_files_bad_name(tiny_pipeline, tmp_path, name):
    with pytest.raises(ValueError, match="extra_files name"):
        save_pipeline(tiny_pipeline, tmp_path / "model", extra_files={name: tmp_path})


# ------------------------------------------------------------------ checksums and versions


def test_truncated_head_named(bundle):
    head = bundle / "heads" / "sentiment.ubj"
    head.write_bytes(head.read_bytes()[:100])
    with pytest.raises(ChecksumError, match=r"heads/sentiment\.ubj has 100 bytes .* truncated"):
        load_pipeline(bundle)


def test_changed_byte_named(bundle):
    head = bundle / "heads" / "category.ubj"
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 0x01
    head.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"heads/category\.ubj does not match its SHA-256 checksum"):
        load_pipeline(bundle)


def test_unlisted_file_rejected(bundle):
    (bundle / "heads" / "extra.ubj").write_bytes(b"{}")
    with pytest.raises(ChecksumError, match=r"does not list: heads/extra\.ubj"):
        load_pipeline(bundle)


def test_missing_head_named(bundle):
    (bundle / "heads" / "category.ubj").unlink()
    with pytest.raises(FileNotFoundError, match=r"heads/category\.ubj is missing"):
        load_pipeline(bundle)


def test_symlink_rejected(bundle, tmp_path):
    outside = tmp_path / "outside.ubj"
    outside.write_bytes((bundle / "heads" / "category.ubj").read_bytes())
    (bundle / "heads" / "category.ubj").unlink()
    (bundle / "heads" / "category.ubj").symlink_to(outside)
    with pytest.raises(ChecksumError, match="is not a regular file"):
        load_pipeline(bundle)


def test_path_outside_bundle_rejected(bundle):
    rewrite_manifest(bundle, lambda m: m["files"].update({"../escape": {"sha256": "0" * 64, "size": 1}}))
    with pytest.raises(ValueError, match="not a file name inside the bundle"):
        load_pipeline(bundle)


def test_newer_format_version_named(bundle):
    rewrite_manifest(bundle, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(FormatVersionError) as error:
        load_pipeline(bundle)
    assert f"format version {FORMAT_VERSION + 1}" in str(error.value)
    assert f"reads format version {FORMAT_VERSION}" in str(error.value)


def test_missing_format_version_named(bundle):
    rewrite_manifest(bundle, lambda m: m.pop("format_version"))
    with pytest.raises(FormatVersionError, match="format version None"):
        load_pipeline(bundle)


# ------------------------------------------------------------------ code in files


def test_payload_runs_code_when_unpickled(tmp_path):
    """The payload used below does create its marker when unpickled, so the tests
    that expect no marker can fail."""
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(MarkerPayload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("update_checksum", [True, False], ids=["checksum-updated", "checksum-stale"])
def test_pickled_xgboost_head_rejected(bundle, tmp_path, update_checksum):
    marker = tmp_path / "marker"
    replace_file(bundle, "heads/category.ubj", pickle.dumps(MarkerPayload(marker)), update_checksum=update_checksum)
    expected = UnsafeContentError if update_checksum else ChecksumError
    with pytest.raises(expected, match=r"heads/category\.ubj"):
        load_pipeline(bundle)
    assert not marker.exists()


@pytest.mark.parametrize("update_checksum", [True, False], ids=["checksum-updated", "checksum-stale"])
def test_pickled_finetuned_heads_rejected(tuned_finetuner, tmp_path, update_checksum):
    bundle = save_pipeline(tuned_finetuner, tmp_path / "model")
    marker = tmp_path / "marker"
    replace_file(bundle, "heads/model-finetuned.safetensors", pickle.dumps(MarkerPayload(marker)), update_checksum=update_checksum)
    with pytest.raises(ValueError, match=r"heads/model-finetuned\.safetensors"):
        load_pipeline(bundle)
    assert not marker.exists()


def test_pickled_skops_part_rejected(tiny_model, clothing, tmp_path):
    pipeline = Pipeline([("encoder", SentenceEncoder(tiny_model)), ("classifier", MultiTaskClassifier(LogisticRegression()))])
    bundle = save_pipeline(pipeline.fit(clothing["text"], clothing[TASKS]), tmp_path / "model")
    marker = tmp_path / "marker"
    replace_file(bundle, "estimators/category.skops", pickle.dumps(MarkerPayload(marker)), update_checksum=True)
    with pytest.raises(UnsafeContentError, match=r"estimators/category\.skops is a Python pickle"):
        load_pipeline(bundle)
    assert not marker.exists()


def test_pickled_encoder_weights_rejected(tuned_finetuner, tmp_path):
    bundle = save_pipeline(tuned_finetuner, tmp_path / "model")
    marker = tmp_path / "marker"
    name = "encoders/0/pytorch_model.bin"
    replace_file(bundle, name, pickle.dumps(MarkerPayload(marker)), update_checksum=True)
    with pytest.raises(UnsafeContentError, match=r"pytorch_model\.bin is a pickle-based file"):
        load_pipeline(bundle)
    assert not marker.exists()


def test_custom_encoder_module_rejected(tuned_finetuner, tmp_path):
    bundle = save_pipeline(tuned_finetuner, tmp_path / "model")
    modules = json.loads((bundle / "encoders/0/modules.json").read_text())
    modules[0]["type"] = "os.system"
    replace_file(bundle, "encoders/0/modules.json", json.dumps(modules).encode(), update_checksum=True)
    with pytest.raises(UnsafeContentError, match=r"module types outside sentence_transformers: \['os.system'\]"):
        load_pipeline(bundle)


def test_untrusted_type_named(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.repeat(["low", "high"], 20)
    classifier = MultiTaskClassifier(MedianClassifier()).fit(X, y)
    bundle = save_pipeline(classifier, tmp_path / "model")
    name = f"{MedianClassifier.__module__}.MedianClassifier"

    with pytest.raises(UntrustedTypesError, match=name) as error:
        load_pipeline(bundle)
    assert name in error.value.types

    restored = load_pipeline(bundle, trusted_types=[name])
    assert np.array_equal(restored.predict(X), classifier.predict(X))


def test_trusted_types_must_be_list(bundle):
    with pytest.raises(TypeError, match="trusted_types must be a list of type names"):
        load_pipeline(bundle, trusted_types="sklearn.svm.SVC")


def test_legacy_pickle_needs_trusted(tmp_path):
    marker = tmp_path / "marker"
    write_legacy_bundle(MarkerPayload(marker), tmp_path / "legacy")
    with pytest.raises(UnsafeContentError, match=r"model\.joblib is a pickle .* trusted=True"):
        load_pipeline(tmp_path / "legacy")
    assert not marker.exists()


def test_legacy_trusted_loads_and_converts(tiny_pipeline, tmp_path):
    write_legacy_bundle(tiny_pipeline, tmp_path / "legacy")
    restored = load_pipeline(tmp_path / "legacy", trusted=True)
    assert_same_predictions(restored, tiny_pipeline, TEXTS)

    converted = save_pipeline(restored, tmp_path / "converted")
    assert read_manifest(converted)["format_version"] == FORMAT_VERSION
    assert_same_predictions(load_pipeline(converted), tiny_pipeline, TEXTS)


def test_cli_trusted_flag(tiny_pipeline, tmp_path, capsys):
    from mtl_hybrid.cli import main

    write_legacy_bundle(tiny_pipeline, tmp_path / "legacy")
    assert main(["predict", "--model", str(tmp_path / "legacy"), "--no-cache", "Lovely dress"]) == 2
    assert "(CLI: --trusted)" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "legacy"), "--no-cache", "--trusted", "Lovely dress"]) == 0
    assert capsys.readouterr().out.startswith("text,category,")


# ------------------------------------------------------------------ atomic saves

SAVE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from mtl_hybrid import XGBoostHead, persistence, serialization

    source, target, pause_at = sys.argv[1], sys.argv[2], sys.argv[3]
    pipeline = persistence.load_pipeline(source)

    def pause_after(real):
        def wrapper(*args, **kwargs):
            result = real(*args, **kwargs)
            print("paused", flush=True)
            time.sleep(300)
            return result
        return wrapper

    def pause_before(real):
        def wrapper(*args, **kwargs):
            print("paused", flush=True)
            time.sleep(300)
            return real(*args, **kwargs)
        return wrapper

    # "head": after the first head file is written; "publish": with every file
    # written, just before the rename that publishes the bundle.
    if pause_at == "head":
        serialization._ENCODERS[XGBoostHead] = pause_after(serialization._ENCODERS[XGBoostHead])
    elif pause_at == "publish":
        persistence._publish = pause_before(persistence._publish)
    while True:
        persistence.save_pipeline(pipeline, target, overwrite=True)
        print("saved", flush=True)
    """
)


def start_saver(source: Path, target: Path, pause_at: str) -> tuple[subprocess.Popen, queue.Queue]:
    """Start the saver script and a thread that queues its output lines (None at the end)."""
    process = subprocess.Popen(
        [sys.executable, "-c", SAVE_SCRIPT, str(source), str(target), pause_at],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue = queue.Queue()

    def forward() -> None:
        for line in process.stdout:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=forward, daemon=True).start()
    return process, lines


def wait_for_line(saver, expected: str, timeout: float = 180.0) -> None:
    process, lines = saver
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            process.kill()
            raise AssertionError(f"saver did not print {expected!r} within {timeout} s") from None
        if line is None:
            raise AssertionError(f"saver exited with {process.wait()} before printing {expected!r}")
        if line == expected:
            return


def kill(saver) -> None:
    process, _ = saver
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def staging_folders(target: Path) -> list[Path]:
    return [path for path in target.parent.iterdir() if path.name.startswith(f".{target.name}.")]


@pytest.mark.parametrize("pause_at", ["head", "publish"])
def test_killed_first_save_leaves_nothing(bundle, tmp_path, pause_at):
    target = tmp_path / "new"
    saver = start_saver(bundle, target, pause_at)
    wait_for_line(saver, "paused")
    assert staging_folders(target)
    kill(saver)

    assert not target.exists()
    save_pipeline(load_pipeline(bundle), target)
    assert staging_folders(target) == []


def test_killed_overwrite_keeps_old(tiny_pipeline, bundle, tmp_path):
    target = tmp_path / "old"
    save_pipeline(tiny_pipeline, target, metrics={"generation": 1})
    files_before = {path: path.read_bytes() for path in target.rglob("*") if path.is_file()}

    saver = start_saver(bundle, target, "head")
    wait_for_line(saver, "paused")
    kill(saver)

    assert {path: path.read_bytes() for path in target.rglob("*") if path.is_file()} == files_before
    assert_same_predictions(load_pipeline(target), tiny_pipeline, TEXTS)


def test_kill_at_random_moment(tiny_pipeline, bundle, tmp_path):
    """Kill a process that overwrites one bundle in a loop at random moments; the
    bundle must load completely every time."""
    target = tmp_path / "looped"
    rng = random.Random(0)
    for _ in range(2):
        saver = start_saver(bundle, target, "none")
        wait_for_line(saver, "saved")
        time.sleep(rng.uniform(0.0, 0.5))
        kill(saver)
        assert_same_predictions(load_pipeline(target), tiny_pipeline, TEXTS[:2])
