"""Saving fitted pipelines as model bundles and loading them back safely.

A bundle is a directory::

    manifest.json        format version, package versions, tasks and labels, the
                         encoder, the estimator description, every file's SHA-256
                         and size, training metrics
    metrics.json         the training metrics (when given)
    heads/*.ubj          XGBoost boosters (UBJSON)
    heads/*.safetensors  weights of fine-tuned neural heads
    encoders/N/          an embedded fine-tuned sentence-transformers directory
    estimators/*.skops   other scikit-learn objects (skops, trusted types only)

:mod:`mtl_hybrid.serialization` describes how each estimator maps to these files.
Loading checks the format version and every file's size and checksum before it
reads any of them, rejects files that the manifest does not list, and never
unpickles. Bundles of format version 1 (a joblib pickle) load only with
``trusted=True``.

Saving is atomic: the bundle is written to a hidden sibling directory and moved
into place in one rename, so a save that is interrupted or killed leaves either
no bundle or the previous one, never a half-written bundle.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from mtl_hybrid.serialization import (
    TRUSTED_TYPES,
    BundleError,
    ChecksumError,
    FormatVersionError,
    PartReader,
    PartWriter,
    UnsafeContentError,
    UntrustedTypesError,
    decode_estimator,
    encode_estimator,
)
from mtl_hybrid.streaming import default_mode

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "TRUSTED_TYPES",
    "BundleError",
    "ChecksumError",
    "FormatVersionError",
    "UnsafeContentError",
    "UntrustedTypesError",
    "load_pipeline",
    "read_manifest",
    "save_pipeline",
]

FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
METRICS = "metrics.json"
LEGACY_MODEL_FILE = "model.joblib"
LEGACY_BUNDLE_PREFIX = "@bundle/"
# Top-level names that save_pipeline writes itself, so extra_files may not use them.
RESERVED_NAMES = frozenset({MANIFEST, METRICS, "heads", "encoders", "estimators"})
_DEPENDENCIES = [
    "mtl-hybrid",
    "scikit-learn",
    "xgboost",
    "xgboost-cpu",
    "sentence-transformers",
    "torch",
    "numpy",
    "skops",
    "safetensors",
]
# Versions compared on load: a difference is logged, because it can change predictions.
_CHECKED_DEPENDENCIES = ["mtl-hybrid", "scikit-learn", "xgboost", "xgboost-cpu", "sentence-transformers", "torch"]


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


def _final_step(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _steps(estimator) -> list:
    return [step for _, step in estimator.steps] if hasattr(estimator, "steps") else [estimator]


def _task_labels(estimator) -> dict[str, list]:
    final = _final_step(estimator)
    if not hasattr(final, "tasks_"):
        return {}
    if hasattr(final, "estimators_"):
        return {task: [str(label) for label in final.estimators_[task].classes_] for task in final.tasks_}
    if isinstance(getattr(final, "classes_", None), dict):
        return {task: [str(label) for label in final.classes_[task]] for task in final.tasks_}
    return {}


def _encoder_summary(estimator, writer: PartWriter) -> dict | None:
    """Return the manifest's ``encoder`` entry: the first encoder step's model reference
    and the embedded fine-tuned directory, if any."""
    from mtl_hybrid.encoding import SentenceEncoder
    from mtl_hybrid.finetuning import MultiTaskFineTuner

    for step in _steps(estimator):
        if isinstance(step, (SentenceEncoder, MultiTaskFineTuner)):
            reference = step.model_name_or_path
            embedded = isinstance(step, MultiTaskFineTuner) and bool(writer.embedded_encoders)
            return {
                "type": type(step).__name__,
                "model_name_or_path": None if reference is None else os.fspath(reference),
                "embedded": writer.embedded_encoders[0] if embedded else None,
            }
    return None


# ------------------------------------------------------------------ saving


def save_pipeline(
    estimator,
    directory: str | os.PathLike,
    *,
    metrics: dict | None = None,
    overwrite: bool = False,
    extra_files: dict[str, str | os.PathLike] | None = None,
) -> Path:
    """Save a fitted estimator or pipeline as a model bundle in ``directory``.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator, usually ``Pipeline([SentenceEncoder, MultiTaskClassifier])``.
    directory : str or path-like
        Target directory. It must not exist unless ``overwrite`` is true.
    metrics : dict, default=None
        Training metrics, stored in the manifest and in ``metrics.json``.
    overwrite : bool, default=False
        Replace an existing bundle, in one atomic step once the new one is complete.
    extra_files : dict of {name: path}, default=None
        Files or folders copied into the bundle under ``name`` (for example plots).
        They are listed with their checksums and never loaded.

    Returns
    -------
    Path
        The bundle directory.

    Examples
    --------
    >>> from mtl_hybrid.persistence import load_pipeline, save_pipeline
    >>> save_pipeline(pipeline, "runs/model", metrics={"macro_f1": 0.9})  # doctest: +SKIP
    >>> load_pipeline("runs/model").predict(["Lovely dress"])  # doctest: +SKIP
    """
    directory = Path(directory)
    _check_target(directory, overwrite)
    extra = _checked_extra_files(extra_files)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(directory)

    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-{os.getpid()}-", dir=directory.parent))
    try:
        writer = PartWriter(staging)
        model = encode_estimator(estimator, writer)
        if metrics is not None:
            _write_json(staging / METRICS, metrics)
        for name, source in extra.items():
            if source.is_dir():
                shutil.copytree(source, staging / name)
            else:
                shutil.copyfile(source, staging / name)

        manifest = {
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(),
            "tasks": _task_labels(estimator),
            "encoder": _encoder_summary(estimator, writer),
            "model": model,
            "files": _file_entries(staging),
            "metrics": metrics or {},
        }
        _write_json(staging / MANIFEST, manifest)
        _fsync_directories(staging)
        os.chmod(staging, default_mode(0o777))
        _publish(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    logger.info("Saved model to %s", directory)
    return directory


def _check_target(directory: Path, overwrite: bool) -> None:
    if directory.exists() and not overwrite:
        raise FileExistsError(f"Output directory {directory} already exists; pass overwrite=True (CLI: --overwrite) to replace it.")
    if directory.exists() and not (directory / MANIFEST).is_file():
        raise FileExistsError(f"{directory} exists and is not a model directory (no {MANIFEST}); overwrite replaces only model directories.")


def _checked_extra_files(extra_files) -> dict[str, Path]:
    checked = {}
    for name, source in (extra_files or {}).items():
        if not isinstance(name, str) or len(Path(name).parts) != 1 or name.startswith("."):
            raise ValueError(f"extra_files name {name!r} must be a plain file or folder name, such as 'plots'.")
        if name in RESERVED_NAMES:
            raise ValueError(f"extra_files name {name!r} is reserved; the bundle writes {sorted(RESERVED_NAMES)} itself.")
        source = Path(source)
        if not source.exists():
            raise FileNotFoundError(f"extra_files[{name!r}]: {source} not found.")
        checked[name] = source
    return checked


def _write_json(path: Path, data) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _bundle_files(root: Path) -> list[str]:
    """Return every entry below ``root`` except the manifest, as sorted relative names.

    Folders are walked, and anything that is not a regular file (a symbolic link, a
    socket) is returned as well, so a caller can reject it."""
    names = []
    for folder, subfolders, files in os.walk(root):
        for entry in files + [name for name in subfolders if os.path.islink(os.path.join(folder, name))]:
            names.append(Path(folder, entry).relative_to(root).as_posix())
    return sorted(name for name in names if name != MANIFEST)


def _file_entries(root: Path) -> dict[str, dict]:
    return {name: {"sha256": _sha256(root / name), "size": (root / name).stat().st_size} for name in _bundle_files(root)}


def _fsync_directories(root: Path) -> None:
    """Flush file contents and folder entries to disk, so a crash right after the
    rename cannot leave a bundle whose files are empty."""
    for folder, _, files in os.walk(root):
        for name in files:
            descriptor = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _fsync_directory(Path(folder))


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step with Linux's ``renameat2(RENAME_EXCHANGE)``.

    Returns False where the platform or the file system does not support it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, f"Could not swap {first} and {second}: {os.strerror(code)}")


def _publish(staging: Path, directory: Path) -> None:
    """Move the complete bundle in ``staging`` to ``directory``, replacing an old one atomically."""
    if not directory.exists():
        os.rename(staging, directory)
    elif _exchange(staging, directory):
        # staging now contains the old bundle.
        shutil.rmtree(staging, ignore_errors=True)
    else:
        # NOTE: without RENAME_EXCHANGE, a kill between these two renames leaves no
        # bundle at `directory`; the next save_pipeline to it restores the old one.
        backup = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        os.replace(directory, backup)
        os.replace(staging, directory)
        shutil.rmtree(backup, ignore_errors=True)
    _fsync_directory(directory.parent)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_staging(directory: str | os.PathLike) -> list[Path]:
    """Delete the staging folders that killed saves to ``directory`` left behind.

    A folder counts as stale when the process id in its name is no longer running
    on this machine. A backup of an old bundle (``.NAME.old-PID``) is moved back
    into place when ``directory`` itself is missing. Returns the folders removed.
    """
    directory = Path(directory)
    if not directory.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(directory.name)}\.(tmp|old)-(\d+)(-.*)?$")
    removed = []
    for entry in sorted(directory.parent.iterdir()):
        match = pattern.match(entry.name)
        if match is None or not entry.is_dir() or _process_alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not directory.exists() and (entry / MANIFEST).is_file():
            logger.warning("Restoring %s from %s, left by a save that was killed", directory, entry)
            os.rename(entry, directory)
            continue
        logger.info("Removing %s, left by a save that was killed", entry)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


# ----------------------------------------------------------------- loading


def read_manifest(directory: str | os.PathLike) -> dict:
    """Return the manifest of a model bundle after verifying every file it lists.

    Raises
    ------
    FileNotFoundError
        The directory, its manifest or a listed file is missing.
    FormatVersionError
        The bundle's format version is neither ``FORMAT_VERSION`` nor 1.
    ChecksumError
        A file differs in size or SHA-256 from its entry, or the directory contains
        a file the manifest does not list.
    """
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
        raise BundleError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(manifest, dict):
        raise BundleError(f"{path} must contain a JSON object, got {type(manifest).__name__}.")

    version = manifest.get("format_version")
    # JSON true and 2.0 compare equal to 1 and 2 in Python, so the type is checked too.
    if type(version) is not int or version not in (FORMAT_VERSION, LEGACY_FORMAT_VERSION):
        from mtl_hybrid import __version__

        raise FormatVersionError(
            f"{directory} has model format version {version!r}, but mtl_hybrid {__version__} reads format version "
            f"{FORMAT_VERSION} (and {LEGACY_FORMAT_VERSION} with trusted=True). Load it with the mtl_hybrid version "
            "that saved it, or train the model again."
        )
    _verify_files(directory, manifest)
    return manifest


def _listed_files(directory: Path, manifest: dict) -> dict[str, dict]:
    """Return the manifest's file entries as {name: {"sha256", "size"}}; format 1 lists only checksums."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{directory / MANIFEST} has no valid 'files' list.")
    entries = {}
    for name, entry in files.items():
        if isinstance(entry, str):
            entry = {"sha256": entry, "size": None}
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise BundleError(f"{directory / MANIFEST} has an invalid entry for {name!r}: {entry!r}.")
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or "\\" in name or name == MANIFEST:
            raise BundleError(f"{directory / MANIFEST} lists {name!r}, which is not a file name inside the bundle.")
        entries[name] = entry
    return entries


def _verify_files(directory: Path, manifest: dict) -> None:
    entries = _listed_files(directory, manifest)
    for name, entry in entries.items():
        file = directory / name
        if file.is_symlink() or (file.exists() and not file.is_file()):
            raise ChecksumError(f"{file} is not a regular file; a bundle contains only regular files.")
        if not file.is_file():
            raise FileNotFoundError(f"{directory} is not a complete model directory: {name} is missing.")
        size = file.stat().st_size
        if entry.get("size") is not None and size != entry["size"]:
            raise ChecksumError(f"{file} has {size} bytes but {MANIFEST} lists {entry['size']}; the file is truncated or was changed.")
        if _sha256(file) != entry["sha256"]:
            raise ChecksumError(f"{file} does not match its SHA-256 checksum in {MANIFEST}; the file is damaged or was changed.")

    if manifest["format_version"] == LEGACY_FORMAT_VERSION:
        return
    unlisted = [name for name in _bundle_files(directory) if name not in entries]
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
        raise ChecksumError(f"{directory} contains files that {MANIFEST} does not list: {shown}. Remove them, or save the model again.")


def load_pipeline(directory: str | os.PathLike, *, trusted: bool = False, trusted_types=None):
    """Load an estimator saved by :func:`save_pipeline`, after verifying its files.

    Parameters
    ----------
    directory : str or path-like
        The model bundle.
    trusted : bool, default=False
        Allow unpickling the ``model.joblib`` of a bundle in format version 1.
        Unpickling runs any code stored in the file, so pass True only for a model
        from a source you trust. Bundles of the current format never unpickle.
    trusted_types : list of str, default=None
        Type names to trust in skops files beyond skops's defaults and
        :data:`TRUSTED_TYPES`, for example your own classifier class.

    Raises
    ------
    ChecksumError
        A file is truncated, changed or not listed in the manifest.
    FormatVersionError
        The bundle was written in another format version.
    UnsafeContentError
        The bundle needs unpickling (format 1 without ``trusted``), contains a pickle
        where a safe format belongs, or names custom encoder code.
    UntrustedTypesError
        A skops file contains types outside the trusted list; the error lists them.
    """
    if not isinstance(trusted, bool):
        raise TypeError(f"trusted must be True or False, got {trusted!r}.")
    trusted_types = _checked_trusted_types(trusted_types)
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest["format_version"] == LEGACY_FORMAT_VERSION:
        return _load_legacy(directory, manifest, trusted)

    _log_version_differences(directory, manifest.get("versions", {}))
    reader = PartReader(directory.resolve(), _listed_files(directory, manifest), trusted_types)
    try:
        return decode_estimator(manifest.get("model"), reader)
    except (KeyError, TypeError, AttributeError) as error:
        raise BundleError(f"{directory / MANIFEST} has an invalid estimator description: {type(error).__name__}: {error}") from error


def _checked_trusted_types(trusted_types) -> list[str]:
    if trusted_types is None:
        return []
    if isinstance(trusted_types, str) or not all(isinstance(name, str) for name in trusted_types):
        raise TypeError(
            f"trusted_types must be a list of type names such as ['mypackage.MyClassifier'], got {trusted_types!r}."
        )
    return list(trusted_types)


def _log_version_differences(directory: Path, saved: dict) -> None:
    current = _versions()
    for name in _CHECKED_DEPENDENCIES:
        if name in saved and name in current and saved[name] != current[name]:
            logger.warning("%s was saved with %s %s; this environment has %s %s", directory, name, saved[name], name, current[name])


def _load_legacy(directory: Path, manifest: dict, trusted: bool):
    """Unpickle a format-1 bundle, which only a caller that trusts it may do."""
    path = directory / LEGACY_MODEL_FILE
    if LEGACY_MODEL_FILE not in manifest["files"]:
        raise BundleError(f"{directory / MANIFEST} has format version 1 but does not list {LEGACY_MODEL_FILE}.")
    if not trusted:
        raise UnsafeContentError(
            f"{path} is a pickle (model format version {LEGACY_FORMAT_VERSION}), and unpickling runs any code stored in it. "
            f"Load it with trusted=True (CLI: --trusted) only if you trust its source. To convert it to format version "
            f"{FORMAT_VERSION}, run save_pipeline(load_pipeline(path, trusted=True), new_path) in Python."
        )

    import joblib

    logger.warning("Unpickling %s because trusted=True was passed", path)
    estimator = joblib.load(path)
    for step in _steps(estimator):
        encoder_path = getattr(step, "encoder_path_", None)
        if isinstance(encoder_path, str) and encoder_path.startswith(LEGACY_BUNDLE_PREFIX):
            step.encoder_path_ = str(directory.resolve() / encoder_path.removeprefix(LEGACY_BUNDLE_PREFIX))
    return estimator
