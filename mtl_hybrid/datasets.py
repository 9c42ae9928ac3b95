"""Loading review CSVs and grouped train/test splits."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

logger = logging.getLogger(__name__)

__all__ = ["data_home", "grouped_train_test_split", "iter_csv", "iter_grouped_folds", "load_reviews", "read_csv"]

DATA_HOME_VARIABLE = "MTL_HYBRID_DATA_HOME"


def data_home() -> Path:
    """Return the folder of the shared review datasets, from ``$MTL_HYBRID_DATA_HOME``."""
    value = os.environ.get(DATA_HOME_VARIABLE)
    if not value:
        raise RuntimeError(
            f"{DATA_HOME_VARIABLE} is not set; point it at the folder that contains the review CSVs."
        )
    return Path(value)


def _check_utf8(path: Path, block_size: int = 1 << 20) -> None:
    """Raise a ValueError naming the line and byte offset of the first invalid UTF-8 byte.

    The file is read in blocks of ``block_size`` bytes, so memory stays bounded
    whatever its size.
    """
    offset = 0  # file offset of data[0]
    newlines = 0  # line breaks before offset
    pending = b""  # the start of a character cut off by the end of the last block
    with open(path, "rb") as handle:
        while True:
            block = handle.read(block_size)
            data = pending + block
            if not data:
                return
            try:
                data.decode("utf-8")
                valid = len(data)
            except UnicodeDecodeError as error:
                # A character cut by the block boundary is completed by the next block.
                if not (block and error.reason == "unexpected end of data"):
                    line = newlines + data.count(b"\n", 0, error.start) + 1
                    raise ValueError(
                        f"{path} is not valid UTF-8: byte {data[error.start:error.start + 1]!r} at offset "
                        f"{offset + error.start} (line {line}); re-save the file as UTF-8."
                    ) from error
                valid = error.start
            newlines += data.count(b"\n", 0, valid)
            offset += valid
            pending = data[valid:]


# Cells read as missing labels. A text cell is missing only when it is empty, so a
# review that reads "NA" or "None" stays a review.
MISSING_LABELS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "<NA>"]


def read_csv(path: str | os.PathLike, text_column: str | None = None) -> pd.DataFrame:
    """Read a UTF-8 CSV file, with errors that name the file and the problem.

    With ``text_column``, that column is read as strings (numbers stay text, an
    empty cell is NaN) and the other columns treat :data:`MISSING_LABELS` as missing.
    """
    path = _check_csv_path(path)
    try:
        return pd.read_csv(path, encoding="utf-8", **_read_options(path, text_column))
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"{path} is empty; expected a CSV with a header row.") from error
    except pd.errors.ParserError as error:
        raise ValueError(f"{path} is not a valid CSV file: {error}") from error


def iter_csv(path: str | os.PathLike, text_column: str | None = None, chunksize: int = 10_000) -> Iterator[pd.DataFrame]:
    """Read a UTF-8 CSV file as DataFrames of up to ``chunksize`` rows, like :func:`read_csv`.

    Memory stays bounded by ``chunksize`` whatever the file's size. The file is
    checked (existence, UTF-8, header) before the first chunk is returned. A row
    that cannot be parsed raises a ValueError when its chunk is reached.
    """
    path = _check_csv_path(path)
    try:
        reader = pd.read_csv(path, encoding="utf-8", chunksize=chunksize, **_read_options(path, text_column))
        with reader:
            yield from reader
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"{path} is empty; expected a CSV with a header row.") from error
    except pd.errors.ParserError as error:
        raise ValueError(f"{path} is not a valid CSV file: {error}") from error


def _check_csv_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory; expected a CSV file.")
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    _check_utf8(path)
    return path


def _read_options(path: Path, text_column: str | None) -> dict:
    """Return the ``pandas.read_csv`` options that read ``text_column`` as text."""
    if text_column is None:
        return {}
    try:
        columns = pd.read_csv(path, encoding="utf-8", nrows=0).columns
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"{path} is empty; expected a CSV with a header row.") from error
    return {
        "dtype": {text_column: str} if text_column in columns else None,
        "keep_default_na": False,
        "na_values": {column: [""] if column == text_column else MISSING_LABELS for column in columns},
    }


def check_columns(frame: pd.DataFrame, required: Sequence[str], source: str) -> None:
    """Raise a ValueError listing the available columns when one of ``required`` is missing."""
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{source} has no column(s) {missing}; available columns: {list(frame.columns)}."
        )


def load_reviews(
    path: str | os.PathLike,
    text_column: str = "text",
    task_columns: Sequence[str] = ("category", "sentiment"),
    extra_columns: Sequence[str] = (),
    drop_missing_text: bool = True,
) -> pd.DataFrame:
    """Load a review CSV with one text column and one column per task.

    Parameters
    ----------
    path : str or path-like
        A UTF-8 CSV file with a header row.
    text_column : str, default="text"
        Column of review texts.
    task_columns : sequence of str, default=("category", "sentiment")
        Label columns, one per task. Missing labels stay as NaN.
    extra_columns : sequence of str, default=()
        Further columns to keep, such as a product id for grouped splits.
    drop_missing_text : bool, default=True
        Drop rows whose text is missing or blank (logged with their count).
        With ``False`` such rows raise a ValueError that lists them.

    Returns
    -------
    DataFrame
        The text, task and extra columns; task labels are strings, missing ones NaN.
    """
    if text_column in task_columns:
        raise ValueError(f"The text column {text_column!r} cannot also be a task; tasks: {list(task_columns)}.")
    if len(set(task_columns)) != len(task_columns):
        raise ValueError(f"Task columns must be distinct, got {list(task_columns)}.")
    frame = read_csv(path, text_column=text_column)
    columns = [text_column, *task_columns, *[c for c in extra_columns if c not in task_columns]]
    check_columns(frame, columns, str(path))
    frame = frame[columns].copy()

    texts = frame[text_column]
    missing = texts.isna() | texts.astype(str).str.strip().eq("")
    if missing.any():
        rows = (np.flatnonzero(missing.to_numpy()) + 2).tolist()
        if not drop_missing_text:
            raise ValueError(
                f"{path} has {len(rows)} row(s) with a missing or blank {text_column!r} "
                f"(CSV lines {rows[:10]}{' ...' if len(rows) > 10 else ''})."
            )
        logger.warning("Dropping %d row(s) of %s with a missing or blank %r", len(rows), path, text_column)
        frame = frame[~missing]
    frame[text_column] = frame[text_column].astype(str)

    for task in task_columns:
        labels = frame[task]
        frame[task] = labels.where(labels.isna(), labels.astype(str)).astype(object)
    return frame.reset_index(drop=True)


def _stratification_labels(labels: pd.DataFrame, n_splits: int) -> np.ndarray:
    """Return one label per row to stratify on: the joint label of all tasks when
    every combination has at least ``n_splits`` rows, else the first task."""
    # Missing labels form their own stratum, so they spread over both parts too.
    as_text = labels.astype(object).where(labels.notna(), "<missing>").astype(str)
    joint = as_text.agg("|".join, axis=1)
    if joint.value_counts().min() >= n_splits:
        return joint.to_numpy()
    return as_text.iloc[:, 0].to_numpy()


def grouped_train_test_split(
    frame: pd.DataFrame,
    *,
    stratify_columns: Sequence[str],
    group_column: str | None = None,
    test_size: float = 0.2,
    random_state: int | None = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into train and test, keeping each group on one side.

    With ``group_column`` the split comes from :class:`StratifiedGroupKFold` with
    ``round(1 / test_size)`` folds (its first fold is the test part), so every
    group lies wholly in train or in test and the label mix is kept where the
    groups allow. The test share is therefore about ``1 / round(1 / test_size)``.
    Without groups it is a stratified :func:`train_test_split`.

    Returns
    -------
    train, test : DataFrame
        The two parts, each with a fresh index.
    """
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1 (exclusive), got {test_size!r}.")
    check_columns(frame, [*stratify_columns, *([group_column] if group_column else [])], "data")
    if len(frame) < 2:
        raise ValueError(f"Need at least 2 rows to split into train and test, got {len(frame)}.")

    n_splits = max(2, int(round(1 / test_size)))
    if group_column is None:
        strata = _stratification_labels(frame[list(stratify_columns)], n_splits)
        counts = pd.Series(strata).value_counts()
        stratify = strata if counts.min() >= 2 else None
        train_rows, test_rows = train_test_split(
            np.arange(len(frame)), test_size=test_size, stratify=stratify, random_state=random_state
        )
    else:
        train_rows, test_rows = next(
            iter_grouped_folds(
                frame, stratify_columns=stratify_columns, group_column=group_column, n_splits=n_splits, random_state=random_state
            )
        )

    logger.info("Split %d rows into %d train and %d test", len(frame), len(train_rows), len(test_rows))
    return frame.iloc[np.sort(train_rows)].reset_index(drop=True), frame.iloc[np.sort(test_rows)].reset_index(drop=True)


def iter_grouped_folds(
    frame: pd.DataFrame,
    *,
    stratify_columns: Sequence[str],
    group_column: str | None = None,
    n_splits: int = 5,
    random_state: int | None = 0,
):
    """Yield ``(train_rows, test_rows)`` index arrays of ``n_splits`` stratified folds.

    With ``group_column`` the folds come from :class:`StratifiedGroupKFold`, so
    every group lies wholly in one test fold; fold 0 of five is then the split of
    :func:`grouped_train_test_split` with ``test_size=0.2`` and the same seed.
    Without groups they come from :class:`StratifiedKFold`. Rows are stratified
    on the joint label of all tasks when every combination is common enough, else
    on the first task.
    """
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer of at least 2, got {n_splits!r}.")
    check_columns(frame, [*stratify_columns, *([group_column] if group_column else [])], "data")
    strata = _stratification_labels(frame[list(stratify_columns)], n_splits)
    rare = pd.Series(strata).value_counts()
    if rare.min() < n_splits:
        logger.warning(
            "Label %r has only %d row(s), fewer than the %d folds; some folds will lack it",
            rare.idxmin(), rare.min(), n_splits,
        )

    if group_column is None:
        if len(frame) < n_splits:
            raise ValueError(f"Need at least {n_splits} rows for {n_splits} folds, got {len(frame)}.")
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        groups = None
    else:
        groups = frame[group_column]
        if groups.isna().any():
            raise ValueError(f"Group column {group_column!r} has {int(groups.isna().sum())} missing value(s).")
        if groups.nunique() < n_splits:
            raise ValueError(
                f"Group column {group_column!r} has {groups.nunique()} group(s); {n_splits} folds need at least {n_splits}."
            )
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        groups = groups.astype(str)

    with warnings.catch_warnings():
        # The warning logged above reports the same problem in the terms of these folds.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for train_rows, test_rows in splitter.split(np.zeros(len(frame)), strata, groups):
            yield np.sort(train_rows), np.sort(test_rows)
