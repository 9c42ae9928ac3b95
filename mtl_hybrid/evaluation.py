"""Metrics per task and their text report."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
)

from mtl_hybrid.multitask import missing_label_mask

logger = logging.getLogger(__name__)

__all__ = ["evaluate_tasks", "format_report"]


def evaluate_tasks(y_true: pd.DataFrame, y_pred: pd.DataFrame, known_labels: dict[str, list] | None = None) -> dict:
    """Compute accuracy, macro-F1, a per-class report and a confusion matrix per task.

    Rows whose true label is missing are left out of that task. A true label the
    model never saw in training counts as an error for every row that has it,
    and is listed under ``unseen_labels``.

    Returns
    -------
    dict
        ``{"tasks": {task: {"accuracy", "macro_f1", "n_samples", "per_class",
        "labels", "confusion_matrix", "unseen_labels"}}, "mean_macro_f1": float}``
    """
    tasks = {}
    for task in y_true.columns:
        present = ~missing_label_mask(y_true[task])
        truth = y_true[task][present].astype(str).to_numpy()
        guess = y_pred[task][present].astype(str).to_numpy()
        labels = sorted(set(truth) | set(guess))

        unseen = []
        if known_labels is not None and task in known_labels:
            unseen = sorted(set(truth) - {str(label) for label in known_labels[task]})
            if unseen:
                logger.warning("Task %r: labels never seen in training count as errors: %s", task, unseen)

        report = classification_report(truth, guess, labels=labels, output_dict=True, zero_division=0)
        tasks[task] = {
            "accuracy": float(accuracy_score(truth, guess)),
            "macro_f1": float(f1_score(truth, guess, labels=labels, average="macro", zero_division=0)),
            "n_samples": int(present.sum()),
            "labels": labels,
            "per_class": {label: report[label] for label in labels},
            "confusion_matrix": confusion_matrix(truth, guess, labels=labels).tolist(),
            "unseen_labels": unseen,
        }
    mean = float(np.mean([metrics["macro_f1"] for metrics in tasks.values()])) if tasks else float("nan")
    return {"tasks": tasks, "mean_macro_f1": mean}


def format_report(metrics: dict) -> str:
    """Return a plain-text report of :func:`evaluate_tasks` output, one block per task."""
    lines = []
    for task, values in metrics["tasks"].items():
        lines.append(f"== {task}: accuracy {values['accuracy']:.4f}, macro-F1 {values['macro_f1']:.4f} (n={values['n_samples']})")
        width = max(len(label) for label in values["labels"]) if values["labels"] else 5
        lines.append(f"{'class':<{width}}  precision  recall  f1-score  support")
        for label, row in values["per_class"].items():
            lines.append(
                f"{label:<{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1-score']:8.4f}  {int(row['support']):7d}"
            )
        if values["unseen_labels"]:
            lines.append(f"labels never seen in training: {values['unseen_labels']}")
        lines.append("")
    lines.append(f"mean macro-F1 over tasks: {metrics['mean_macro_f1']:.4f}")
    return "\n".join(lines)
