"""The ``mtl-hybrid`` command: train, predict and evaluate multi-task text classifiers."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer

from mtl_hybrid import __version__
from mtl_hybrid.compare import (
    BUILTIN_CANDIDATES,
    compare_heads,
    make_candidate,
    read_config,
)
from mtl_hybrid.datasets import grouped_train_test_split, iter_csv, load_reviews
from mtl_hybrid.encoding import BACKENDS, SentenceEncoder, validate_texts
from mtl_hybrid.evaluation import evaluate_tasks, format_report
from mtl_hybrid.finetuning import MultiTaskFineTuner
from mtl_hybrid.onnx_backend import ExportError
from mtl_hybrid.persistence import load_pipeline, read_manifest, save_pipeline
from mtl_hybrid.pipeline import make_hybrid_pipeline
from mtl_hybrid.serialization import check_encoder_directory
from mtl_hybrid.streaming import atomic_text_file

logger = logging.getLogger("mtl_hybrid.cli")

CACHE_VARIABLE = "MTL_HYBRID_CACHE_DIR"


def default_cache_dir() -> str:
    """Return ``$MTL_HYBRID_CACHE_DIR``, or ``~/.cache/mtl_hybrid/embeddings``."""
    return os.environ.get(CACHE_VARIABLE) or str(Path.home() / ".cache" / "mtl_hybrid" / "embeddings")


def int_at_least(minimum: int):
    """Return an argparse type that accepts integers of at least ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {minimum}, got {text}")
        return value

    parse.__name__ = "int"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
at_least_two = int_at_least(2)


def positive_float(text: str) -> float:
    """argparse type: a number above 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (exclusive), got {text}")
    return value


class CommandError(Exception):
    """An error in the user's input, reported as one line with exit code 2."""


def _write_atomic(path: Path, text: str) -> None:
    with atomic_text_file(path) as handle:
        handle.write(text)


def _add_encoder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=None, help=f"folder of the on-disk embedding cache (default: ${CACHE_VARIABLE} or ~/.cache/mtl_hybrid/embeddings)")
    parser.add_argument("--no-cache", action="store_true", help="keep embeddings in memory only")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="texts per encoder forward pass (default: 32)")
    parser.add_argument("--device", default=None, help="torch device for the encoder, such as cpu or cuda (default: cuda when available)")


def _add_backend_option(parser: argparse.ArgumentParser, saved_model: bool) -> None:
    default = "the model's own" if saved_model else "torch"
    parser.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default=None if saved_model else "torch",
        help=f"what runs the encoder: torch, onnx (ONNX Runtime, float32) or onnx-int8 (ONNX Runtime, int8 weights, fastest on a CPU); the onnx backends export the model on first use (default: {default})",
    )


def _add_training_options(parser: argparse.ArgumentParser, default_window: int | None = None) -> None:
    parser.add_argument("--data", required=True, help="UTF-8 CSV file with a text column and one column per task")
    parser.add_argument("--text-column", default="text", help="column of texts (default: text)")
    parser.add_argument("--task", action="append", required=True, dest="tasks", metavar="COLUMN", help="label column to learn; repeat for several tasks")
    parser.add_argument("--group-column", default=None, help="keep each value of this column (a product id) wholly in train or in test")
    parser.add_argument("--test-size", type=fraction, default=0.2, help="share of rows held out for testing (default: 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the folds and XGBoost (default: 0)")
    parser.add_argument("--encoder", default=None, help="sentence-transformers model name or directory, or a model directory written by finetune (default: all-MiniLM-L6-v2 from the installed package)")
    window = "the model's, 256 for MiniLM" if default_window is None else str(default_window)
    parser.add_argument("--max-seq-length", type=positive_int, default=default_window, help=f"encoder token window; longer texts are truncated (default: {window})")
    parser.add_argument("--output", required=True, help="model directory to write")
    parser.add_argument("--overwrite", action="store_true", help="replace the output directory if it exists")
    _add_encoder_options(parser)


def _add_trusted_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trusted",
        action="store_true",
        help="allow loading a model directory of format version 1 (model.joblib), which means unpickling it; "
        "a pickle runs any code stored in it, so use this only for models from a source you trust",
    )


def _cache_dir(args) -> str | None:
    return None if args.no_cache else (args.cache_dir or default_cache_dir())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtl-hybrid",
        description="Multi-task text classification: sentence embeddings with one XGBoost head per task.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model on a labelled CSV and report held-out metrics")
    _add_training_options(train)
    _add_backend_option(train, saved_model=False)
    train.add_argument("--class-weight", choices=["balanced"], default=None, help="weight classes inversely to their frequency")

    tune = commands.add_parser("tune", help="tune each task's XGBoost head with Optuna, then train and report like train")
    _add_training_options(tune)
    _add_backend_option(tune, saved_model=False)
    tune.add_argument("--trials", type=positive_int, default=30, help="Optuna trials per task in this run (default: 30)")
    tune.add_argument("--timeout", type=positive_float, default=None, help="stop starting new trials of a task after this many seconds")
    tune.add_argument("--cv", type=at_least_two, default=3, help="cross-validation folds per trial (default: 3)")
    tune.add_argument("--storage", default=None, help="study storage: sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB or journal:///FILE (default: in memory)")
    tune.add_argument("--study-name", default="mtl-hybrid", help="study name; each task uses NAME-TASK and resumes it if it exists (default: mtl-hybrid)")
    tune.add_argument("--sampler-seed", type=int, default=None, help="seed of the TPE sampler; give each worker sharing a study its own (default: --seed)")
    tune.add_argument("--n-jobs", type=positive_int, default=1, help="trials run in parallel threads (default: 1)")

    finetune = commands.add_parser("finetune", help="fine-tune the encoder with one neural head per task, then report like train")
    _add_training_options(finetune, default_window=128)
    finetune.add_argument("--epochs", type=positive_int, default=1, help="passes over the training rows (default: 1)")
    finetune.add_argument("--head", choices=["linear", "mlp"], default="linear", help="head per task (default: linear)")
    finetune.add_argument("--task-weights", choices=["equal", "learned"], default="equal", help="loss weight per task: equal, or learned uncertainty weighting (default: equal)")
    finetune.add_argument("--class-weight", choices=["balanced"], default=None, help="weight classes inversely to their frequency")
    finetune.add_argument("--encoder-lr", type=positive_float, default=2e-5, help="encoder learning rate (default: 2e-5)")
    finetune.add_argument("--head-lr", type=positive_float, default=1e-3, help="head learning rate (default: 1e-3)")
    finetune.add_argument("--freeze-layers", type=non_negative_int, default=0, help="freeze the token embeddings and this many lower layers (default: 0)")
    finetune.add_argument("--checkpoint-dir", default=None, help="checkpoint folder; a rerun resumes from its last epoch (default: OUTPUT.checkpoints)")
    finetune.add_argument("--keep-checkpoints", action="store_true", help="keep the checkpoint folder after a successful run (default: delete it)")

    predict = commands.add_parser("predict", help="predict every task for new texts")
    predict.add_argument("--model", required=True, help="model directory written by train")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="UTF-8 CSV file of texts")
    source.add_argument("texts", nargs="*", default=[], metavar="TEXT", help="texts to classify")
    predict.add_argument("--text-column", default="text", help="column of texts in --data (default: text)")
    predict.add_argument("--format", choices=["csv", "jsonl"], default="csv", help="output format (default: csv)")
    predict.add_argument("--id-column", default=None, help="column of --data copied into the output to join predictions back")
    predict.add_argument("--output", default=None, help="write predictions to this file instead of standard output")
    predict.add_argument("--chunk-size", type=positive_int, default=10_000, help="rows of --data read, predicted and written per step; memory grows with it, not with the file (default: 10000)")
    _add_trusted_option(predict)
    _add_encoder_options(predict)
    _add_backend_option(predict, saved_model=True)

    evaluate = commands.add_parser("evaluate", help="report metrics of a model on a labelled CSV")
    evaluate.add_argument("--model", required=True, help="model directory written by train")
    evaluate.add_argument("--data", required=True, help="UTF-8 CSV file with the text column and the model's task columns")
    evaluate.add_argument("--text-column", default="text", help="column of texts (default: text)")
    evaluate.add_argument("--output", default=None, help="write the metrics as JSON to this file")
    _add_trusted_option(evaluate)
    _add_encoder_options(evaluate)
    _add_backend_option(evaluate, saved_model=True)

    compare = commands.add_parser(
        "compare", help="cross-validate several heads on the same folds and write a report with intervals and plots"
    )
    compare.add_argument("--config", default=None, help="TOML file with the data, candidates and their settings; flags override it")
    compare.add_argument("--data", default=None, help="UTF-8 CSV file with a text column and one column per task")
    compare.add_argument("--text-column", default=None, help="column of texts (default: text)")
    compare.add_argument("--task", action="append", default=None, dest="tasks", metavar="COLUMN", help="label column; repeat for several tasks")
    compare.add_argument("--heads", default=None, help=f"comma-separated candidates (default: all of {','.join(BUILTIN_CANDIDATES)} and those of --config)")
    compare.add_argument("--folds", type=at_least_two, default=None, help="cross-validation folds (default: 5)")
    compare.add_argument("--group-column", default=None, help="keep each value of this column (a product id) inside one test fold")
    compare.add_argument("--seed", type=int, default=None, help="seed of the folds and of every candidate (default: 0)")
    compare.add_argument("--encoder", default=None, help="frozen sentence-transformers model name or directory (default: all-MiniLM-L6-v2)")
    compare.add_argument("--max-seq-length", type=positive_int, default=None, help="frozen encoder's token window (default: the model's, 256 for MiniLM)")
    compare.add_argument("--output", required=True, help="report folder; a rerun with the same settings resumes in it")
    _add_encoder_options(compare)
    _add_backend_option(compare, saved_model=False)
    # None marks a flag not given, so that the config file's [encoder] value applies.
    compare.set_defaults(batch_size=None, backend=None)
    return parser


def _resolve_encoder(reference: str | None) -> str | None:
    """Return the encoder to load: a finetune model directory stands for the
    fine-tuned sentence-transformers directory inside it, after its files are verified."""
    if reference is None:
        return None
    if not (Path(reference) / "manifest.json").is_file():
        return reference

    manifest = read_manifest(reference)
    embedded = (manifest.get("encoder") or {}).get("embedded")
    if embedded is None and manifest["format_version"] == 1 and (Path(reference) / "encoders" / "0").is_dir():
        embedded = "encoders/0"
    if embedded is None:
        raise CommandError(f"--encoder {reference} is a model directory without a fine-tuned encoder")
    check_encoder_directory(Path(reference) / embedded)
    print(f"encoder: fine-tuned encoder of {reference}")
    return str(Path(reference) / embedded)


def _task_probabilities(model, texts: list[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Return (task, classes, probabilities) for every task of a pipeline or fine-tuner."""
    if hasattr(model, "steps"):
        classifier = model.steps[-1][1]
        probabilities = classifier.predict_proba(model[:-1].transform(texts))
        classes = [classifier.estimators_[task].classes_ for task in classifier.tasks_]
    else:
        probabilities = model.predict_proba(texts)
        classes = [model.classes_[task] for task in model.tasks_]
    tasks = _tasks_of(model)
    if len(tasks) == 1 and isinstance(probabilities, np.ndarray):
        probabilities = [probabilities]
    return list(zip(tasks, classes, probabilities))


def _set_encoder_runtime(pipeline, args, streaming: bool = False) -> None:
    """Apply the run's cache, device and backend options to a loaded pipeline's encoder.

    With ``streaming`` the encoder keeps no embeddings in memory and shows no
    progress bar of its own, because the caller shows one over all chunks.
    """
    encoder = pipeline.named_steps.get("encoder") if hasattr(pipeline, "named_steps") else None
    if encoder is None:
        return
    encoder.set_params(cache_dir=_cache_dir(args), show_progress_bar=not streaming, batch_size=args.batch_size, device=args.device)
    if streaming:
        encoder.set_params(memory_cache=False)
    if args.backend is not None:
        encoder.set_params(backend=args.backend)


def _tasks_of(model) -> list[str]:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    return list(final.tasks_)


def _check_model_output(path: Path, overwrite: bool) -> None:
    """Reject an output path that exists, unless it is a model directory and ``overwrite`` is set."""
    if not path.exists():
        return
    if not path.is_dir():
        raise CommandError(f"--output {path} is a file; give a directory path")
    if not overwrite:
        raise CommandError(f"output directory {path} already exists; pass --overwrite to replace it")
    if not (path / "manifest.json").is_file():
        raise CommandError(
            f"--overwrite replaces only model directories written by mtl-hybrid, and {path} is not one "
            "(no manifest.json); choose another --output"
        )


def _check_file_output(path: Path) -> None:
    """Reject an output file whose folder is missing or that names a directory."""
    if path.is_dir():
        raise CommandError(f"--output {path} is a directory; give a file path")
    if not path.parent.is_dir():
        raise CommandError(f"--output {path}: folder {path.parent} does not exist")


def _load_split(args):
    """Load the CSV and split it into train and test, as train, tune and finetune do."""
    _check_model_output(Path(args.output), args.overwrite)
    if len(set(args.tasks)) != len(args.tasks):
        raise CommandError(f"--task values must be distinct, got {args.tasks}")
    if args.group_column is not None and args.group_column in {*args.tasks, args.text_column}:
        raise CommandError(f"--group-column {args.group_column} must differ from the text column and the tasks")

    extra = [args.group_column] if args.group_column else []
    frame = load_reviews(args.data, args.text_column, args.tasks, extra_columns=extra)
    train, test = grouped_train_test_split(
        frame, stratify_columns=args.tasks, group_column=args.group_column, test_size=args.test_size, random_state=args.seed
    )
    for task in args.tasks:
        classes = train[task].dropna().unique()
        if len(classes) < 2:
            found = f"only the class {str(classes[0])!r}" if len(classes) else "no labels"
            raise CommandError(f"task {task!r} has {found} in the training part; it needs at least 2 classes")
    print(f"train: {len(train)} rows, test: {len(test)} rows ({args.data})")
    return train, test


def _evaluate_and_save(pipeline, args, test, fit_seconds: float, extra_metrics: dict | None = None, extra_files=None) -> dict:
    """Evaluate on the held-out rows, print the report, and save the model with its
    metrics.json and ``extra_files`` in one atomic step."""
    started = time.perf_counter()
    predicted = pipeline.predict(test[args.text_column])
    predict_seconds = time.perf_counter() - started

    metrics = evaluate_tasks(test[args.tasks], predicted)
    encoder = pipeline.named_steps["encoder"] if hasattr(pipeline, "named_steps") else None
    stats = getattr(encoder, "cache_stats_", None)
    metrics.update(
        {
            "data": str(args.data),
            "text_column": args.text_column,
            "group_column": args.group_column,
            "test_size": args.test_size,
            "seed": args.seed,
            "n_test": len(test),
            "fit_seconds": round(fit_seconds, 3),
            "predict_seconds": round(predict_seconds, 3),
            **({"texts_encoded": stats.encoded} if stats is not None else {}),
            **(extra_metrics or {}),
        }
    )
    print(format_report(metrics))

    output = Path(args.output)
    save_pipeline(pipeline, output, metrics=metrics, overwrite=args.overwrite, extra_files=extra_files)
    if stats is not None:
        cached = stats.memory_hits + stats.disk_hits
        print(f"texts encoded: {stats.encoded}; embeddings taken from the cache: {cached}")
    print(f"model saved to {output}")
    return metrics


def _make_pipeline(args, head=None):
    return make_hybrid_pipeline(
        model_name_or_path=_resolve_encoder(args.encoder),
        head=head,
        max_seq_length=args.max_seq_length,
        class_weight=getattr(args, "class_weight", None),
        random_state=args.seed,
        cache_dir=_cache_dir(args),
        batch_size=args.batch_size,
        device=args.device,
        show_progress_bar=True,
        backend=args.backend,
    )


def run_train(args) -> int:
    train, test = _load_split(args)
    pipeline = _make_pipeline(args)

    started = time.perf_counter()
    pipeline.fit(train[args.text_column], train[args.tasks])
    _evaluate_and_save(pipeline, args, test, time.perf_counter() - started, {"n_train": len(train)})
    return 0


def run_finetune(args) -> int:
    from mtl_hybrid.finetuning import MultiTaskFineTuner

    train, test = _load_split(args)
    checkpoint_dir = args.checkpoint_dir or f"{Path(args.output)}.checkpoints"
    tuner = MultiTaskFineTuner(
        _resolve_encoder(args.encoder),
        head=args.head,
        task_weights=args.task_weights,
        class_weight=args.class_weight,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        encoder_lr=args.encoder_lr,
        head_lr=args.head_lr,
        freeze_layers=args.freeze_layers,
        checkpoint_dir=checkpoint_dir,
        device=args.device,
        random_state=args.seed,
    )
    started = time.perf_counter()
    tuner.fit(train[args.text_column], train[args.tasks])
    fit_seconds = time.perf_counter() - started
    print(f"fine-tuned {len(tuner.history_)} epoch(s) in {fit_seconds:.0f} s; kept epoch {tuner.best_epoch_}")

    extra = {"n_train": len(train), "history": tuner.history_, "best_epoch": tuner.best_epoch_, "task_weights": tuner.task_weights_}
    _evaluate_and_save(tuner, args, test, fit_seconds, extra)
    if not args.keep_checkpoints:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    print(f"use the fine-tuned encoder under XGBoost heads with: mtl-hybrid train --encoder {args.output} ...")
    return 0


def run_tune(args) -> int:
    from mtl_hybrid.tuning import TunedXGBoostHead, make_storage

    make_storage(args.storage)
    train, test = _load_split(args)
    sampler = None
    if args.sampler_seed is not None:
        import optuna

        sampler = optuna.samplers.TPESampler(seed=args.sampler_seed, multivariate=True)
    head = TunedXGBoostHead(
        sampler=sampler,
        n_trials=args.trials,
        timeout=args.timeout,
        cv=args.cv,
        storage=args.storage,
        study_name=args.study_name,
        n_jobs=args.n_jobs,
        show_progress_bar=True,
        random_state=args.seed,
    )
    pipeline = _make_pipeline(args, head=head)

    started = time.perf_counter()
    groups = None if args.group_column is None else train[args.group_column].astype(str).to_numpy()
    pipeline.fit(train[args.text_column], train[args.tasks], classifier__groups=groups)
    fit_seconds = time.perf_counter() - started

    tuning = {}
    plots_dir = Path(tempfile.mkdtemp(prefix="mtl-hybrid-plots-"))
    try:
        _report_studies(pipeline, head, plots_dir, tuning)
        _evaluate_and_save(pipeline, args, test, fit_seconds, {"n_train": len(train), "tuning": tuning}, {"plots": plots_dir})
    finally:
        shutil.rmtree(plots_dir, ignore_errors=True)
    print(f"plots written to {Path(args.output) / 'plots'}")
    return 0


def _report_studies(pipeline, head, plots_dir: Path, tuning: dict) -> None:
    """Print each task's best trial, record it in ``tuning`` and write its study plots."""
    from mtl_hybrid.tuning import save_study_plots

    for task, tuned in pipeline.named_steps["classifier"].estimators_.items():
        finished = [trial for trial in tuned.study_.trials if trial.state.is_finished()]
        tuning[task] = {
            "study_name": tuned.study_.study_name,
            "best_score": tuned.best_score_,
            "best_params": tuned.best_params_,
            "n_trials": len(finished),
            "n_pruned": sum(1 for trial in finished if trial.state.name == "PRUNED"),
        }
        print(f"{task}: best cross-validated {head.scoring} {tuned.best_score_:.4f} over {len(finished)} trials")
        print(f"{task}: best parameters {json.dumps(tuned.best_params_, sort_keys=True)}")
        save_study_plots(tuned.study_, plots_dir, task)


def _predictions_frame(model, texts: list[str]) -> pd.DataFrame:
    columns = {"text": texts}
    for task, classes, task_probabilities in _task_probabilities(model, texts):
        best = np.argmax(task_probabilities, axis=1)
        columns[task] = classes[best]
        columns[f"{task}_probability"] = np.round(task_probabilities[np.arange(len(texts)), best].astype(np.float64), 4)
    return pd.DataFrame(columns)


def _replace_invalid_bytes(text: str) -> str:
    """Replace each byte of an argument that was not UTF-8 with U+FFFD.

    Python passes such bytes through argv as lone surrogates, which no UTF-8
    output can hold.
    """
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def _text_chunks(args):
    """Yield (ids or None, texts) per chunk of --data, or once for the TEXT arguments."""
    if args.data is None:
        if args.id_column:
            raise CommandError("--id-column needs --data")
        texts = [_replace_invalid_bytes(text) for text in validate_texts(args.texts, name="TEXT")]
        if not texts:
            raise CommandError("no texts to predict; pass texts as arguments or --data CSV")
        yield None, texts
        return

    first_row = 0
    for frame in iter_csv(args.data, text_column=args.text_column, chunksize=args.chunk_size):
        required = [args.text_column] + ([args.id_column] if args.id_column else [])
        missing = [column for column in required if column not in frame.columns]
        if missing:
            raise CommandError(f"{args.data} has no column(s) {missing}; available columns: {list(frame.columns)}")
        # An empty cell is an empty review: it gets a prediction like any other row.
        texts = validate_texts(frame[args.text_column].fillna(""), name=f"column {args.text_column!r}", first_row=first_row)
        first_row += len(texts)
        if texts:
            yield (frame[args.id_column].to_numpy() if args.id_column else None), texts


def _write_predictions(handle, predictions: pd.DataFrame, output_format: str, header: bool) -> None:
    if output_format == "csv":
        predictions.to_csv(handle, index=False, header=header)
        return
    text = predictions.to_json(orient="records", lines=True, force_ascii=False)
    handle.write(text if text.endswith("\n") else text + "\n")


def run_predict(args) -> int:
    """Predict chunk by chunk: each chunk of --data is read, encoded, predicted and
    written before the next is read, so memory does not grow with the file. With
    --output the rows go to a temporary file renamed to the output at the end."""
    from tqdm.auto import tqdm

    read_manifest(args.model)
    output = Path(args.output) if args.output else None
    if output is not None:
        _check_file_output(output)
    chunks = _text_chunks(args)
    first = next(chunks, None)
    if first is None:
        raise CommandError(f"no texts to predict; {args.data} has a header but no rows")

    pipeline = load_pipeline(args.model, trusted=args.trusted)
    _set_encoder_runtime(pipeline, args, streaming=True)
    written = 0
    with contextlib.ExitStack() as stack:
        handle = stack.enter_context(atomic_text_file(output)) if output is not None else sys.stdout
        bar = stack.enter_context(tqdm(unit="text", desc="Predicting", disable=args.data is None))
        for ids, texts in itertools.chain([first], chunks):
            predictions = _predictions_frame(pipeline, texts)
            if ids is not None:
                predictions.insert(0, args.id_column, ids)
            _write_predictions(handle, predictions, args.format, header=written == 0)
            written += len(predictions)
            bar.update(len(predictions))

    if output is not None:
        print(f"wrote {written} predictions to {args.output}")
    return 0


def run_evaluate(args) -> int:
    manifest = read_manifest(args.model)
    if args.output:
        _check_file_output(Path(args.output))
    tasks = list(manifest["tasks"])
    frame = load_reviews(args.data, args.text_column, tasks)
    pipeline = load_pipeline(args.model, trusted=args.trusted)
    _set_encoder_runtime(pipeline, args)

    predicted = pipeline.predict(frame[args.text_column])
    metrics = evaluate_tasks(frame[tasks], predicted, known_labels=manifest["tasks"])
    metrics.update({"data": str(args.data), "n_samples": len(frame)})
    print(format_report(metrics))
    if args.output:
        _write_atomic(Path(args.output), json.dumps(metrics, indent=2) + "\n")
    return 0


def _compare_settings(args) -> dict:
    """Merge the flags of ``compare`` over its config file and the defaults.

    Only flags given on the command line replace values of the file.
    """
    config = read_config(args.config) if args.config else {}
    data, options = config.get("data", {}), config.get("compare", {})

    def pick(flag, value, default):
        if flag is not None:
            return flag
        if value is not None:
            return value
        return default

    settings = {
        "data": pick(args.data, data.get("path"), None),
        "text_column": pick(args.text_column, data.get("text_column"), "text"),
        "tasks": pick(args.tasks, data.get("tasks"), None),
        "group_column": pick(args.group_column, data.get("group_column"), None),
        "folds": pick(args.folds, options.get("folds"), 5),
        "seed": pick(args.seed, options.get("seed"), 0),
        "title": options.get("title"),
    }
    if settings["data"] is None or not settings["tasks"]:
        raise CommandError("compare needs --data and at least one --task, on the command line or in --config")
    if len(set(settings["tasks"])) != len(settings["tasks"]):
        raise CommandError(f"tasks must be distinct, got {settings['tasks']}")

    tables = config.get("candidates", {})
    heads = [head.strip() for head in args.heads.split(",")] if args.heads is not None else options.get("heads")
    if heads is None:
        heads = [*BUILTIN_CANDIDATES, *[name for name in tables if name not in BUILTIN_CANDIDATES]]
    heads = [head for head in heads if head]
    if not heads:
        raise CommandError(f"no candidates given; name one or more of {', '.join(BUILTIN_CANDIDATES)} or a [candidates.NAME] table")
    unused = sorted(set(tables) - set(heads))
    if unused:
        logger.warning("Config tables %s are not among the heads %s and are not run", [f"candidates.{n}" for n in unused], heads)
    settings["heads"] = heads
    settings["candidates"] = [make_candidate(name, tables.get(name), settings["seed"]) for name in heads]

    encoder_options = {"batch_size": 32, **config.get("encoder", {}), "show_progress_bar": True}
    if args.encoder is not None:
        encoder_options["model_name_or_path"] = _resolve_encoder(args.encoder)
    if args.max_seq_length is not None:
        encoder_options["max_seq_length"] = args.max_seq_length
    if args.batch_size is not None:
        encoder_options["batch_size"] = args.batch_size
    if args.device is not None:
        encoder_options["device"] = args.device
    if args.backend is not None:
        encoder_options["backend"] = args.backend
    if args.no_cache:
        encoder_options["cache_dir"] = None
    elif args.cache_dir is not None or "cache_dir" not in encoder_options:
        encoder_options["cache_dir"] = args.cache_dir or default_cache_dir()
    finetuning_options = {**config.get("finetuning", {}), "show_progress_bar": False}
    if args.device is not None:
        finetuning_options["device"] = args.device
    tfidf_options = {k: tuple(v) if isinstance(v, list) else v for k, v in config.get("tfidf", {}).items()}
    try:
        settings["encoder"] = SentenceEncoder(**encoder_options)
        settings["tfidf"] = TfidfVectorizer(**({"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True} | tfidf_options))
        settings["finetuner"] = MultiTaskFineTuner(**finetuning_options)
    except TypeError as error:
        raise CommandError(f"{args.config}: invalid option in [encoder], [tfidf] or [finetuning]: {error}") from error
    return settings


def run_compare(args) -> int:
    settings = _compare_settings(args)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise CommandError(f"--output {output} is a file; give a folder")
    extra = [settings["group_column"]] if settings["group_column"] else []
    frame = load_reviews(settings["data"], settings["text_column"], settings["tasks"], extra_columns=extra)
    print(f"{len(frame)} rows, {settings['folds']} folds, candidates: {', '.join(settings['heads'])}")

    result = compare_heads(
        frame,
        tasks=settings["tasks"],
        output_dir=output,
        candidates=settings["candidates"],
        text_column=settings["text_column"],
        group_column=settings["group_column"],
        n_folds=settings["folds"],
        random_state=settings["seed"],
        encoder=settings["encoder"],
        tfidf=settings["tfidf"],
        finetuner=settings["finetuner"],
        title=settings["title"] or f"Comparison on {Path(settings['data']).name}",
        command=shlex.join(["mtl-hybrid", *args.argv]),
    )
    for task, table in result.summary.groupby("task", sort=False):
        print(f"== {task}: macro-F1, mean over {settings['folds']} folds [95% interval]")
        for row in table.sort_values("macro_f1", ascending=False).itertuples():
            marker = "best" if row.best else f"{row.difference_to_best:+.4f} vs best, p {row.p_value:.3f}"
            print(f"{row.candidate:<24} {row.macro_f1:.4f} [{row.macro_f1_low:.4f}, {row.macro_f1_high:.4f}]  {marker}")
    print(f"report written to {output / 'summary.md'}")
    return 0


COMMANDS = {"compare": run_compare, "train": run_train, "tune": run_tune, "finetune": run_finetune, "predict": run_predict, "evaluate": run_evaluate}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("sentence_transformers", "transformers", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    try:
        return COMMANDS[args.command](args)
    except (CommandError, ExportError, ValueError, OSError, ImportError) as error:
        message = str(error).strip() or type(error).__name__
        print(f"mtl-hybrid {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mtl-hybrid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
