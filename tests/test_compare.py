"""Tests of the head comparison: folds, leakage, resume, statistics and the CLI."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from mtl_hybrid import SentenceEncoder, TunedXGBoostHead, XGBoostHead
from mtl_hybrid.cli import main
from mtl_hybrid.compare import Candidate, compare_heads, make_candidate
from mtl_hybrid.datasets import grouped_train_test_split, iter_grouped_folds
from mtl_hybrid.finetuning import MultiTaskFineTuner
from mtl_hybrid.report import corrected_resampled_ttest, mean_interval

TASKS = ["category", "sentiment"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_mean_interval_matches_scipy():
    values = [0.61, 0.64, 0.58, 0.66, 0.63]
    mean, low, high = mean_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))

    assert mean == pytest.approx(np.mean(values))
    assert (low, high) == pytest.approx(expected)


def test_corrected_ttest_without_correction_is_paired_ttest():
    a = np.array([0.71, 0.74, 0.69, 0.75, 0.72])
    b = np.array([0.70, 0.71, 0.69, 0.72, 0.70])

    difference, t, p = corrected_resampled_ttest(a, b, test_train_ratio=0.0)
    paired = stats.ttest_rel(a, b)

    assert difference == pytest.approx(np.mean(a - b))
    assert t == pytest.approx(paired.statistic)
    assert p == pytest.approx(paired.pvalue)


def test_corrected_ttest_correction_raises_p():
    a = np.array([0.71, 0.74, 0.69, 0.75, 0.72])
    b = np.array([0.70, 0.71, 0.69, 0.72, 0.70])

    _, _, plain = corrected_resampled_ttest(a, b, test_train_ratio=0.0)
    _, _, corrected = corrected_resampled_ttest(a, b, test_train_ratio=0.25)

    assert corrected > plain


def test_folds_keep_groups_apart(clothing):
    folds = list(iter_grouped_folds(clothing, stratify_columns=TASKS, group_column="clothing_id", n_splits=3))
    test_rows = np.concatenate([test for _, test in folds])

    assert len(folds) == 3
    assert sorted(test_rows.tolist()) == list(range(len(clothing)))
    for train, test in folds:
        shared = set(clothing["clothing_id"].iloc[train]) & set(clothing["clothing_id"].iloc[test])
        assert not shared


def test_first_of_five_folds_is_train_split(clothing):
    train_rows, test_rows = next(iter_grouped_folds(clothing, stratify_columns=TASKS, group_column="clothing_id", n_splits=5))
    train, test = grouped_train_test_split(clothing, stratify_columns=TASKS, group_column="clothing_id", test_size=0.2)

    assert clothing["text"].iloc[test_rows].tolist() == test["text"].tolist()
    assert clothing["text"].iloc[train_rows].tolist() == train["text"].tolist()


def test_unknown_candidate_names_builtins():
    with pytest.raises(ValueError, match="frozen-xgboost-tuned"):
        make_candidate("frozen-catboost")


def test_custom_candidate_by_import_path():
    candidate = make_candidate(
        "frozen-ridge", {"estimator": "sklearn.linear_model.RidgeClassifier", "features": "frozen", "params": {"alpha": 3.0}}
    )

    assert candidate.features == "frozen"
    assert candidate.head.alpha == 3.0


def test_custom_candidate_rejects_non_classifier():
    with pytest.raises(ValueError, match="classifier"):
        make_candidate("scaler", {"estimator": "sklearn.preprocessing.StandardScaler", "features": "frozen"})


class _Recorder:
    """Wrap a method so every call records its first argument, then runs the real method."""

    def __init__(self, monkeypatch, owner, name):
        self.calls = []
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(estimator, X, *args, **kwargs):
            self.calls.append(X)
            return original(estimator, X, *args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)


def test_tuning_and_finetuning_see_train_rows_only(clothing, tiny_model, tmp_path, monkeypatch):
    finetuner_calls = _Recorder(monkeypatch, MultiTaskFineTuner, "fit")
    tuner_calls = _Recorder(monkeypatch, TunedXGBoostHead, "fit")
    tfidf_calls = _Recorder(monkeypatch, TfidfVectorizer, "fit_transform")
    candidates = [
        make_candidate("tfidf-logreg"),
        make_candidate("frozen-xgboost-tuned", {"params": {"n_trials": 2, "cv": 2, "estimator": XGBoostHead(n_estimators=20)}}),
        make_candidate("finetuned-heads"),
        make_candidate("finetuned-xgboost", {"params": {"n_estimators": 20}}),
    ]

    result = compare_heads(
        clothing,
        tasks=TASKS,
        output_dir=tmp_path / "report",
        candidates=candidates,
        group_column="clothing_id",
        n_folds=3,
        encoder=SentenceEncoder(tiny_model),
        finetuner=MultiTaskFineTuner(tiny_model, epochs=1, batch_size=32, max_seq_length=32, show_progress_bar=False),
        show_progress_bar=False,
    )
    embeddings = SentenceEncoder(tiny_model).fit().transform(clothing["text"].tolist())

    assert len(finetuner_calls.calls) == 3
    assert len(tfidf_calls.calls) == 3
    assert len(tuner_calls.calls) == 3 * len(TASKS)
    for fold, (train_rows, test_rows) in enumerate(result.fold_indices):
        test_texts = set(clothing["text"].iloc[test_rows])
        assert set(finetuner_calls.calls[fold]).isdisjoint(test_texts)
        assert set(tfidf_calls.calls[fold]).isdisjoint(test_texts)
        assert len(finetuner_calls.calls[fold]) == len(train_rows)
        for X in tuner_calls.calls[2 * fold : 2 * fold + 2]:
            distances = np.abs(X[:, None, :] - embeddings[test_rows][None, :, :]).max(axis=2)
            assert distances.min() > 0, "a test-fold embedding reached the tuner"


class _InterruptingHead(ClassifierMixin, BaseEstimator):
    """Logistic regression that raises KeyboardInterrupt on the fit numbered ``interrupt_at``.

    The counter and the trigger are class attributes, not parameters, so they do
    not change the candidate's settings that resuming matches on.
    """

    fits = 0
    interrupt_at = None

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        type(self).fits += 1
        if type(self).fits == type(self).interrupt_at:
            raise KeyboardInterrupt
        self.model_ = LogisticRegression(C=self.C, max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)


def _run(frame, output_dir, head, **options):
    candidates = [make_candidate("tfidf-logreg"), Candidate("tfidf-custom", "tfidf", head)]
    return compare_heads(
        frame, tasks=TASKS, output_dir=output_dir, candidates=candidates, group_column="clothing_id", n_folds=3,
        show_progress_bar=False, **options,
    )


def test_interrupted_comparison_resumes(clothing, tmp_path):
    output = tmp_path / "report"
    _InterruptingHead.fits = 0
    # Fits 1-2 are fold 0 (two tasks); fit 3 is fold 1's first task.
    _InterruptingHead.interrupt_at = 3
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(clothing, output, _InterruptingHead())
    finally:
        _InterruptingHead.interrupt_at = None
    records = output / ".work" / "records"
    finished = sorted(path.relative_to(records).as_posix() for path in records.rglob("*.json"))
    before = {name: (records / name).stat().st_mtime_ns for name in finished}

    assert finished == ["tfidf-custom/fold0.json", "tfidf-logreg/fold0.json", "tfidf-logreg/fold1.json"]

    _InterruptingHead.fits = 0
    resumed = _run(clothing, output, _InterruptingHead())
    fresh = _run(clothing, tmp_path / "fresh", _InterruptingHead())

    assert _InterruptingHead.fits == 4 + 6  # the two missing folds, then the fresh run's three
    assert {name: (records / name).stat().st_mtime_ns for name in finished} == before
    assert len(resumed.folds) == 2 * 3 * len(TASKS)
    pd.testing.assert_frame_equal(
        resumed.folds.drop(columns=["fit_seconds", "predict_ms_per_1000"]),
        fresh.folds.drop(columns=["fit_seconds", "predict_ms_per_1000"]),
    )


def test_changed_candidate_settings_rerun_it(clothing, tmp_path):
    output = tmp_path / "report"
    _run(clothing, output, _InterruptingHead())
    _InterruptingHead.fits = 0

    _run(clothing, output, _InterruptingHead(C=2.0))

    assert _InterruptingHead.fits == 3 * len(TASKS)


def test_resume_on_other_data_rejected(clothing, tmp_path):
    output = tmp_path / "report"
    _run(clothing, output, _InterruptingHead())

    with pytest.raises(ValueError, match="data"):
        _run(clothing.iloc[:-10], output, _InterruptingHead())


def test_compare_command_writes_report(clothing_csv, tmp_path, capsys):
    config = tmp_path / "compare.toml"
    config.write_text(
        f"""
[data]
path = "{clothing_csv}"
tasks = ["category", "sentiment"]
group_column = "clothing_id"

[compare]
folds = 3
heads = ["tfidf-logreg", "frozen-logreg", "frozen-xgboost", "frozen-ridge"]

[candidates.frozen-xgboost]
params = {{n_estimators = 30}}

[candidates.frozen-ridge]
estimator = "sklearn.linear_model.RidgeClassifier"
features = "frozen"
""",
        encoding="utf-8",
    )
    output = tmp_path / "report"

    code = main(["compare", "--config", str(config), "--output", str(output), "--no-cache"])
    printed = capsys.readouterr().out
    per_fold = pd.read_csv(output / "folds.csv")
    summary = pd.read_csv(output / "summary.csv")

    assert code == 0
    assert "report written to" in printed
    assert len(per_fold) == 4 * 3 * len(TASKS)
    assert set(summary["candidate"]) == {"tfidf-logreg", "frozen-logreg", "frozen-xgboost", "frozen-ridge"}
    assert summary.groupby("task")["best"].sum().tolist() == [1, 1]
    assert (summary["macro_f1_low"] <= summary["macro_f1"]).all()
    assert (summary["macro_f1"] <= summary["macro_f1_high"]).all()
    for name in ["macro_f1.png", "confusion_category.png", "confusion_sentiment.png"]:
        assert (output / name).read_bytes()[:8] == PNG_SIGNATURE
    markdown = (output / "summary.md").read_text(encoding="utf-8")
    assert f"--config {config}" in markdown
    assert "## sentiment" in markdown


def test_compare_command_heads_flag_overrides_config(clothing_csv, tmp_path, capsys):
    output = tmp_path / "report"

    code = main([
        "compare", "--data", str(clothing_csv), "--task", "category", "--group-column", "clothing_id",
        "--heads", "tfidf-logreg", "--folds", "2", "--output", str(output),
    ])
    state = json.loads((output / ".work" / "state.json").read_text())

    assert code == 0
    assert pd.read_csv(output / "summary.csv")["candidate"].tolist() == ["tfidf-logreg"]
    assert state["n_folds"] == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--heads", "frozen-catboost"], "Unknown candidate 'frozen-catboost'"),
        (["--heads", "tfidf-logreg", "--folds", "1"], "at least 2"),
        (["--heads", "tfidf-logreg", "--task", "colour"], "colour"),
        (["--heads", ","], "no candidates given"),
        (["--heads", "tfidf-logreg", "--task", "category"], "tasks must be distinct"),
        (["--heads", "tfidf-logreg", "--group-column", "category"], "must be different columns"),
    ],
)
def test_compare_command_rejects_bad_input(clothing_csv, tmp_path, capsys, arguments, message):
    argv = ["compare", "--data", str(clothing_csv), "--task", "category", "--output", str(tmp_path / "out"), *arguments]

    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code

    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[data]\ntasks = "category"', "data.tasks must be a list of strings"),
        ("[compare]\nfolds = 2.5", "compare.folds must be an integer"),
        ("candidates = 3", "must be a [candidates] table"),
        ("[compare]\nheads = []", "no candidates given"),
        ('[candidates.p]\nestimator = "builtins.print"\nfeatures = "frozen"', "not a classifier class"),
    ],
)
def test_compare_config_rejects_bad_values(clothing_csv, tmp_path, capsys, config, message):
    path = tmp_path / "bad.toml"
    path.write_text(config + "\n", encoding="utf-8")
    argv = ["compare", "--config", str(path), "--data", str(clothing_csv), "--task", "category", "--output", str(tmp_path / "out")]

    code = main(argv)

    assert code == 2
    assert message in capsys.readouterr().err


def test_compare_config_encoder_options_apply(tmp_path):
    from mtl_hybrid.cli import _compare_settings, build_parser

    path = tmp_path / "encoder.toml"
    path.write_text('[data]\npath = "x.csv"\ntasks = ["category"]\n[encoder]\nbatch_size = 4\ncache_dir = "/tmp/x"\n', encoding="utf-8")

    from_file = _compare_settings(build_parser().parse_args(["compare", "--config", str(path), "--output", "out"]))
    from_flag = _compare_settings(build_parser().parse_args(["compare", "--config", str(path), "--output", "out", "--batch-size", "8"]))

    assert from_file["encoder"].batch_size == 4
    assert from_file["encoder"].cache_dir == "/tmp/x"
    assert from_flag["encoder"].batch_size == 8


def test_failed_comparison_leaves_folder_usable(clothing, tmp_path):
    frame = clothing.assign(constant="x")
    output = tmp_path / "report"

    with pytest.raises(ValueError, match="'constant'"):
        compare_heads(frame, tasks=["category", "constant"], output_dir=output, candidates=["tfidf-logreg"], n_folds=2,
                      show_progress_bar=False)
    result = compare_heads(frame, tasks=["category"], output_dir=output, candidates=["tfidf-logreg"], n_folds=2,
                           show_progress_bar=False)

    assert len(result.folds) == 2
