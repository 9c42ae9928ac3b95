"""Compare classifier heads on the same cross-validation folds.

Every candidate is a feature step (TF-IDF, frozen sentence embeddings or a
fine-tuned encoder) with a classifier per task on top. All candidates see the
same grouped, stratified folds. Frozen embeddings are computed once for all rows
and served from the embedding cache; TF-IDF, tuning and fine-tuning are fitted
inside each fold on its training rows only.

Per fold and candidate the results go to ``<output>/.work/records`` as soon as
they exist, so an interrupted comparison resumes with the next unfinished
(candidate, fold) pair. The report (``summary.md``, ``summary.csv``,
``folds.csv`` and PNG plots) is written at the end.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tomllib
from sklearn.base import clone, is_classifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mtl_hybrid.boosting import XGBoostHead, check_at_least_two_classes
from mtl_hybrid.datasets import check_columns, iter_grouped_folds
from mtl_hybrid.encoding import SentenceEncoder, validate_texts
from mtl_hybrid.evaluation import evaluate_tasks
from mtl_hybrid.multitask import missing_label_mask
from mtl_hybrid.report import ComparisonResult, summarise, write_report

logger = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_CANDIDATES",
    "Candidate",
    "builtin_candidates",
    "compare_heads",
    "make_candidate",
    "read_config",
]

FEATURES = ("tfidf", "frozen", "finetuned")
BUILTIN_CANDIDATES = (
    "tfidf-logreg",
    "frozen-logreg",
    "frozen-mlp",
    "frozen-xgboost",
    "frozen-xgboost-tuned",
    "finetuned-heads",
    "finetuned-xgboost",
)
CONFIG_SECTIONS = {"data", "compare", "encoder", "tfidf", "finetuning", "candidates"}
RECORD_VERSION = 1


@dataclass(frozen=True)
class Candidate:
    """One contestant: a feature step and the classifier fitted on it per task.

    ``head`` is an unfitted scikit-learn classifier cloned for every task and
    fold; ``None`` with ``features="finetuned"`` predicts with the fine-tuner's
    own neural heads.
    """

    name: str
    features: str
    head: object = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ValueError(f"Candidate {self.name!r}: features must be one of {list(FEATURES)}, got {self.features!r}.")
        if self.head is None and self.features != "finetuned":
            raise ValueError(f"Candidate {self.name!r} needs a head: only finetuned features bring their own.")
        if self.head is not None and (not hasattr(self.head, "fit") or not is_classifier(self.head)):
            raise ValueError(f"Candidate {self.name!r}: head must be a scikit-learn classifier, got {self.head!r}.")


def builtin_candidates(random_state: int = 0) -> dict[str, Candidate]:
    """Return the built-in candidates by name, with their default heads."""
    from mtl_hybrid.tuning import TunedXGBoostHead

    return {
        "tfidf-logreg": Candidate(
            "tfidf-logreg", "tfidf", LogisticRegression(max_iter=2000), "TF-IDF of words and word pairs + logistic regression"
        ),
        "frozen-logreg": Candidate(
            "frozen-logreg", "frozen", LogisticRegression(max_iter=2000), "frozen embeddings + logistic regression"
        ),
        "frozen-mlp": Candidate(
            "frozen-mlp",
            "frozen",
            MLPClassifier(hidden_layer_sizes=(256,), early_stopping=True, max_iter=200, random_state=random_state),
            "frozen embeddings + MLP (one hidden layer of 256, early stopping)",
        ),
        "frozen-xgboost": Candidate(
            "frozen-xgboost", "frozen", XGBoostHead(random_state=random_state), "frozen embeddings + XGBoost with its defaults"
        ),
        "frozen-xgboost-tuned": Candidate(
            "frozen-xgboost-tuned",
            "frozen",
            TunedXGBoostHead(n_trials=20, cv=3, random_state=random_state, show_progress_bar=False),
            "frozen embeddings + XGBoost tuned by Optuna on the fold's training rows",
        ),
        "finetuned-heads": Candidate(
            "finetuned-heads", "finetuned", None, "multi-task fine-tuned encoder with its neural heads"
        ),
        "finetuned-xgboost": Candidate(
            "finetuned-xgboost", "finetuned", XGBoostHead(random_state=random_state), "fine-tuned encoder + XGBoost with its defaults"
        ),
    }


def import_object(path: str):
    """Import ``package.module.Name`` and return ``Name``."""
    module_name, _, attribute = str(path).rpartition(".")
    if not module_name:
        raise ValueError(f"estimator {path!r} is not an import path; write it as package.module.ClassName.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"estimator {path!r}: module {module_name!r} cannot be imported ({error}).") from error
    if not hasattr(module, attribute):
        raise ValueError(f"estimator {path!r}: module {module_name!r} has no attribute {attribute!r}.")
    return getattr(module, attribute)


def make_candidate(name: str, settings: dict | None = None, random_state: int = 0) -> Candidate:
    """Return the candidate ``name``, adjusted by its config table ``settings``.

    ``settings`` may hold ``estimator`` (an import path of a classifier class),
    ``features`` (one of ``tfidf``, ``frozen``, ``finetuned``), ``params`` (passed
    to the classifier) and ``description``. A built-in name needs none of them;
    any other name needs ``estimator`` and ``features``.
    """
    settings = dict(settings or {})
    unknown = set(settings) - {"estimator", "features", "params", "description"}
    if unknown:
        raise ValueError(
            f"[candidates.{name}] has unknown key(s) {sorted(unknown)}; accepted: estimator, features, params, description."
        )
    params = settings.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"[candidates.{name}] params must be a table, got {params!r}.")

    builtin = builtin_candidates(random_state).get(name)
    if "estimator" in settings:
        cls = import_object(settings["estimator"])
        # Only a class is called, so an import path to a function never runs.
        if not isinstance(cls, type) or not hasattr(cls, "fit") or not hasattr(cls, "predict"):
            raise ValueError(
                f"[candidates.{name}] estimator {settings['estimator']!r} is not a classifier class with fit and predict."
            )
        try:
            head = cls(**params)
        except TypeError as error:
            raise ValueError(f"[candidates.{name}] cannot build {settings['estimator']} with params {params}: {error}") from error
        features = settings.get("features", builtin.features if builtin else None)
        if features is None:
            raise ValueError(f"[candidates.{name}] needs features: one of {list(FEATURES)}.")
        return Candidate(name, features, head, settings.get("description", f"{features} features + {settings['estimator']}"))

    if builtin is None:
        raise ValueError(
            f"Unknown candidate {name!r}. Built-in candidates: {', '.join(BUILTIN_CANDIDATES)}; "
            "add another with a [candidates.NAME] table that gives estimator and features."
        )
    if "features" in settings and settings["features"] != builtin.features:
        raise ValueError(f"[candidates.{name}] is built in with {builtin.features} features; give the candidate another name to change them.")
    head = builtin.head
    if params:
        if head is None:
            raise ValueError(f"[candidates.{name}] has no head to set params on; set fine-tuning options under [finetuning].")
        head = clone(head).set_params(**params)
    return Candidate(name, builtin.features, head, settings.get("description", builtin.description))


# Accepted keys of the config's plain sections, with their types.
CONFIG_KEYS = {
    "data": {"path": str, "text_column": str, "tasks": list, "group_column": str},
    "compare": {"heads": list, "folds": int, "seed": int, "title": str},
}


def _check_config_types(path: Path, config: dict) -> None:
    for section, value in config.items():
        if not isinstance(value, dict):
            raise ValueError(f"{path}: {section} must be a [{section}] table, got {value!r}.")
    for section, keys in CONFIG_KEYS.items():
        table = config.get(section, {})
        unknown = set(table) - set(keys)
        if unknown:
            raise ValueError(f"{path}: [{section}] has unknown key(s) {sorted(unknown)}; accepted: {', '.join(keys)}.")
        for key, expected in keys.items():
            value = table.get(key)
            if value is None:
                continue
            if expected is list and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
                raise ValueError(f"{path}: {section}.{key} must be a list of strings, got {value!r}.")
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{path}: {section}.{key} must be an integer, got {value!r}.")
            if expected is str and not isinstance(value, str):
                raise ValueError(f"{path}: {section}.{key} must be a string, got {value!r}.")
    for name, table in config.get("candidates", {}).items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: candidates.{name} must be a [candidates.{name}] table, got {table!r}.")


def read_config(path: str | os.PathLike) -> dict:
    """Read a comparison config file (TOML) and check its sections and types.

    Sections: ``[data]`` (path, text_column, tasks, group_column), ``[compare]``
    (heads, folds, seed, title), ``[encoder]`` (SentenceEncoder options), ``[tfidf]``
    (TfidfVectorizer options), ``[finetuning]`` (MultiTaskFineTuner options) and
    ``[candidates.NAME]`` tables (see :func:`make_candidate`). ``$VARIABLES`` in
    ``data.path`` are expanded, and a relative path is taken from the config's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from error
    unknown = set(config) - CONFIG_SECTIONS
    if unknown:
        raise ValueError(f"{path} has unknown section(s) {sorted(unknown)}; accepted: {sorted(CONFIG_SECTIONS)}.")
    _check_config_types(path, config)

    data = config.get("data", {})
    if "path" in data:
        expanded = os.path.expandvars(str(data["path"]))
        if "$" in expanded:
            raise ValueError(f"{path}: data.path {data['path']!r} names an environment variable that is not set.")
        data_path = Path(expanded)
        data["path"] = str(data_path if data_path.is_absolute() else path.parent / data_path)
    return config


# ------------------------------------------------------------------ the run


def _hash_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def _describe(estimator) -> dict:
    if estimator is None:
        return {}
    return {"class": f"{type(estimator).__module__}.{type(estimator).__qualname__}", "params": estimator.get_params(deep=False)}


def _data_fingerprint(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    digest.update(json.dumps(list(map(str, frame.columns))).encode())
    return digest.hexdigest()[:16]


def _write_json_atomic(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


class _Run:
    """The state shared by all folds of one comparison."""

    def __init__(self, frame, text_column, tasks, group_column, encoder, tfidf, finetuner, work_dir):
        self.frame = frame
        self.texts = frame[text_column].tolist()
        self.labels = frame[list(tasks)]
        self.tasks = list(tasks)
        self.groups = frame[group_column].astype(str).to_numpy() if group_column else None
        self.encoder = encoder
        self.tfidf = tfidf
        self.finetuner = finetuner
        self.work_dir = work_dir
        self._embeddings = None
        self.encode_seconds_per_text = None
        self.frozen_window = None

    def frozen_embeddings(self) -> np.ndarray:
        """Return the frozen encoder's embeddings of all rows, computed once."""
        if self._embeddings is None:
            encoder = clone(self.encoder).fit()
            self.frozen_window = encoder._window()
            self._embeddings = encoder.transform(self.texts)
            self.encode_seconds_per_text = self._measure_encoding(encoder)
        return self._embeddings

    def _measure_encoding(self, encoder) -> float:
        """Time the encoder on up to 128 texts without the cache, in seconds per text.

        Frozen candidates are charged this rate for their test texts, because the
        cache serves every text after the first encoding.
        """
        rng = np.random.default_rng(0)
        sample = [self.texts[i] for i in rng.choice(len(self.texts), size=min(128, len(self.texts)), replace=False)]
        started = time.perf_counter()
        encoder._encode(sample, False)
        rate = (time.perf_counter() - started) / len(sample)
        logger.info("Frozen encoder: %.1f texts per second without the cache", 1 / rate)
        return rate


class _FoldFeatures:
    """Feature matrices of one fold, each fitted on the fold's training rows only."""

    def __init__(self, run: _Run, fold: int, train_rows: np.ndarray, test_rows: np.ndarray, random_state: int):
        self.run = run
        self.fold = fold
        self.train_rows = train_rows
        self.test_rows = test_rows
        self.random_state = random_state
        self._matrices: dict[str, tuple] = {}
        self.finetuner = None

    def matrices(self, kind: str):
        """Return (X_train, X_test, fit_seconds, test_feature_seconds) for ``kind``."""
        if kind not in self._matrices:
            self._matrices[kind] = getattr(self, f"_{kind}")()
        return self._matrices[kind]

    def _texts(self, rows) -> list[str]:
        return [self.run.texts[i] for i in rows]

    def _frozen(self):
        embeddings = self.run.frozen_embeddings()
        test_seconds = self.run.encode_seconds_per_text * len(self.test_rows)
        return embeddings[self.train_rows], embeddings[self.test_rows], 0.0, test_seconds

    def _tfidf(self):
        vectorizer = clone(self.run.tfidf)
        started = time.perf_counter()
        X_train = vectorizer.fit_transform(self._texts(self.train_rows))
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        X_test = vectorizer.transform(self._texts(self.test_rows))
        return X_train, X_test, fit_seconds, time.perf_counter() - started

    def fitted_finetuner(self):
        """Fine-tune on the fold's training rows (resuming from its checkpoints)."""
        if self.finetuner is None:
            checkpoints = self.run.work_dir / f"fold{self.fold}" / "finetune"
            finetuner = clone(self.run.finetuner).set_params(checkpoint_dir=str(checkpoints), random_state=self.random_state)
            started = time.perf_counter()
            finetuner.fit(self._texts(self.train_rows), self.run.labels.iloc[self.train_rows].reset_index(drop=True))
            # NOTE: a fit resumed from a checkpoint counts only the epochs run in this process.
            self.finetune_seconds = time.perf_counter() - started
            self.finetuner = finetuner
        return self.finetuner

    def _finetuned(self):
        finetuner = self.fitted_finetuner()
        started = time.perf_counter()
        X_train = finetuner.transform(self._texts(self.train_rows))
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        X_test = finetuner.transform(self._texts(self.test_rows))
        return X_train, X_test, self.finetune_seconds + train_seconds, time.perf_counter() - started

    def close(self) -> None:
        shutil.rmtree(self.run.work_dir / f"fold{self.fold}", ignore_errors=True)


def _fit_kwargs(head, groups) -> dict:
    """Pass ``groups`` to heads whose fit takes them, so their inner CV keeps groups apart."""
    if groups is None:
        return {}
    return {"groups": groups} if "groups" in inspect.signature(head.fit).parameters else {}


def _evaluate_candidate(candidate: Candidate, features: _FoldFeatures) -> dict:
    """Fit and score one candidate on one fold; return its record."""
    run = features.run
    train_labels = run.labels.iloc[features.train_rows].reset_index(drop=True)
    test_labels = run.labels.iloc[features.test_rows].reset_index(drop=True)
    n_test = len(features.test_rows)
    tasks = {}

    if candidate.head is None:
        finetuner = features.fitted_finetuner()
        _, _, _, encode_seconds = features.matrices("finetuned")
        started = time.perf_counter()
        predicted = finetuner.predict(features._texts(features.test_rows))
        head_seconds = (time.perf_counter() - started) / len(run.tasks)
        for task in run.tasks:
            tasks[task] = {"fit_seconds": features.finetune_seconds, "predict_seconds": encode_seconds + head_seconds}
        predictions = {task: predicted[task].to_numpy() for task in run.tasks}
    else:
        X_train, X_test, feature_seconds, test_feature_seconds = features.matrices(candidate.features)
        predictions = {}
        for task in run.tasks:
            present = ~missing_label_mask(train_labels[task])
            classes = np.unique(train_labels[task][present].astype(str))
            if len(classes) < 2:
                raise ValueError(
                    f"Task {task!r} has {len(classes)} class(es) in the training part of fold {features.fold}; "
                    "every fold needs at least 2. Use fewer folds or drop the rare task."
                )
            head = clone(candidate.head)
            groups = None if run.groups is None else run.groups[features.train_rows][present]
            started = time.perf_counter()
            head.fit(X_train[present], train_labels[task][present].to_numpy(dtype=object).astype(str), **_fit_kwargs(head, groups))
            fit_seconds = time.perf_counter() - started
            started = time.perf_counter()
            predictions[task] = head.predict(X_test)
            predict_seconds = time.perf_counter() - started
            tasks[task] = {"fit_seconds": feature_seconds + fit_seconds, "predict_seconds": test_feature_seconds + predict_seconds}

    metrics = evaluate_tasks(test_labels, pd.DataFrame(predictions))["tasks"]
    for task in run.tasks:
        tasks[task].update(
            {
                "accuracy": metrics[task]["accuracy"],
                "macro_f1": metrics[task]["macro_f1"],
                "n_test_labelled": metrics[task]["n_samples"],
                "predict_ms_per_1000": 1e6 * tasks[task]["predict_seconds"] / max(n_test, 1),
                "labels": metrics[task]["labels"],
                "confusion_matrix": metrics[task]["confusion_matrix"],
            }
        )
    record = {"n_train": len(features.train_rows), "n_test": n_test, "tasks": tasks}
    if candidate.features == "frozen":
        record["frozen_seconds_per_text"] = run.encode_seconds_per_text
    return record


def compare_heads(
    frame: pd.DataFrame,
    *,
    tasks: Sequence[str],
    output_dir: str | os.PathLike,
    candidates: Sequence[str | Candidate] | None = None,
    text_column: str = "text",
    group_column: str | None = None,
    n_folds: int = 5,
    random_state: int = 0,
    encoder: SentenceEncoder | None = None,
    tfidf: TfidfVectorizer | None = None,
    finetuner=None,
    title: str | None = None,
    command: str | None = None,
    show_progress_bar: bool = True,
) -> ComparisonResult:
    """Cross-validate every candidate on the same folds and write the report.

    Parameters
    ----------
    frame : DataFrame
        The text column, one label column per task (NaN for a missing label) and,
        if given, the group column.
    tasks : sequence of str
        Label columns.
    output_dir : path-like
        Report folder. Finished (candidate, fold) results are kept under
        ``.work/records`` and reused when the same comparison runs again.
    candidates : sequence of str or Candidate, default=None
        Built-in names (see :data:`BUILTIN_CANDIDATES`) or :class:`Candidate`
        objects. ``None`` runs every built-in candidate.
    text_column, group_column : str
        Column of texts, and of groups kept wholly inside one test fold.
    n_folds : int, default=5
        Number of folds.
    random_state : int, default=0
        Seed of the folds and of every candidate.
    encoder : SentenceEncoder, default=None
        Frozen encoder; ``None`` uses all-MiniLM-L6-v2 with its defaults.
    tfidf : TfidfVectorizer, default=None
        Text features of TF-IDF candidates; ``None`` uses sublinear TF-IDF of
        words and word pairs that occur in at least 2 texts.
    finetuner : MultiTaskFineTuner, default=None
        Template for fine-tuned candidates, fitted once per fold and shared by them.
    title, command : str, default=None
        Heading of the report and the command that regenerates it.

    Returns
    -------
    ComparisonResult
    """
    from tqdm.auto import tqdm

    from mtl_hybrid.finetuning import MultiTaskFineTuner

    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer of at least 2, got {n_folds!r}.")
    tasks = list(tasks)
    if candidates is not None and len(candidates) == 0:
        raise ValueError("candidates is empty; give at least one candidate, or None for every built-in one.")
    chosen = [make_candidate(c, random_state=random_state) if isinstance(c, str) else c for c in (candidates or BUILTIN_CANDIDATES)]
    names = [c.name for c in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"candidate names must be distinct, got {names}.")
    encoder = encoder if encoder is not None else SentenceEncoder()
    tfidf = tfidf if tfidf is not None else TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    finetuner = finetuner if finetuner is not None else MultiTaskFineTuner(show_progress_bar=False)

    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir {output_dir} is a file; give a folder.")
    work_dir = output_dir / ".work"
    columns = [text_column, *tasks, *([group_column] if group_column else [])]
    _check_frame(frame, text_column, tasks, group_column)
    state = {
        "version": RECORD_VERSION,
        "data": _data_fingerprint(frame[columns]),
        "tasks": tasks,
        "group_column": group_column,
        "n_folds": n_folds,
        "random_state": random_state,
    }
    _check_state(work_dir / "state.json", state)

    folds = list(
        iter_grouped_folds(frame, stratify_columns=tasks, group_column=group_column, n_splits=n_folds, random_state=random_state)
    )
    run = _Run(frame, text_column, tasks, group_column, encoder, tfidf, finetuner, work_dir)
    specs = {c.name: _candidate_spec(c, encoder, tfidf, finetuner) for c in chosen}

    records = {}
    bar = tqdm(total=len(folds) * len(chosen), desc="compare", unit="fit", disable=not show_progress_bar)
    try:
        for fold, (train_rows, test_rows) in enumerate(folds):
            features = _FoldFeatures(run, fold, train_rows, test_rows, random_state)
            for candidate in chosen:
                bar.set_postfix_str(f"fold {fold + 1}/{len(folds)} {candidate.name}")
                path = work_dir / "records" / candidate.name / f"fold{fold}.json"
                record = _read_record(path, specs[candidate.name])
                if record is None:
                    logger.info("Fold %d: fitting %s", fold, candidate.name)
                    record = {"spec": specs[candidate.name], **_evaluate_candidate(candidate, features)}
                    _write_json_atomic(path, record)
                records[candidate.name, fold] = record
                bar.update(1)
            features.close()
    finally:
        bar.close()

    result = summarise(records, chosen, tasks, folds)
    uses_frozen = any(c.features == "frozen" for c in chosen)
    frozen_window = run.frozen_window
    if uses_frozen and frozen_window is None:
        frozen_window = clone(encoder).fit()._window()
    frozen_rates = [1 / r["frozen_seconds_per_text"] for r in records.values() if r.get("frozen_seconds_per_text")]
    result.output_dir = output_dir
    write_report(
        result, output_dir, candidates=chosen, title=title, command=command, n_rows=len(frame), group_column=group_column,
        random_state=random_state, encoder=encoder if uses_frozen else None, frozen_window=frozen_window,
        frozen_rates=frozen_rates,
    )
    return result


def _candidate_spec(candidate: Candidate, encoder, tfidf, finetuner) -> str:
    features = {"frozen": encoder, "tfidf": tfidf, "finetuned": finetuner}[candidate.features]
    described = _describe(features)
    if candidate.features == "finetuned":
        # Runtime options do not change the fine-tuned weights.
        described["params"] = {k: v for k, v in described["params"].items() if k not in {"checkpoint_dir", "show_progress_bar", "device"}}
    if candidate.features == "frozen":
        described["params"] = {k: v for k, v in described["params"].items() if k not in {"cache_dir", "show_progress_bar", "device", "batch_size", "memory_cache"}}
        # Results of the torch backend keep the spec they had before backends were added.
        if described["params"].get("backend") == "torch":
            del described["params"]["backend"]
    head = _describe(candidate.head)
    if head:
        head["params"] = {k: v for k, v in head["params"].items() if k not in {"n_jobs", "show_progress_bar"}}
        if "search_space" in head["params"] and head["params"]["search_space"] is None:
            # A tuned head searches the package's default space, which may change between versions.
            from mtl_hybrid.tuning import default_search_space

            head["params"]["search_space"] = default_search_space()
    return _hash_json({"features": candidate.features, "feature_step": described, "head": head})


def _check_frame(frame: pd.DataFrame, text_column: str, tasks: list[str], group_column: str | None) -> None:
    """Raise a ValueError for input that would fail inside a fold: missing or
    clashing columns, invalid texts, a task with fewer than two classes."""
    if len(set(tasks)) != len(tasks) or not tasks:
        raise ValueError(f"tasks must be one or more distinct column names, got {tasks}.")
    clashes = {text_column, group_column} & set(tasks)
    if clashes or text_column == group_column:
        raise ValueError(
            f"The text column {text_column!r}, the group column {group_column!r} and the tasks {tasks} must be different columns."
        )
    check_columns(frame, [text_column, *tasks, *([group_column] if group_column else [])], "data")
    validate_texts(frame[text_column], name=f"column {text_column!r}")
    for task in tasks:
        labels = frame[task][~missing_label_mask(frame[task])]
        check_at_least_two_classes(np.unique(labels.astype(str)), task)


def _check_state(path: Path, state: dict) -> None:
    """Reject resuming a comparison of other data or folds in the same folder.

    A state without any finished record (a run that failed before its first fit)
    is replaced, so a corrected rerun can use the folder.
    """
    records = path.parent / "records"
    if path.is_file() and any(records.rglob("*.json")):
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is damaged ({error}); delete the folder {path.parent} to start the comparison again.") from error
        changed = sorted(key for key in state if not isinstance(previous, dict) or previous.get(key) != state[key])
        if changed:
            raise ValueError(
                f"{path.parent.parent} contains a comparison with other {', '.join(changed)} "
                f"({', '.join(f'{k}: {_previous_value(previous, k)!r} now {state[k]!r}' for k in changed)}); "
                "choose another output folder or delete it."
            )
        return
    if not path.is_file() and path.parent.parent.exists() and any(p.name != ".work" for p in path.parent.parent.iterdir()):
        if not (path.parent.parent / "summary.md").is_file():
            raise ValueError(f"output folder {path.parent.parent} exists and is not a comparison report; choose another.")
    _write_json_atomic(path, state)


def _previous_value(previous, key):
    return previous.get(key) if isinstance(previous, dict) else None


def _read_record(path: Path, spec: str) -> dict | None:
    """Return a finished record, or None when it is missing, damaged or of another candidate setup."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("tasks"), dict):
        logger.warning("Ignoring damaged result %s; that fold runs again", path)
        return None
    if record.get("spec") != spec:
        logger.info("Settings of %s changed since %s was written; that fold runs again", path.parent.name, path.name)
        return None
    logger.info("Reusing %s", path)
    return record

