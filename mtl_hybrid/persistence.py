"""Saving fitted pipelines to a directory and loading them back.

A model directory contains ``manifest.json`` (format version, package versions,
tasks and their labels, file checksums, training metrics) and ``model.joblib``,
the fitted estimator. Sentence-transformers weights are never stored in it:
the encoder keeps only the model reference and loads it again on first use.

Saving is atomic: everything is written to a temporary sibling directory that
is renamed into place at the end, so an interrupted save never leaves a
half-written model where a complete one is expected.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import joblib

logger = logging.getLogger(__name__)

__all__ = ["FORMAT_VERSION", "load_pipeline", "read_manifest", "save_pipeline"]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.joblib"
_DEPENDENCIES = ["mtl-hybrid", "scikit-learn", "xgboost", "xgboost-cpu", "sentence-transformers", "torch", "numpy"]


def default_mode(mode: int) -> int:
    """Return ``mode`` with the process umask applied, as open() would for a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    versions = {}
    for name in _DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _task_labels(estimator) -> dict[str, list]:
    classifier = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if not hasattr(classifier, "estimators_") or not hasattr(classifier, "tasks_"):
        return {}
    return {task: [str(label) for label in classifier.estimators_[task].classes_] for task in classifier.tasks_}


BUNDLE_PREFIX = "@bundle/"


def _steps(estimator) -> list:
    return [step for _, step in estimator.steps] if hasattr(estimator, "steps") else [estimator]


def _embedded_encoders(estimator) -> list:
    """Return the fitted fine-tuners whose encoder directory must travel with the model."""
    from mtl_hybrid.encoding import resolve_model_reference

    found = []
    for step in _steps(estimator):
        path = getattr(step, "encoder_path_", None)
        if path is None or path.startswith(BUNDLE_PREFIX):
            continue
        if os.path.isdir(path) and path != resolve_model_reference(step.model_name_or_path):
            found.append(step)
    return found


def save_pipeline(estimator, directory: str | os.PathLike, *, metrics: dict | None = None, overwrite: bool = False) -> Path:
    """Save a fitted estimator or pipeline to ``directory``.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator, usually ``Pipeline([SentenceEncoder, MultiTaskClassifier])``.
    directory : str or path-like
        Target directory. It must not exist unless ``overwrite`` is true.
    metrics : dict, default=None
        Training metrics stored in the manifest.
    overwrite : bool, default=False
        Replace an existing directory (only once the new one is complete).

    Returns
    -------
    Path
        The model directory.
    """
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise FileExistsError(f"Output directory {directory} already exists; pass overwrite=True (CLI: --overwrite) to replace it.")
    if directory.exists() and not (directory / MANIFEST).is_file():
        raise FileExistsError(f"{directory} exists and is not a model directory (no {MANIFEST}); overwrite replaces only model directories.")
    directory.parent.mkdir(parents=True, exist_ok=True)

    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    tuners = _embedded_encoders(estimator)
    original_paths = [tuner.encoder_path_ for tuner in tuners]
    try:
        # A fine-tuned encoder is copied into the bundle, and the pickled estimator
        # refers to it by a path relative to the bundle.
        for index, tuner in enumerate(tuners):
            relative = f"encoders/{index}"
            shutil.copytree(tuner.encoder_path_, staging / relative)
            tuner.encoder_path_ = BUNDLE_PREFIX + relative
        joblib.dump(estimator, staging / MODEL_FILE)
        for tuner, path in zip(tuners, original_paths):
            tuner.encoder_path_ = path
        manifest = {
            "format_version": FORMAT_VERSION,
            "versions": _versions(),
            "tasks": _task_labels(estimator),
            "files": {MODEL_FILE: _sha256(staging / MODEL_FILE)},
            "metrics": metrics or {},
        }
        with open(staging / MANIFEST, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())

        os.chmod(staging, default_mode(0o777))
        backup = None
        if directory.exists():
            backup = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, backup)
        os.replace(staging, directory)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        for tuner, path in zip(tuners, original_paths):
            tuner.encoder_path_ = path
        shutil.rmtree(staging, ignore_errors=True)
        raise

    logger.info("Saved model to %s", directory)
    return directory


def read_manifest(directory: str | os.PathLike) -> dict:
    """Return the manifest of a model directory, checking that it is complete."""
    directory = Path(directory)
    if directory.is_file():
        raise NotADirectoryError(f"{directory} is a file; expected a model directory written by save_pipeline or mtl-hybrid train.")
    if not directory.is_dir():
        raise FileNotFoundError(f"Model directory not found: {directory}")
    path = directory / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a complete model directory: {MANIFEST} is missing.")
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error

    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{directory} has model format version {version!r}; this mtl_hybrid reads version {FORMAT_VERSION}.")
    for name, expected in manifest.get("files", {}).items():
        file = directory / name
        if not file.is_file():
            raise FileNotFoundError(f"{directory} is not a complete model directory: {name} is missing.")
        if _sha256(file) != expected:
            raise ValueError(f"{file} does not match the checksum in {MANIFEST}; the file is damaged or was changed.")
    return manifest


def load_pipeline(directory: str | os.PathLike):
    """Load an estimator saved by :func:`save_pipeline`, after checking its files.

    The model file is a joblib pickle: load only directories from a source you trust.
    """
    read_manifest(directory)
    # NOTE: joblib unpickles model.joblib, which can run code from the file.
    estimator = joblib.load(Path(directory) / MODEL_FILE)
    for step in _steps(estimator):
        path = getattr(step, "encoder_path_", None)
        if isinstance(path, str) and path.startswith(BUNDLE_PREFIX):
            step.encoder_path_ = str(Path(directory).resolve() / path.removeprefix(BUNDLE_PREFIX))
    return estimator
