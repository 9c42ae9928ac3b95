"""Benchmark: multi-task fine-tuning against frozen MiniLM embeddings.

On one grouped train/test split of the multi-domain set (by ``asin``, 20% test,
seed 0, the split of ``mtl-hybrid train``) it fits and scores, on the same test
rows:

1. frozen all-MiniLM-L6-v2 embeddings + logistic regression per task;
2. ``MultiTaskFineTuner`` for one epoch, predicting with its own neural heads;
3. the fine-tuned encoder's embeddings + the default XGBoost heads.

It prints accuracy and macro-F1 per task and candidate, the fine-tuning time,
and the change of each task's macro-F1 against the frozen baseline in points.

Usage::

    MTL_HYBRID_DATA_HOME=../shared/data python experiments/bench_finetune.py
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mtl_hybrid import MultiTaskClassifier, SentenceEncoder, XGBoostHead
from mtl_hybrid.cli import default_cache_dir
from mtl_hybrid.datasets import data_home, grouped_train_test_split, load_reviews
from mtl_hybrid.evaluation import evaluate_tasks
from mtl_hybrid.finetuning import MultiTaskFineTuner

TASKS = ["category", "sentiment"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (default: 1)")
    parser.add_argument("--max-seq-length", type=int, default=128, help="fine-tuning token window (default: 128)")
    parser.add_argument("--batch-size", type=int, default=16, help="fine-tuning batch size (default: 16)")
    parser.add_argument("--checkpoint-dir", default="runs/bench_finetune", help="fine-tuning checkpoints (default: runs/bench_finetune)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of the training (default: 0)")
    return parser.parse_args()


def score(name: str, truth, predicted, results: dict) -> None:
    metrics = evaluate_tasks(truth, predicted)["tasks"]
    results[name] = {task: metrics[task]["macro_f1"] for task in TASKS}
    cells = ", ".join(f"{task} accuracy {metrics[task]['accuracy']:.4f} macro-F1 {metrics[task]['macro_f1']:.4f}" for task in TASKS)
    print(f"{name}: {cells}", flush=True)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    reviews = load_reviews(data_home() / "multi_domain_sentiment.csv", extra_columns=["asin"])
    train, test = grouped_train_test_split(reviews, stratify_columns=TASKS, group_column="asin", test_size=0.2, random_state=args.seed)
    print(f"multi-domain: {len(train)} train, {len(test)} test rows, {os.cpu_count()} CPU cores", flush=True)
    results: dict = {}

    frozen = Pipeline(
        [
            ("encoder", SentenceEncoder(cache_dir=default_cache_dir(), show_progress_bar=True)),
            ("classifier", MultiTaskClassifier(LogisticRegression(max_iter=2000))),
        ]
    )
    frozen.fit(train["text"], train[TASKS])
    score("frozen MiniLM + logistic regression", test[TASKS], frozen.predict(test["text"]), results)

    tuner = MultiTaskFineTuner(
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        checkpoint_dir=args.checkpoint_dir,
        random_state=args.seed,
    )
    started = time.perf_counter()
    tuner.fit(train["text"], train[TASKS])
    minutes = (time.perf_counter() - started) / 60
    print(f"fine-tuning: {args.epochs} epoch(s) at {args.max_seq_length} tokens in {minutes:.1f} min (kept epoch {tuner.best_epoch_})", flush=True)
    score("fine-tuned neural heads", test[TASKS], tuner.predict(test["text"]), results)

    hybrid = Pipeline(
        [
            ("encoder", SentenceEncoder(tuner.encoder_path_, max_seq_length=args.max_seq_length, cache_dir=default_cache_dir())),
            ("classifier", MultiTaskClassifier(XGBoostHead(random_state=args.seed))),
        ]
    )
    hybrid.fit(train["text"], train[TASKS])
    score("fine-tuned encoder + XGBoost heads", test[TASKS], hybrid.predict(test["text"]), results)

    baseline = results["frozen MiniLM + logistic regression"]
    for name in ("fine-tuned neural heads", "fine-tuned encoder + XGBoost heads"):
        changes = ", ".join(f"{task} {100 * (results[name][task] - baseline[task]):+.2f}" for task in TASKS)
        print(f"{name} vs frozen + logistic regression, macro-F1 points: {changes}")


if __name__ == "__main__":
    main()
