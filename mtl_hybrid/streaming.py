"""Chunked processing of inputs too large for memory, and files written atomically.

:func:`iter_chunks` cuts any iterable into lists of bounded length.
:class:`NpyWriter` appends rows of a fixed width to a ``.npy`` file whose row
count is unknown when writing starts, and :func:`atomic_text_file` writes a text
file. Both write under a temporary name in the target's folder and rename it to
the target only when complete, so the target never contains a partial file.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["NpyWriter", "atomic_text_file", "default_mode", "iter_chunks"]


def default_mode(mode: int) -> int:
    """Return ``mode`` with the process umask applied, as open() would for a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def iter_chunks(items: Iterable, size: int) -> Iterator[list]:
    """Yield consecutive lists of up to ``size`` items of ``items``; never an empty one."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


@contextmanager
def atomic_text_file(path: str | os.PathLike) -> Iterator[TextIO]:
    """Open a temporary UTF-8 text file beside ``path``, renamed to ``path`` on success.

    On an exception the temporary file is deleted and ``path`` keeps its old content.
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            yield handle
        # mkstemp creates the file with mode 0o600; give it a new file's usual mode.
        os.chmod(temporary, default_mode(0o666))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class NpyWriter:
    """Append float32 rows of a fixed width to a ``.npy`` file, as a context manager.

    The header is written first for zero rows and rewritten with the final row
    count on exit. NumPy pads every ``.npy`` header with room for a row count of
    up to 21 digits, so the rewritten header has the same length and the data
    never moves.

    Parameters
    ----------
    path : str or path-like
        The file to write; it appears, complete, only when the ``with`` block
        ends without an exception.
    width : int
        Columns of every row.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npy")
    >>> with NpyWriter(path, 3) as writer:
    ...     writer.append(np.ones((2, 3)))
    ...     writer.append(np.zeros((1, 3)))
    >>> np.load(path).shape
    (3, 3)
    """

    def __init__(self, path: str | os.PathLike, width: int) -> None:
        self.path = Path(path)
        self.width = int(width)
        self.rows = 0
        self._handle = None
        self._temporary: Path | None = None
        self._header_length = 0

    def _header(self, rows: int) -> bytes:
        import io

        buffer = io.BytesIO()
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": (rows, self.width)}
        np.lib.format.write_array_header_1_0(buffer, header)
        return buffer.getvalue()

    def __enter__(self) -> NpyWriter:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._temporary = Path(temporary)
        self._handle = os.fdopen(descriptor, "wb")
        header = self._header(0)
        self._header_length = len(header)
        self._handle.write(header)
        return self

    def append(self, rows: np.ndarray) -> None:
        """Write ``rows``, an array of shape (n, width), after the rows written so far."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"rows must have shape (n, {self.width}), got {rows.shape}.")
        self._handle.write(rows.tobytes())
        self.rows += len(rows)

    def __exit__(self, error_type, error, traceback) -> None:
        try:
            if error_type is None:
                header = self._header(self.rows)
                if len(header) != self._header_length:
                    raise RuntimeError(f"The .npy header for {self.rows} rows changed length; {self.path} was not written.")
                self._handle.seek(0)
                self._handle.write(header)
            self._handle.close()
            if error_type is None:
                os.chmod(self._temporary, default_mode(0o666))
                os.replace(self._temporary, self.path)
        finally:
            self._temporary.unlink(missing_ok=True)
