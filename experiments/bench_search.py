"""Benchmark: hyperparameter search through mtl_hybrid against plain scikit-learn.

Part 1 runs the same 12 XGBoost candidates with the same 3 folds twice, on
reviews of the multi-domain set:

(a) mtl_hybrid: Pipeline([SentenceEncoder, TunedXGBoostHead]) with an Optuna
    GridSampler over the 12 candidates. The encoder runs once per text; the
    trials reuse the embeddings.
(b) scikit-learn: GridSearchCV over Pipeline([plain SentenceTransformer.encode
    without a cache, XGBClassifier]), which encodes every fold again for every
    candidate.

Both encode with the same model and token window, and both candidates train a
fixed number of rounds without early stopping, so the models are the same.

Part 2 runs two Optuna studies of equal trials on the embeddings, one with the
default median pruner and one without pruning, and counts the boosting rounds
each trained.

The last line reads ``search speedup (sklearn/ours): <X>x``.

Usage::

    MTL_HYBRID_DATA_HOME=../shared/data python experiments/bench_search.py
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder
from xgboost import XGBClassifier

from mtl_hybrid import SentenceEncoder, TunedXGBoostHead, XGBoostHead, clear_memory_cache
from mtl_hybrid.datasets import data_home, load_reviews
from mtl_hybrid.encoding import shared_model

GRID = {"max_depth": [3, 5], "learning_rate": [0.05, 0.1, 0.3], "colsample_bytree": [0.3, 0.6]}
N_ESTIMATORS = 100


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-texts", type=int, default=2000, help="reviews sampled from the multi-domain set (default: 2000)")
    parser.add_argument("--task", default="sentiment", help="label column to search on (default: sentiment)")
    parser.add_argument("--max-seq-length", type=int, default=128, help="encoder token window for both sides (default: 128)")
    parser.add_argument("--trials", type=int, default=30, help="trials of each study in the pruning comparison (default: 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample, folds, sampler and XGBoost (default: 0)")
    return parser.parse_args()


def xgboost_params(seed: int) -> dict:
    """Parameters both sides share, taken from XGBoostHead's defaults."""
    head = XGBoostHead(random_state=seed)
    return dict(
        n_estimators=N_ESTIMATORS,
        min_child_weight=head.min_child_weight,
        subsample=head.subsample,
        reg_lambda=head.reg_lambda,
        reg_alpha=head.reg_alpha,
        gamma=head.gamma,
        max_bin=head.max_bin,
        tree_method="hist",
        random_state=seed,
    )


def run_ours(texts, labels, folds, args) -> tuple[float, float, dict]:
    clear_memory_cache()
    params = xgboost_params(args.seed)
    template = XGBoostHead(early_stopping_rounds=None, **{k: v for k, v in params.items() if k != "tree_method"})
    search = TunedXGBoostHead(
        template,
        search_space={name: CategoricalDistribution(values) for name, values in GRID.items()},
        sampler=optuna.samplers.GridSampler(GRID, seed=args.seed),
        pruner=optuna.pruners.NopPruner(),
        n_trials=int(np.prod([len(values) for values in GRID.values()])),
        cv=folds,
        random_state=args.seed,
    )
    pipeline = Pipeline([("encoder", SentenceEncoder(max_seq_length=args.max_seq_length)), ("search", search)])

    started = time.perf_counter()
    pipeline.fit(texts, labels)
    seconds = time.perf_counter() - started
    best = {name: search.best_params_[name] for name in GRID}
    return seconds, search.best_score_, best


def run_sklearn(texts, labels, folds, args) -> tuple[float, float, dict]:
    model = shared_model()
    model.max_seq_length = args.max_seq_length

    def encode(batch):
        return model.encode(list(batch), batch_size=32, normalize_embeddings=True)

    pipeline = Pipeline([("encoder", FunctionTransformer(encode)), ("xgb", XGBClassifier(**xgboost_params(args.seed)))])
    grid = {f"xgb__{name}": values for name, values in GRID.items()}
    search = GridSearchCV(pipeline, grid, cv=folds, scoring="f1_macro", n_jobs=1, refit=True)

    started = time.perf_counter()
    search.fit(np.asarray(texts, dtype=object), LabelEncoder().fit_transform(labels))
    seconds = time.perf_counter() - started
    best = {name.removeprefix("xgb__"): value for name, value in search.best_params_.items()}
    return seconds, search.best_score_, best


def run_pruning(X, labels, args) -> dict:
    results = {}
    for name, pruner in (("pruned", None), ("unpruned", optuna.pruners.NopPruner())):
        head = TunedXGBoostHead(n_trials=args.trials, pruner=pruner, random_state=args.seed)
        started = time.perf_counter()
        head.fit(X, labels)
        pruned = sum(1 for trial in head.study_.trials if trial.state == optuna.trial.TrialState.PRUNED)
        results[name] = {
            "seconds": time.perf_counter() - started,
            "rounds": head.boosting_rounds_,
            "best": head.best_score_,
            "pruned_trials": pruned,
        }
        print(
            f"{name:>8}: {args.trials} trials ({pruned} pruned), {head.boosting_rounds_} boosting rounds, "
            f"best CV macro-F1 {head.best_score_:.4f}, {results[name]['seconds']:.1f} s",
            flush=True,
        )
    return results


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    reviews = load_reviews(data_home() / "multi_domain_sentiment.csv")
    sample = reviews.sample(n=args.n_texts, random_state=args.seed).reset_index(drop=True)
    texts, labels = sample["text"].tolist(), sample[args.task].to_numpy(dtype=str)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=args.seed).split(texts, labels))
    print(
        f"{len(texts)} reviews, task {args.task}, 12 candidates x 3 folds, {N_ESTIMATORS} rounds each, "
        f"token window {args.max_seq_length}, {os.cpu_count()} CPU cores",
        flush=True,
    )

    ours_seconds, ours_score, ours_best = run_ours(texts, labels, folds, args)
    print(f"ours:    {ours_seconds:8.1f} s, best CV macro-F1 {ours_score:.4f}, {ours_best}", flush=True)
    sklearn_seconds, sklearn_score, sklearn_best = run_sklearn(texts, labels, folds, args)
    print(f"sklearn: {sklearn_seconds:8.1f} s, best CV macro-F1 {sklearn_score:.4f}, {sklearn_best}", flush=True)

    X = SentenceEncoder(max_seq_length=args.max_seq_length).fit().transform(texts)
    pruning = run_pruning(X, labels, args)
    saved = 1 - pruning["pruned"]["rounds"] / pruning["unpruned"]["rounds"]
    gap = abs(pruning["pruned"]["best"] - pruning["unpruned"]["best"])
    print(f"best score difference (pruned vs unpruned): {gap:.4f}")
    print(f"boosting rounds saved by pruning: {100 * saved:.1f}%")
    print(f"search speedup (sklearn/ours): {sklearn_seconds / ours_seconds:.1f}x")


if __name__ == "__main__":
    main()
