"""PNG plots of comparison reports, drawn with matplotlib's Agg backend."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["plot_confusion_matrix", "plot_scores"]


def _figure(width: float, height: float, columns: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(1, columns, figsize=(width, height), layout="constrained")


def _save(plt, figure, path: Path) -> None:
    """Write the figure as PNG to a temporary file and rename it into place."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
    os.replace(temporary, path)


def plot_scores(summary: pd.DataFrame, path: str | os.PathLike, title: str | None = None) -> None:
    """Plot each candidate's mean macro-F1 with its 95% interval, one panel per task.

    ``summary`` has the columns task, candidate, macro_f1, macro_f1_low,
    macro_f1_high and best, as in :class:`~mtl_hybrid.compare.ComparisonResult`.
    """
    tasks = list(dict.fromkeys(summary["task"]))
    candidates = list(dict.fromkeys(summary["candidate"]))
    plt, (figure, axes) = _figure(4.2 * len(tasks) + 1.5, 0.45 * len(candidates) + 1.6, columns=len(tasks))
    axes = list(np.atleast_1d(axes))
    for axis, task in zip(axes, tasks):
        table = summary[summary["task"] == task].set_index("candidate").loc[candidates]
        positions = np.arange(len(candidates))[::-1]
        errors = np.vstack([table["macro_f1"] - table["macro_f1_low"], table["macro_f1_high"] - table["macro_f1"]])
        colors = ["tab:orange" if best else "tab:blue" for best in table["best"]]
        axis.errorbar(table["macro_f1"], positions, xerr=np.nan_to_num(errors), fmt="none", ecolor="gray", capsize=3)
        axis.scatter(table["macro_f1"], positions, c=colors, zorder=3)
        axis.set_yticks(positions, candidates if axis is axes[0] else [""] * len(candidates))
        axis.set_title(task)
        axis.set_xlabel("macro-F1 (mean, 95% interval)")
        axis.grid(axis="x", alpha=0.3)
    if title:
        figure.suptitle(title)
    _save(plt, figure, path)


def plot_confusion_matrix(matrix, labels: list[str], path: str | os.PathLike, title: str | None = None) -> None:
    """Plot a confusion matrix: colour is the share of each true label's rows, text the count."""
    matrix = np.asarray(matrix)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.55 * len(labels)
    plt, (figure, axis) = _figure(size + 1.5, size + 0.8)
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for row in range(len(labels)):
        for column in range(len(labels)):
            color = "white" if shares[row, column] > 0.5 else "black"
            axis.text(column, row, str(matrix[row, column]), ha="center", va="center", color=color, fontsize=8)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    figure.colorbar(image, ax=axis, label="share of the true label's rows")
    if title:
        axis.set_title(title, fontsize=9)
    _save(plt, figure, path)
