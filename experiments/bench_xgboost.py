"""Benchmark: XGBoost head settings on dense MiniLM embeddings, fit time against macro-F1.

It embeds the whole multi-domain set once (all-MiniLM-L6-v2, default token
window, through the on-disk embedding cache). Then it fits one ``XGBoostHead`` per
task for each setting below on several grouped train/test splits: by ``asin``,
20% test, one split per seed, from ``grouped_train_test_split``. Each setting
changes one or two parameters of the ``XGBoostHead`` defaults. It prints the mean fit
time of each task's head, the mean boosting rounds kept and the mean held-out
macro-F1 of each task.

Usage::

    MTL_HYBRID_DATA_HOME=../shared/data python experiments/bench_xgboost.py
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np
from sklearn.metrics import f1_score

from mtl_hybrid import SentenceEncoder, XGBoostHead
from mtl_hybrid.cli import default_cache_dir
from mtl_hybrid.datasets import data_home, grouped_train_test_split, load_reviews

TASKS = ["category", "sentiment"]

# One or two parameters changed at a time from XGBoostHead's defaults.
SETTINGS = {
    "defaults": {},
    "max_bin=32": {"max_bin": 32},
    "max_bin=128": {"max_bin": 128},
    "max_bin=256": {"max_bin": 256},
    "colsample_bytree=0.3": {"colsample_bytree": 0.3},
    "colsample_bytree=0.8": {"colsample_bytree": 0.8},
    "colsample_bytree=1.0": {"colsample_bytree": 1.0},
    "early_stopping_rounds=15": {"early_stopping_rounds": 15},
    "early_stopping_rounds=None": {"early_stopping_rounds": None},
    "learning_rate=0.05": {"learning_rate": 0.05},
    "learning_rate=0.2": {"learning_rate": 0.2},
    "n_jobs=1": {"n_jobs": 1},
    "colsample_bytree=0.3, max_bin=32": {"colsample_bytree": 0.3, "max_bin": 32},
    "colsample_bytree=0.3, learning_rate=0.2": {"colsample_bytree": 0.3, "learning_rate": 0.2},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=3, help="grouped train/test splits, seeds 0 to N-1 (default: 3)")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS), metavar="NAME", help="settings to run (default: all)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    reviews = load_reviews(data_home() / "multi_domain_sentiment.csv", extra_columns=["asin"])
    reviews["row"] = np.arange(len(reviews))
    X = SentenceEncoder(cache_dir=default_cache_dir(), show_progress_bar=True).fit().transform(reviews["text"])
    splits = [
        grouped_train_test_split(reviews, stratify_columns=TASKS, group_column="asin", random_state=seed)
        for seed in range(args.splits)
    ]
    print(
        f"{len(reviews)} reviews, {X.shape[1]} dimensions, {args.splits} grouped splits, {os.cpu_count()} CPU cores, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average {os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    print("| setting | category fit s | sentiment fit s | rounds kept | category macro-F1 | sentiment macro-F1 |")
    print("| --- | --- | --- | --- | --- | --- |")

    for name in args.settings:
        seconds, rounds, scores = {task: [] for task in TASKS}, [], {task: [] for task in TASKS}
        for train, test in splits:
            for task in TASKS:
                head = XGBoostHead(**SETTINGS[name])
                started = time.perf_counter()
                head.fit(X[train["row"]], train[task])
                seconds[task].append(time.perf_counter() - started)
                rounds.append(head.best_iteration_)
                scores[task].append(f1_score(test[task], head.predict(X[test["row"]]), average="macro"))
        times = " | ".join(f"{np.mean(seconds[task]):.2f}" for task in TASKS)
        cells = " | ".join(f"{np.mean(scores[task]):.4f}" for task in TASKS)
        print(f"| {name} | {times} | {np.mean(rounds):.0f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
