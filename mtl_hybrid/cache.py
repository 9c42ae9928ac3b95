"""Embedding cache in memory and on disk.

Embeddings are stored per *namespace*: a hash of the model fingerprint and the
encode options that change the output. Inside a namespace each text is keyed
by the SHA-256 of its UTF-8 bytes. The in-memory store is shared by the whole
process, so clones of an estimator (cross-validation, hyperparameter search)
reuse the vectors that another clone computed. The optional on-disk store is one
SQLite file per namespace: every batch is committed in its own transaction, so
an interrupted run keeps what it encoded and concurrent processes may share it.

Threads may share a cache: lookups and the encoding of missing texts run under a
lock per namespace, so each text is encoded once and every thread gets the same
vector for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["CacheStats", "EmbeddingCache", "clear_memory_cache", "namespace_key", "text_key"]

_MEMORY: dict[str, dict[str, np.ndarray]] = {}
_MEMORY_LOCK = threading.Lock()
_NAMESPACE_LOCKS: dict[str, threading.Lock] = {}
# Keys known to be in each SQLite file, so repeated lookups skip the disk.
_ON_DISK: dict[str, set[str]] = {}


def text_key(text: str) -> str:
    """Return the cache key of one text: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def namespace_key(fingerprint: str, options: dict) -> str:
    """Return the namespace of a model fingerprint and its encode options."""
    payload = json.dumps({"model": fingerprint, "options": options}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def clear_memory_cache() -> None:
    """Drop every embedding held in this process's memory (the disk store is kept)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()
        _ON_DISK.clear()


@dataclass
class CacheStats:
    """Counts of texts served from memory, from disk, and encoded by the model."""

    memory_hits: int = 0
    disk_hits: int = 0
    encoded: int = 0


class EmbeddingCache:
    """Look up embeddings by text, computing and storing the missing ones.

    Parameters
    ----------
    namespace : str
        Key of the model and encode options, from :func:`namespace_key`.
    cache_dir : str or Path, default=None
        Folder of the on-disk store. ``None`` keeps embeddings in memory only.
    """

    def __init__(self, namespace: str, cache_dir: str | Path | None = None) -> None:
        self.namespace = namespace
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.stats = CacheStats()
        with _MEMORY_LOCK:
            self._memory = _MEMORY.setdefault(namespace, {})
            self._lock = _NAMESPACE_LOCKS.setdefault(namespace, threading.Lock())

    @property
    def disk_path(self) -> Path | None:
        """Path of this namespace's SQLite file, or None without a cache folder."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"embeddings-{self.namespace}.sqlite"

    def get_or_compute(
        self,
        texts: Sequence[str],
        compute: Callable[[list[str]], np.ndarray],
        chunk_size: int = 4096,
        remember: bool = True,
    ) -> np.ndarray:
        """Return one embedding per text, calling ``compute`` on the missing ones.

        Each distinct missing text is computed once, in chunks of ``chunk_size``
        that are written to the disk store as soon as they are done. With
        ``remember=False`` the vectors read from disk or computed are not added to
        the process-wide memory store, so memory stays bounded by ``texts``.
        Threads that share the namespace wait for each other here.
        """
        keys = [text_key(text) for text in texts]
        with self._lock:
            return self._get_or_compute(keys, texts, compute, chunk_size, remember)

    def _get_or_compute(self, keys: list[str], texts: Sequence[str], compute, chunk_size: int, remember: bool) -> np.ndarray:
        unique = dict(zip(keys, texts))
        # With remember=False, found vectors go to a dict local to this call.
        store = self._memory if remember else {key: self._memory[key] for key in unique if key in self._memory}
        in_memory = {key for key in unique if key in store}
        self.stats.memory_hits += sum(1 for key in keys if key in in_memory)

        if self.disk_path is not None:
            self._sync_disk(unique, in_memory, keys, store, remember)

        missing = [key for key in unique if key not in store]
        for start in range(0, len(missing), chunk_size):
            chunk_keys = missing[start : start + chunk_size]
            vectors = np.asarray(compute([unique[key] for key in chunk_keys]), dtype=np.float32)
            computed = dict(zip(chunk_keys, vectors))
            self._write_disk(computed, register=remember)
            store.update(computed)
            self.stats.encoded += len(chunk_keys)

        if not keys:
            return np.empty((0, 0), dtype=np.float32)
        return np.stack([store[key] for key in keys])

    def _sync_disk(self, unique: dict[str, str], in_memory: set[str], keys: list[str], store: dict, remember: bool) -> None:
        """Load the texts missing from ``store`` off disk, and store on disk the
        vectors that only memory has (computed before ``cache_dir`` was set)."""
        if remember:
            with _MEMORY_LOCK:
                known = _ON_DISK.setdefault(str(self.disk_path), set())
            unknown = [key for key in unique if key not in known]
        else:
            # The set of keys known to be on disk describes the memory store, which
            # this call does not fill, so it is neither read nor updated.
            known = None
            unknown = [key for key in unique if key not in store]
        if not unknown:
            return

        found = self._read_disk(unknown)
        if known is not None:
            known.update(found)
        fresh = {key: vector for key, vector in found.items() if key not in in_memory}
        store.update(fresh)
        self.stats.disk_hits += sum(1 for key in keys if key in fresh)

        memory_only = {key: store[key] for key in unknown if key in in_memory and key not in found}
        self._write_disk(memory_only, register=remember)

    def _connect(self) -> sqlite3.Connection:
        assert self.disk_path is not None
        self.disk_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._open(self.disk_path)
        except sqlite3.DatabaseError as error:
            # A damaged cache only costs re-encoding: set it aside and start a new one.
            damaged = self.disk_path.with_name(f"{self.disk_path.name}.damaged")
            logger.warning("Embedding cache %s is damaged (%s); moved it to %s and starting a new one", self.disk_path, error, damaged)
            os.replace(self.disk_path, damaged)
            return self._open(self.disk_path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=60)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def _read_disk(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        connection = self._connect()
        try:
            # SQLite limits the number of bound parameters, so look keys up in batches.
            for start in range(0, len(keys), 500):
                batch = keys[start : start + 500]
                placeholders = ",".join("?" * len(batch))
                rows = connection.execute(
                    f"SELECT key, vector FROM embeddings WHERE key IN ({placeholders})", batch
                )
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        finally:
            connection.close()
        return found

    def _write_disk(self, vectors: dict[str, np.ndarray], register: bool = True) -> None:
        if self.disk_path is None or not vectors:
            return
        connection = self._connect()
        try:
            with connection:
                connection.executemany(
                    "INSERT OR REPLACE INTO embeddings (key, vector) VALUES (?, ?)",
                    [(key, np.ascontiguousarray(vector, dtype=np.float32).tobytes()) for key, vector in vectors.items()],
                )
        finally:
            connection.close()
        if register:
            with _MEMORY_LOCK:
                _ON_DISK.setdefault(str(self.disk_path), set()).update(vectors)
        logger.debug("Stored %d embeddings in %s", len(vectors), self.disk_path)
