"""Convert estimators to JSON descriptions plus part files, and back, without pickle.

:mod:`mtl_hybrid.persistence` stores the description in a bundle's
``manifest.json`` and verifies the part files before this module reads them.
Every estimator becomes a node ``{"type": ..., "params": ..., "fitted": ...}``:

- ``Pipeline``, :class:`SentenceEncoder` and :class:`MultiTaskClassifier` are
  plain JSON. The encoder keeps its model reference, not the weights.
- :class:`XGBoostHead` stores its booster as an XGBoost UBJSON file
  (``heads/*.ubj``) and its labels as JSON.
- :class:`TunedXGBoostHead` stores the best parameters and its refitted
  :class:`XGBoostHead`. The Optuna study stays in its storage.
- :class:`MultiTaskFineTuner` stores its head weights as safetensors
  (``heads/*.safetensors``) and its fine-tuned encoder as a sentence-transformers
  directory with safetensors weights (``encoders/N``).
- Any other object goes through skops (``estimators/*.skops``). Loading it
  accepts only the types skops trusts by default (scikit-learn estimators, numpy
  and scipy types, builtins), :data:`TRUSTED_TYPES` and the types the caller
  names.

Decoding maps each node type to a fixed function: nothing is imported by a name
read from the file, and nothing is unpickled.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from collections.abc import Collection, Iterable
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder

from mtl_hybrid.boosting import XGBoostHead
from mtl_hybrid.cache import CacheStats
from mtl_hybrid.encoding import (
    SentenceEncoder,
    model_fingerprint,
    resolve_model_reference,
)
from mtl_hybrid.finetuning import MultiTaskFineTuner
from mtl_hybrid.multitask import MultiTaskClassifier
from mtl_hybrid.tuning import TunedXGBoostHead, mask_password

logger = logging.getLogger(__name__)

__all__ = [
    "BundleError",
    "ChecksumError",
    "FormatVersionError",
    "TRUSTED_TYPES",
    "UnsafeContentError",
    "UntrustedTypesError",
    "check_encoder_directory",
    "decode_estimator",
    "encode_estimator",
]

# Types that skops does not trust by default but that this package accepts in a
# bundle: the optimisers that a fitted MLPClassifier keeps and the cross-validation
# splitters that a TunedXGBoostHead's ``cv`` parameter may hold. Each is plain
# data (numbers and arrays) that skops restores without calling its methods.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.model_selection._split.GroupKFold",
    "sklearn.model_selection._split.KFold",
    "sklearn.model_selection._split.StratifiedGroupKFold",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)

# File suffixes of pickle-based formats. A bundle never contains them, so an
# encoder directory with one was not written by save_pipeline.
PICKLE_SUFFIXES = frozenset({".bin", ".ckpt", ".joblib", ".pickle", ".pkl", ".pt", ".pth"})


class BundleError(ValueError):
    """A model bundle that is damaged, incompatible or unsafe to load."""


class ChecksumError(BundleError):
    """A bundle file that is missing, truncated or changed since it was saved."""


class FormatVersionError(BundleError):
    """A bundle written in a format version that this package does not read."""


class UnsafeContentError(BundleError):
    """Bundle content that loading would have to execute: a pickle or custom code."""


class UntrustedTypesError(UnsafeContentError):
    """A skops file with types outside the trusted list.

    Attributes
    ----------
    types : list of str
        The untrusted type names, to review and pass as ``trusted_types``.
    """

    def __init__(self, message: str, types: list[str]) -> None:
        super().__init__(message)
        self.types = types


# ----------------------------------------------------------------- writing


class PartWriter:
    """Allocate and write the part files of one bundle under its staging folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: set[str] = set()
        self.embedded_encoders: list[str] = []

    def new_file(self, folder: str, stem: str, suffix: str) -> tuple[str, Path]:
        """Return a unique bundle-relative name and its path for a new part file."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._")[:60] or "part"
        name = f"{folder}/{slug}{suffix}"
        counter = 2
        while name in self.names:
            name = f"{folder}/{slug}-{counter}{suffix}"
            counter += 1
        self.names.add(name)
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return name, path

    def copy_encoder(self, source: str) -> str:
        """Copy a sentence-transformers directory to ``encoders/N`` and return that name."""
        name = f"encoders/{len(self.embedded_encoders)}"
        shutil.copytree(source, self.root / name)
        self.embedded_encoders.append(name)
        return name


def encode_estimator(estimator, writer: PartWriter, stem: str = "model") -> dict:
    """Return the JSON node of ``estimator``, writing its weights through ``writer``.

    ``stem`` names the part files, for example the task of a head.
    """
    kind = type(estimator)
    if kind is Pipeline:
        return _encode_pipeline(estimator, writer)
    encoder = _ENCODERS.get(kind)
    if encoder is not None:
        return {
            "type": _TYPE_NAMES[kind],
            "params": _encode_params(estimator, writer, stem),
            "fitted": encoder(estimator, writer, stem) if _is_fitted(estimator) else None,
        }
    return {"type": "skops", "file": _write_skops(estimator, writer, stem)}


def _encode_params(estimator, writer: PartWriter, stem: str) -> dict:
    params = estimator.get_params(deep=False)
    if isinstance(estimator, TunedXGBoostHead) and isinstance(params.get("storage"), str):
        # A database URL may contain a password, which must not travel with the model.
        params["storage"] = mask_password(params["storage"])
    return {name: encode_value(value, writer, f"{stem}-{name}") for name, value in params.items()}


def _encode_pipeline(pipeline: Pipeline, writer: PartWriter) -> dict:
    params = pipeline.get_params(deep=False)
    steps = params.pop("steps")
    return {
        "type": "pipeline",
        "steps": [{"name": name, "estimator": encode_value(step, writer, name)} for name, step in steps],
        "params": {name: encode_value(value, writer, f"pipeline-{name}") for name, value in params.items()},
    }


def _is_fitted(estimator) -> bool:
    return hasattr(estimator, _FITTED_MARKERS[type(estimator)])


def _encode_sentence_encoder(encoder: SentenceEncoder, writer: PartWriter, stem: str) -> dict:
    return {"model_fingerprint": encoder.model_fingerprint_, "embedding_dimension": int(encoder.embedding_dimension_)}


def _feature_state(estimator) -> dict:
    state = {"n_features_in": int(estimator.n_features_in_)}
    if hasattr(estimator, "feature_names_in_"):
        state["feature_names_in"] = encode_array(estimator.feature_names_in_)
    return state


def _encode_multitask(classifier: MultiTaskClassifier, writer: PartWriter, stem: str) -> dict:
    return {
        "tasks": list(classifier.tasks_),
        "y_is_frame": bool(classifier._y_is_frame),
        "y_is_1d": bool(classifier._y_is_1d),
        **_feature_state(classifier),
        "estimators": [
            {"task": task, "estimator": encode_estimator(classifier.estimators_[task], writer, task)}
            for task in classifier.tasks_
        ],
    }


def _encode_xgboost_head(head: XGBoostHead, writer: PartWriter, stem: str) -> dict:
    name, path = writer.new_file("heads", stem, ".ubj")
    head.booster_.save_model(path)
    booster_params = {key: value for key, value in head.booster_.get_params().items() if key != "callbacks"}
    return {
        "classes": encode_array(head.classes_),
        "best_iteration": int(head.best_iteration_),
        **_feature_state(head),
        "booster": name,
        "booster_params": {key: encode_value(value, writer, f"{stem}-booster-{key}") for key, value in booster_params.items()},
    }


def _encode_tuned_head(head: TunedXGBoostHead, writer: PartWriter, stem: str) -> dict:
    return {
        "classes": encode_array(head.classes_),
        "best_params": encode_value(head.best_params_, writer, stem),
        "best_score": encode_value(head.best_score_, writer, stem),
        "boosting_rounds": int(head.boosting_rounds_),
        **_feature_state(head),
        "best_estimator": encode_estimator(head.best_estimator_, writer, stem),
    }


def _encode_finetuner(tuner: MultiTaskFineTuner, writer: PartWriter, stem: str) -> dict:
    from safetensors.numpy import save_file

    name, path = writer.new_file("heads", f"{stem}-finetuned", ".safetensors")
    save_file({key: np.ascontiguousarray(value) for key, value in tuner.heads_.items()}, str(path))

    # A frozen encoder is the starting model itself, which the loading side resolves
    # again from model_name_or_path. A fine-tuned one travels inside the bundle.
    if tuner.encoder_path_ == resolve_model_reference(tuner.model_name_or_path):
        encoder = {"from_params": True}
    elif os.path.isdir(tuner.encoder_path_):
        encoder = {"embedded": writer.copy_encoder(tuner.encoder_path_)}
    else:
        encoder = {"reference": tuner.encoder_path_}

    return {
        "tasks": list(tuner.tasks_),
        "classes": [{"task": task, "labels": encode_array(tuner.classes_[task])} for task in tuner.tasks_],
        "y_is_frame": bool(tuner._y_is_frame),
        "y_is_1d": bool(tuner._y_is_1d),
        "history": encode_value(tuner.history_, writer, stem),
        "best_epoch": int(tuner.best_epoch_),
        "task_weights": encode_value(tuner.task_weights_, writer, stem),
        "embedding_dimension": int(tuner.embedding_dimension_),
        "heads": name,
        "encoder": encoder,
    }


def _write_skops(value, writer: PartWriter, stem: str) -> str:
    try:
        import skops.io
    except ImportError as error:
        raise ImportError(f"Saving {type(value).__name__} needs skops; install it with `pip install skops`.") from error

    name, path = writer.new_file("estimators", stem, ".skops")
    skops.io.dump(value, path)
    return name


def encode_array(array: np.ndarray) -> dict:
    """Return a numeric, boolean or string array as JSON: dtype, shape and values."""
    array = np.asarray(array)
    if array.dtype.kind not in "biufUO" or array.dtype.fields is not None:
        raise TypeError(f"Cannot store an array of dtype {array.dtype} in a model bundle; use numbers or strings.")
    values = array.ravel().tolist()
    for value in values:
        if value is not None and not isinstance(value, (bool, int, float, str, np.number, np.bool_, np.str_)):
            raise TypeError(
                f"Cannot store the value {value!r} ({type(value).__name__}) of an object array in a model bundle; "
                "labels must be strings, numbers or booleans."
            )
    return {"dtype": array.dtype.str, "shape": list(array.shape), "values": [_encode_scalar(value) for value in values]}


def _encode_scalar(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    return value


def encode_value(value, writer: PartWriter, stem: str):
    """Return a parameter or attribute value as JSON.

    Containers, numbers and strings map to JSON, estimators to nodes and Optuna
    distributions to Optuna's own JSON. Optuna samplers, pruners and storage objects
    only steer a search, so they are not stored and load as None. Anything else
    goes to a skops file.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.number, np.bool_, np.str_)):
        return _encode_scalar(value)
    if isinstance(value, np.ndarray):
        return {"$ndarray": encode_array(value)}
    if isinstance(value, list):
        return [encode_value(item, writer, stem) for item in value]
    if isinstance(value, tuple):
        return {"$tuple": [encode_value(item, writer, stem) for item in value]}
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("$") for key in value):
            return {key: encode_value(item, writer, f"{stem}-{key}") for key, item in value.items()}
        return {"$items": [[encode_value(key, writer, stem), encode_value(item, writer, stem)] for key, item in value.items()]}
    if isinstance(value, os.PathLike):
        return {"$path": os.fspath(value)}
    if isinstance(value, BaseEstimator):
        return {"$estimator": encode_estimator(value, writer, stem)}

    module = type(value).__module__ or ""
    if module.startswith("optuna."):
        import optuna

        if isinstance(value, optuna.distributions.BaseDistribution):
            return {"$optuna_distribution": optuna.distributions.distribution_to_json(value)}
        if isinstance(value, (optuna.samplers.BaseSampler, optuna.pruners.BasePruner, optuna.storages.BaseStorage)):
            logger.info("%s (%s) only steers a search and is not saved; the loaded model has None in its place", stem, type(value).__name__)
            return {"$not_saved": type(value).__name__}
    return {"$skops": _write_skops(value, writer, stem)}


_ENCODERS = {
    SentenceEncoder: _encode_sentence_encoder,
    MultiTaskClassifier: _encode_multitask,
    XGBoostHead: _encode_xgboost_head,
    TunedXGBoostHead: _encode_tuned_head,
    MultiTaskFineTuner: _encode_finetuner,
}
_TYPE_NAMES = {
    SentenceEncoder: "sentence_encoder",
    MultiTaskClassifier: "multitask_classifier",
    XGBoostHead: "xgboost_head",
    TunedXGBoostHead: "tuned_xgboost_head",
    MultiTaskFineTuner: "multitask_finetuner",
}
_FITTED_MARKERS = {
    SentenceEncoder: "model_fingerprint_",
    MultiTaskClassifier: "estimators_",
    XGBoostHead: "booster_",
    TunedXGBoostHead: "best_estimator_",
    MultiTaskFineTuner: "encoder_path_",
}


# ----------------------------------------------------------------- reading


class PartReader:
    """Resolve the part files of a verified bundle and check skops types against the trusted list.

    Parameters
    ----------
    root : Path
        The bundle directory.
    files : collection of str
        Bundle-relative names of the files whose checksums were verified.
    trusted_types : iterable of str, default=()
        Type names trusted in skops files beyond skops's defaults and :data:`TRUSTED_TYPES`.
    """

    def __init__(self, root: Path, files: Collection[str], trusted_types: Iterable[str] = ()) -> None:
        self.root = root
        self.files = frozenset(files)
        self.trusted_types = frozenset(TRUSTED_TYPES) | frozenset(trusted_types)

    def file(self, name) -> Path:
        """Return the path of a verified file; a name outside the verified list raises BundleError."""
        if not isinstance(name, str) or name not in self.files:
            raise BundleError(f"{self.root}: manifest.json refers to {name!r}, which is not one of its verified files.")
        return self.root / name

    def directory(self, name) -> Path:
        """Return the path of a folder of verified files, such as an embedded encoder."""
        if not isinstance(name, str) or not any(file.startswith(f"{name}/") for file in self.files):
            raise BundleError(f"{self.root}: manifest.json refers to the folder {name!r}, which has no verified files.")
        return self.root / name

    def load_skops(self, name):
        """Load a skops file after checking that every type in it is trusted."""
        import skops.io

        path = self.file(name)
        reject_pickle(path)
        try:
            found = skops.io.get_untrusted_types(file=path)
        except Exception as error:
            raise BundleError(f"{path} is not a valid skops file: {error}") from error
        untrusted = sorted(set(found) - self.trusted_types)
        if untrusted:
            raise UntrustedTypesError(
                f"{path} contains types outside the trusted list: {untrusted}. Review them, then pass them as "
                "trusted_types=[...] to load_pipeline if you trust the model's source.",
                untrusted,
            )
        return skops.io.load(path, trusted=found)


def reject_pickle(path: Path) -> None:
    """Raise UnsafeContentError when ``path`` starts like a pickle (protocol 2 or later)."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise UnsafeContentError(f"{path} is a Python pickle, which save_pipeline never writes; the file was replaced, so it is not loaded.")


def check_encoder_directory(path: Path) -> None:
    """Raise UnsafeContentError unless ``path`` is a sentence-transformers directory that
    loads without custom code: no pickle-based weight files, and only module types of
    the ``sentence_transformers`` package in ``modules.json``."""
    for file in sorted(path.rglob("*")):
        if file.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeContentError(
                f"{file} is a pickle-based file; embedded encoders store their weights as safetensors only."
            )
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        raise BundleError(f"{path} is not a sentence-transformers directory: modules.json is missing.")
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        types = [str(module["type"]) for module in modules]
    except (ValueError, KeyError, TypeError) as error:
        raise BundleError(f"{modules_file} is not a valid sentence-transformers module list: {error}") from error
    custom = [name for name in types if not name.startswith("sentence_transformers.")]
    if custom:
        raise UnsafeContentError(f"{modules_file} names module types outside sentence_transformers: {custom}; loading them would run their code.")


def decode_estimator(node, reader: PartReader):
    """Return the estimator that :func:`encode_estimator` described as ``node``."""
    if not isinstance(node, dict) or "type" not in node:
        raise BundleError(f"{reader.root}: manifest.json has an invalid estimator entry: {str(node)[:200]}")
    kind = node["type"]
    if kind == "pipeline":
        steps = [(step["name"], decode_value(step["estimator"], reader)) for step in node["steps"]]
        return Pipeline(steps, **_decode_mapping(node.get("params", {}), reader))
    if kind == "skops":
        return reader.load_skops(node["file"])
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise BundleError(f"{reader.root}: manifest.json has an estimator of unknown type {kind!r}.")

    cls, restore = decoder
    estimator = cls(**_decode_mapping(node["params"], reader))
    if node.get("fitted") is not None:
        restore(estimator, node["fitted"], reader)
    return estimator


def _decode_mapping(data, reader: PartReader) -> dict:
    if not isinstance(data, dict):
        raise BundleError(f"{reader.root}: manifest.json has {str(data)[:100]!r} where it needs a JSON object.")
    return {key: decode_value(value, reader) for key, value in data.items()}


def decode_array(data) -> np.ndarray:
    """Return the array that :func:`encode_array` described."""
    dtype = np.dtype(data["dtype"])
    if dtype.kind not in "biufUO":
        raise BundleError(f"manifest.json has an array of dtype {dtype}; only numbers and strings are allowed.")
    values = [_decode_scalar(value) for value in data["values"]]
    array = np.empty(len(values), dtype=dtype)
    array[:] = values
    return array.reshape(data["shape"])


def _decode_scalar(value):
    if isinstance(value, dict) and set(value) == {"$float"}:
        return float(value["$float"])
    return value


def decode_value(data, reader: PartReader):
    """Return the value that :func:`encode_value` described."""
    if isinstance(data, list):
        return [decode_value(item, reader) for item in data]
    if not isinstance(data, dict):
        return data
    if len(data) == 1:
        ((key, inner),) = data.items()
        if key.startswith("$"):
            return _decode_marker(key, inner, reader)
    return {key: decode_value(item, reader) for key, item in data.items()}


def _decode_marker(key: str, inner, reader: PartReader):
    if key == "$float":
        return float(inner)
    if key == "$ndarray":
        return decode_array(inner)
    if key == "$tuple":
        return tuple(decode_value(item, reader) for item in inner)
    if key == "$items":
        return {decode_value(k, reader): decode_value(v, reader) for k, v in inner}
    if key == "$path":
        return Path(inner)
    if key == "$estimator":
        return decode_estimator(inner, reader)
    if key == "$optuna_distribution":
        import optuna

        return optuna.distributions.json_to_distribution(inner)
    if key == "$not_saved":
        return None
    if key == "$skops":
        return reader.load_skops(inner)
    raise BundleError(f"{reader.root}: manifest.json has a value of unknown kind {key!r}.")


def _restore_features(estimator, fitted: dict) -> None:
    estimator.n_features_in_ = int(fitted["n_features_in"])
    if "feature_names_in" in fitted:
        estimator.feature_names_in_ = decode_array(fitted["feature_names_in"])


def _restore_sentence_encoder(encoder: SentenceEncoder, fitted: dict, reader: PartReader) -> None:
    encoder.embedding_dimension_ = int(fitted["embedding_dimension"])
    encoder._n_features_out = encoder.embedding_dimension_
    encoder.cache_stats_ = CacheStats()

    # The fingerprint is part of every cache key, so it must describe the model
    # files on this machine. A difference means the encoder is not the one the
    # heads were trained on.
    encoder.model_fingerprint_ = model_fingerprint(encoder.model_name_or_path)
    if encoder.model_fingerprint_ != fitted["model_fingerprint"]:
        logger.warning(
            "Encoder model %s differs from the one the model was trained with (fingerprint %s, saved %s); "
            "predictions may be wrong.",
            resolve_model_reference(encoder.model_name_or_path),
            encoder.model_fingerprint_,
            fitted["model_fingerprint"],
        )


def _restore_multitask(classifier: MultiTaskClassifier, fitted: dict, reader: PartReader) -> None:
    classifier.tasks_ = list(fitted["tasks"])
    classifier._y_is_frame = bool(fitted["y_is_frame"])
    classifier._y_is_1d = bool(fitted["y_is_1d"])
    _restore_features(classifier, fitted)
    classifier.estimators_ = {entry["task"]: decode_estimator(entry["estimator"], reader) for entry in fitted["estimators"]}
    if list(classifier.estimators_) != classifier.tasks_:
        raise BundleError(f"{reader.root}: manifest.json lists heads for {list(classifier.estimators_)} but tasks {classifier.tasks_}.")
    classes = [classifier.estimators_[task].classes_ for task in classifier.tasks_]
    classifier.classes_ = classes[0] if classifier._y_is_1d else classes


def _restore_xgboost_head(head: XGBoostHead, fitted: dict, reader: PartReader) -> None:
    from xgboost import XGBClassifier
    from xgboost.core import XGBoostError

    path = reader.file(fitted["booster"])
    reject_pickle(path)
    booster = XGBClassifier(**_decode_mapping(fitted["booster_params"], reader))
    try:
        booster.load_model(path)
    except XGBoostError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BundleError(f"{path} is not a valid XGBoost model file: {reason}") from error

    head.booster_ = booster
    head.classes_ = decode_array(fitted["classes"])
    head._label_encoder = LabelEncoder()
    head._label_encoder.classes_ = head.classes_
    head.best_iteration_ = int(fitted["best_iteration"])
    _restore_features(head, fitted)


def _restore_tuned_head(head: TunedXGBoostHead, fitted: dict, reader: PartReader) -> None:
    head.classes_ = decode_array(fitted["classes"])
    head.best_params_ = decode_value(fitted["best_params"], reader)
    head.best_score_ = float(decode_value(fitted["best_score"], reader))
    head.boosting_rounds_ = int(fitted["boosting_rounds"])
    _restore_features(head, fitted)
    head.best_estimator_ = decode_estimator(fitted["best_estimator"], reader)


def _restore_finetuner(tuner: MultiTaskFineTuner, fitted: dict, reader: PartReader) -> None:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = reader.file(fitted["heads"])
    reject_pickle(path)
    try:
        tuner.heads_ = load_file(str(path))
    except SafetensorError as error:
        raise BundleError(f"{path} is not a valid safetensors file: {error}") from error

    encoder = fitted["encoder"]
    if "embedded" in encoder:
        directory = reader.directory(encoder["embedded"])
        check_encoder_directory(directory)
        tuner.encoder_path_ = str(directory)
    elif "reference" in encoder:
        tuner.encoder_path_ = str(encoder["reference"])
    else:
        tuner.encoder_path_ = resolve_model_reference(tuner.model_name_or_path)

    tuner.tasks_ = list(fitted["tasks"])
    tuner.classes_ = {entry["task"]: decode_array(entry["labels"]) for entry in fitted["classes"]}
    tuner._y_is_frame = bool(fitted["y_is_frame"])
    tuner._y_is_1d = bool(fitted["y_is_1d"])
    tuner.history_ = decode_value(fitted["history"], reader)
    tuner.best_epoch_ = int(fitted["best_epoch"])
    tuner.task_weights_ = decode_value(fitted["task_weights"], reader)
    tuner.embedding_dimension_ = int(fitted["embedding_dimension"])
    tuner._n_features_out = tuner.embedding_dimension_
    tuner._head_modules = None


_DECODERS = {
    "sentence_encoder": (SentenceEncoder, _restore_sentence_encoder),
    "multitask_classifier": (MultiTaskClassifier, _restore_multitask),
    "xgboost_head": (XGBoostHead, _restore_xgboost_head),
    "tuned_xgboost_head": (TunedXGBoostHead, _restore_tuned_head),
    "multitask_finetuner": (MultiTaskFineTuner, _restore_finetuner),
}
