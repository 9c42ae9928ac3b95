"""Statistics, tables and plots of a comparison of classifier heads."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ComparisonResult", "corrected_resampled_ttest", "mean_interval", "summarise", "write_report"]


@dataclass
class ComparisonResult:
    """Per-fold scores, their summary and the folds of a comparison."""

    folds: pd.DataFrame
    summary: pd.DataFrame
    confusion: dict = field(default_factory=dict)
    fold_indices: list = field(default_factory=list)
    output_dir: Path | None = None


# ------------------------------------------------------------------ statistics


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Return the mean of ``values`` and its Student-t confidence interval (low, high).

    With a single value the interval is that value's mean with NaN bounds.
    """
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def corrected_resampled_ttest(scores_a, scores_b, test_train_ratio: float) -> tuple[float, float, float]:
    """Compare two candidates' per-fold scores with the corrected resampled t-test.

    Nadeau and Bengio (2003, "Inference for the Generalization Error", Machine
    Learning 52) replace the variance term ``1/k`` of the paired t-test by
    ``1/k + n_test/n_train``, because training sets of different folds overlap
    and their scores are correlated. Returns (mean difference a - b, t, two-sided
    p-value with k - 1 degrees of freedom).
    """
    differences = np.asarray(scores_a, dtype=float) - np.asarray(scores_b, dtype=float)
    k = len(differences)
    mean = float(differences.mean())
    if k < 2:
        return mean, float("nan"), float("nan")
    variance = differences.var(ddof=1)
    if variance == 0:
        return mean, (0.0 if mean == 0 else math.copysign(math.inf, mean)), (1.0 if mean == 0 else 0.0)
    t = mean / math.sqrt((1 / k + test_train_ratio) * variance)
    p = 2 * stats.t.sf(abs(t), k - 1)
    return mean, float(t), float(p)


def summarise(records: dict, candidates: list, tasks: list[str], folds: list) -> ComparisonResult:
    rows = []
    for (name, fold), record in records.items():
        for task in tasks:
            values = record["tasks"][task]
            rows.append(
                {
                    "candidate": name,
                    "fold": fold,
                    "task": task,
                    "n_train": record["n_train"],
                    "n_test": record["n_test"],
                    "accuracy": values["accuracy"],
                    "macro_f1": values["macro_f1"],
                    "fit_seconds": values["fit_seconds"],
                    "predict_ms_per_1000": values["predict_ms_per_1000"],
                }
            )
    per_fold = pd.DataFrame(rows).sort_values(["task", "candidate", "fold"]).reset_index(drop=True)
    ratio = float(np.mean([len(test) / len(train) for train, test in folds]))

    summary_rows, confusion = [], {}
    for task in tasks:
        scores = {c.name: per_fold[(per_fold.task == task) & (per_fold.candidate == c.name)].sort_values("fold") for c in candidates}
        best = max(scores, key=lambda name: scores[name]["macro_f1"].mean())
        confusion[task] = _summed_confusion(records, best, task, len(folds))
        for candidate in candidates:
            table = scores[candidate.name]
            mean, low, high = mean_interval(table["macro_f1"])
            # Macro-F1 lies in [0, 1], but with few folds the t-interval can reach past it.
            low, high = max(low, 0.0), min(high, 1.0)
            difference, t, p = corrected_resampled_ttest(table["macro_f1"], scores[best]["macro_f1"], ratio)
            summary_rows.append(
                {
                    "task": task,
                    "candidate": candidate.name,
                    "folds": len(table),
                    "accuracy": table["accuracy"].mean(),
                    "accuracy_std": table["accuracy"].std(ddof=1),
                    "macro_f1": mean,
                    "macro_f1_low": low,
                    "macro_f1_high": high,
                    "macro_f1_std": table["macro_f1"].std(ddof=1),
                    "fit_seconds": table["fit_seconds"].mean(),
                    "predict_ms_per_1000": table["predict_ms_per_1000"].mean(),
                    "best": candidate.name == best,
                    "difference_to_best": difference,
                    "t": t if candidate.name != best else float("nan"),
                    "p_value": p if candidate.name != best else float("nan"),
                }
            )
    summary = pd.DataFrame(summary_rows)
    return ComparisonResult(folds=per_fold, summary=summary, confusion=confusion, fold_indices=folds)


def _summed_confusion(records: dict, name: str, task: str, n_folds: int) -> dict:
    """Return the confusion matrix of ``name`` for ``task``, summed over the folds."""
    labels = sorted({label for fold in range(n_folds) for label in records[name, fold]["tasks"][task]["labels"]})
    index = {label: i for i, label in enumerate(labels)}
    total = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for fold in range(n_folds):
        values = records[name, fold]["tasks"][task]
        positions = [index[label] for label in values["labels"]]
        total[np.ix_(positions, positions)] += np.asarray(values["confusion_matrix"], dtype=np.int64)
    return {"candidate": name, "labels": labels, "matrix": total}


# ------------------------------------------------------------------ the report


def write_report(
    result: ComparisonResult, output_dir: Path, *, candidates, title=None, command=None, n_rows=None, group_column=None,
    random_state=0, encoder=None, frozen_window=None, frozen_rates=None,
) -> None:
    """Write ``summary.md``, ``summary.csv``, ``folds.csv`` and the PNG plots to ``output_dir``."""
    from mtl_hybrid.plots import plot_confusion_matrix, plot_scores

    output_dir.mkdir(parents=True, exist_ok=True)
    _write_text_atomic(output_dir / "folds.csv", result.folds.to_csv(index=False, float_format="%.6g"))
    _write_text_atomic(output_dir / "summary.csv", result.summary.to_csv(index=False, float_format="%.6g"))

    plot_scores(result.summary, output_dir / "macro_f1.png", title=title)
    for task, confusion in result.confusion.items():
        plot_confusion_matrix(
            confusion["matrix"], confusion["labels"], output_dir / f"confusion_{_file_part(task)}.png",
            title=f"{task}: {confusion['candidate']}, summed over {len(result.fold_indices)} folds",
        )
    markdown = _markdown(result, candidates, title, command, n_rows, group_column, random_state, encoder, frozen_window, frozen_rates)
    _write_text_atomic(output_dir / "summary.md", markdown)


def _file_part(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _write_text_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _format_p(p: float) -> str:
    if math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _markdown(result, candidates, title, command, n_rows, group_column, random_state, encoder, frozen_window, frozen_rates) -> str:
    lines = [f"# {title or 'Comparison of classifier heads'}", ""]
    if command:
        lines += ["Regenerate with:", "", "```bash", command, "```", ""]
    lines += _method_lines(result, n_rows, group_column, random_state, encoder, frozen_window, frozen_rates)

    for task, table in result.summary.groupby("task", sort=False):
        lines += _task_table(task, table)

    lines += ["## Candidates", ""]
    lines += [f"- `{c.name}`: {c.description}" for c in candidates]
    lines += ["", "![macro-F1 per candidate](macro_f1.png)", ""]
    lines += ["Raw per-fold figures: `folds.csv`. The table above: `summary.csv`.", ""]
    return "\n".join(lines)


def _method_lines(result, n_rows, group_column, random_state, encoder, frozen_window, frozen_rates) -> list[str]:
    """Return the paragraphs that say how the folds, scores and times were made."""
    sizes = [len(test) for _, test in result.fold_indices]
    grouping = f"grouped by `{group_column}`" if group_column else "without groups"
    if min(sizes) == max(sizes):
        fold_sizes = f"test folds of {min(sizes):,} rows. "
    else:
        fold_sizes = f"test folds of {min(sizes):,} to {max(sizes):,} rows. "
    lines = [
        f"{n_rows:,} rows, {len(sizes)} stratified folds {grouping} (seed {random_state}), "
        + fold_sizes
        + "Every candidate is scored on the same folds."
    ]
    if encoder is not None:
        reference = encoder.model_name_or_path or "all-MiniLM-L6-v2"
        lines.append(f"Frozen encoder: {reference}, token window {frozen_window}.")

    timing = (
        "Fit time is per task and fold, in seconds: fitting the head, plus fitting the feature step where it "
        "learns from the fold (TF-IDF, fine-tuning; fine-tuning is shared by both tasks and counted in each). "
        "Frozen embeddings are encoded once for all candidates and not counted in the fit time. Prediction "
        "time is per 1,000 test texts and includes computing their features"
    )
    if encoder is not None:
        timing += "; frozen candidates are charged the encoder's uncached rate, measured on 128 texts in the run that fitted the fold"
    if frozen_rates:
        timing += f" ({min(frozen_rates):.0f} to {max(frozen_rates):.0f} texts per second)."
    else:
        timing += "."

    lines += [
        "",
        "Macro-F1 is the mean over folds with its 95% Student-t interval, clipped to [0, 1]. The last columns compare each "
        "candidate with the best of its task by the corrected resampled t-test (Nadeau and Bengio, 2003): "
        "the mean per-fold difference of macro-F1 and its two-sided p-value.",
        "",
        timing,
        "",
    ]
    return lines


def _task_table(task: str, table) -> list[str]:
    """Return one task's Markdown table, best candidate first, and its confusion-matrix plot."""
    lines = [
        f"## {task}",
        "",
        "| candidate | accuracy | macro-F1 (95% interval) | fit s | predict ms / 1,000 | Δ macro-F1 vs best | p |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in table.sort_values("macro_f1", ascending=False).itertuples():
        name = f"**{row.candidate}**" if row.best else row.candidate
        interval = f"{row.macro_f1:.4f} [{row.macro_f1_low:.4f}, {row.macro_f1_high:.4f}]"
        difference = "best" if row.best else f"{row.difference_to_best:+.4f}"
        lines.append(
            f"| {name} | {row.accuracy:.4f} | {interval} | {row.fit_seconds:.1f} | {row.predict_ms_per_1000:,.0f} "
            f"| {difference} | {_format_p(row.p_value)} |"
        )
    lines += ["", f"![confusion matrix of the best candidate](confusion_{_file_part(task)}.png)", ""]
    return lines
