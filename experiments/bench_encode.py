"""Benchmark: speed, accuracy and memory of SentenceEncoder's backends.

One run measures, side by side:

1. Speed on 2,000 reviews of the multi-domain set (sampled with --seed): plain
   ``SentenceTransformer.encode`` (batch 32, normalised) against
   ``SentenceEncoder`` with the torch, onnx and onnx-int8 backends, each starting
   from an empty cache. The candidates run in turn, in --rounds interleaved rounds
   whose order is reversed every other round, and each keeps its fastest round, so
   that a burst of load from other processes hits all of them alike. Models are loaded and ONNX exports made before timing.
   Then a cache hit: a new encoder reads the same 2,000 embeddings from the on-disk
   cache after the memory cache was cleared.
2. Accuracy: the mean cosine between each backend's embeddings of the 2,000
   reviews and plain encode's (PyTorch float32). Then the change of macro-F1 of
   the default XGBoost heads, category and sentiment, when they are trained and
   tested on a backend's embeddings instead of torch's. The whole set is embedded (through
   the on-disk cache in ``$MTL_HYBRID_CACHE_DIR`` or ~/.cache/mtl_hybrid/embeddings)
   and the change is the mean over --splits grouped train/test splits (by asin,
   20% test, seeds 0 to N-1, made by ``grouped_train_test_split``) of the paired
   difference on each split, printed with its standard error. XGBoost's trees
   react to input changes far below the cosine's fourth decimal: in one run the
   float32 ONNX export moved a single split's sentiment macro-F1 by 2 points.
   Hence the default of 30 splits.
3. The fit time of one default XGBoost head on the torch embeddings of each split's
   training part.
4. Memory: a child process streams --stream-texts distinct snippets of real reviews
   (consecutive runs of --snippet-words words from both datasets) through
   ``SentenceEncoder(backend="onnx-int8").transform_to_npy`` into a .npy file,
   without a disk cache, and reports its peak resident memory (VmHWM).

The run ends with one line per figure of the summary.

Usage::

    MTL_HYBRID_DATA_HOME=../shared/data python experiments/bench_encode.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from mtl_hybrid import SentenceEncoder, XGBoostHead, clear_memory_cache
from mtl_hybrid.cli import default_cache_dir
from mtl_hybrid.datasets import data_home, grouped_train_test_split, load_reviews
from mtl_hybrid.encoding import BACKENDS, default_model_path, shared_model

TASKS = ["category", "sentiment"]
PLAIN = "plain"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-texts", type=int, default=2000, help="reviews timed in the speed part (default: 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; each candidate keeps its fastest (default: 3)")
    parser.add_argument("--splits", type=int, default=30, help="grouped train/test splits behind the macro-F1 figures (default: 30)")
    parser.add_argument("--stream-texts", type=int, default=200_000, help="texts streamed in the memory part (default: 200000)")
    parser.add_argument("--snippet-words", type=int, default=12, help="words per streamed review snippet (default: 12)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the review sample (default: 0)")
    parser.add_argument("--speed-only", action="store_true", help="run only the speed part and print its ratios")
    parser.add_argument("--stream-worker", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def time_candidates(texts: list[str], rounds: int) -> tuple[dict[str, list[float]], dict[str, np.ndarray]]:
    """Return every round's seconds and the embeddings of each candidate."""
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(default_model_path(), device="cpu")
    encoders = {backend: SentenceEncoder(backend=backend, device="cpu").fit() for backend in BACKENDS}

    # Warm-up: first calls allocate buffers and the ONNX sessions plan their kernels.
    plain.encode(texts[:16], batch_size=32, normalize_embeddings=True)
    for encoder in encoders.values():
        encoder.transform(texts[-16:])

    seconds: dict[str, list[float]] = {name: [] for name in [PLAIN, *BACKENDS]}
    outputs: dict[str, np.ndarray] = {}
    for round_number in range(rounds):
        order = list(seconds) if round_number % 2 == 0 else list(reversed(seconds))
        for name in order:
            clear_memory_cache()
            started = time.perf_counter()
            if name == PLAIN:
                outputs[name] = plain.encode(texts, batch_size=32, normalize_embeddings=True)
            else:
                outputs[name] = encoders[name].transform(texts)
            seconds[name].append(time.perf_counter() - started)
            print(f"round {round_number + 1}: {name:<9} {seconds[name][-1]:7.2f} s", flush=True)
    return seconds, outputs


def time_cache_hits(texts: list[str], folder: str) -> dict[str, float]:
    """Return the seconds of a disk hit and a memory hit of ``texts`` (int8 namespace).

    The int8 embeddings of the last timing round are still in memory; the first
    transform below writes them to the disk cache without encoding.
    """
    SentenceEncoder(backend="onnx-int8", cache_dir=folder).fit().transform(texts)
    clear_memory_cache()

    encoder = SentenceEncoder(backend="onnx-int8", cache_dir=folder).fit()
    started = time.perf_counter()
    encoder.transform(texts)
    disk = time.perf_counter() - started
    started = time.perf_counter()
    encoder.transform(texts)
    memory = time.perf_counter() - started

    stats = encoder.cache_stats_
    if stats.encoded or stats.disk_hits != len(texts):
        raise RuntimeError(f"expected only cache hits, got {stats}")
    return {"disk": disk, "memory": memory}


def macro_f1_scores(splits: int) -> tuple[dict, dict]:
    """Return the macro-F1 of every split per backend and task, and the torch fit seconds per task."""
    reviews = load_reviews(data_home() / "multi_domain_sentiment.csv", extra_columns=["asin"])
    reviews["row"] = np.arange(len(reviews))
    embeddings = {}
    for backend in BACKENDS:
        print(f"embedding {len(reviews)} reviews with the {backend} backend (cached in {default_cache_dir()})", flush=True)
        encoder = SentenceEncoder(backend=backend, device="cpu", cache_dir=default_cache_dir(), show_progress_bar=True)
        embeddings[backend] = encoder.fit().transform(reviews["text"])

    scores = {backend: {task: [] for task in TASKS} for backend in BACKENDS}
    fit_seconds = {task: [] for task in TASKS}
    for seed in range(splits):
        train, test = grouped_train_test_split(reviews, stratify_columns=TASKS, group_column="asin", random_state=seed)
        for backend in BACKENDS:
            X = embeddings[backend]
            for task in TASKS:
                head = XGBoostHead()
                started = time.perf_counter()
                head.fit(X[train["row"]], train[task])
                if backend == "torch":
                    fit_seconds[task].append(time.perf_counter() - started)
                score = f1_score(test[task], head.predict(X[test["row"]]), average="macro")
                scores[backend][task].append(score)
        cells = ", ".join(f"{backend} {task} {scores[backend][task][-1]:.4f}" for backend in BACKENDS for task in TASKS)
        print(f"split {seed}: {len(train)} train, {len(test)} test rows; macro-F1 {cells}", flush=True)
    return scores, fit_seconds


def paired_change(scores: dict, backend: str, task: str) -> tuple[float, float]:
    """Return the mean change of macro-F1 from torch to ``backend`` over the splits,
    and its standard error (the splits' differences are paired)."""
    differences = np.asarray(scores[backend][task]) - np.asarray(scores["torch"][task])
    error = differences.std(ddof=1) / np.sqrt(len(differences)) if len(differences) > 1 else float("nan")
    return float(differences.mean()), float(error)


def review_snippets(n: int, words: int):
    """Yield ``n`` distinct snippets of real reviews, each ``words`` consecutive words.

    Pass ``p`` takes the windows that start at word ``p``, ``p + words``, ... of
    every review of both datasets, so later passes give new windows.
    """
    texts = []
    for name in ("womens_clothing_reviews.csv", "multi_domain_sentiment.csv"):
        texts += load_reviews(data_home() / name, task_columns=())["text"].tolist()
    seen: set[bytes] = set()
    for offset in range(words):
        for text in texts:
            tokens = text.split()
            for start in range(offset, len(tokens) - words + 1, words):
                snippet = " ".join(tokens[start : start + words])
                digest = hashlib.blake2b(snippet.encode(), digest_size=8).digest()
                if digest in seen:
                    continue
                seen.add(digest)
                yield snippet
                if len(seen) == n:
                    return
    raise RuntimeError(f"the datasets hold only {len(seen)} distinct snippets of {words} words, fewer than {n}")


def stream_worker(args) -> None:
    """Child process: stream the snippets into a .npy file and report on stdout."""
    encoder = SentenceEncoder(backend="onnx-int8", device="cpu", show_progress_bar=True).fit()
    started = time.perf_counter()
    result = encoder.transform_to_npy(review_snippets(args.stream_texts, args.snippet_words), args.stream_worker)
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": int(result.shape[0]), "seconds": seconds, "peak_kib": peak_resident_kib()}))


def peak_resident_kib() -> int:
    """Return this process's peak resident memory in KiB (VmHWM, Linux).

    ``getrusage``'s ``ru_maxrss`` does not serve here, because it survives
    ``execve`` (getrusage(2), NOTES): a child started from a large parent reports
    the parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line; the memory part needs Linux")


def measure_stream(args, folder: str) -> dict:
    """Run the streaming child and return its report and peak memory in GiB."""
    command = [
        sys.executable, __file__, "--stream-worker", str(Path(folder) / "streamed.npy"),
        "--stream-texts", str(args.stream_texts), "--snippet-words", str(args.snippet_words),
    ]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    report["peak_gib"] = report["peak_kib"] / 1024**2
    return report


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.stream_worker:
        stream_worker(args)
        return

    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    reviews = load_reviews(data_home() / "multi_domain_sentiment.csv")
    texts = reviews.sample(n=args.n_texts, random_state=args.seed)["text"].tolist()
    print(f"speed: {len(texts)} multi-domain reviews, token window {shared_model().get_max_seq_length()}, batch 32", flush=True)
    seconds, outputs = time_candidates(texts, args.rounds)
    best = {name: min(values) for name, values in seconds.items()}
    if args.speed_only:
        for name in BACKENDS:
            print(f"{name} vs plain encode: {best[PLAIN] / best[name]:.2f}x (best {best[name]:.2f} s against {best[PLAIN]:.2f} s)")
        return

    with tempfile.TemporaryDirectory() as folder:
        hits = time_cache_hits(texts, folder)
    print(f"cache: disk hit {hits['disk']:.3f} s, memory hit {hits['memory']:.3f} s for {len(texts)} texts", flush=True)

    cosines = {backend: float(np.mean(np.sum(outputs[backend] * outputs[PLAIN], axis=1))) for backend in BACKENDS}
    scores, fit_seconds = macro_f1_scores(args.splits)
    f1 = {backend: {task: float(np.mean(values)) for task, values in tasks.items()} for backend, tasks in scores.items()}
    changes = {backend: {task: paired_change(scores, backend, task) for task in TASKS} for backend in BACKENDS}

    print(f"memory: streaming {args.stream_texts} review snippets of {args.snippet_words} words with onnx-int8", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        stream = measure_stream(args, folder)
    print(f"streamed {stream['rows']} texts in {stream['seconds']:.0f} s ({stream['rows'] / stream['seconds']:.0f} texts/s)", flush=True)

    print()
    print(f"plain encode: {best[PLAIN]:.2f} s (rounds: {', '.join(f'{value:.2f}' for value in seconds[PLAIN])})")
    for backend in BACKENDS:
        rounds = ", ".join(f"{value:.2f}" for value in seconds[backend])
        change = ", ".join(f"{task} {changes[backend][task][0]:+.4f} (standard error {changes[backend][task][1]:.4f})" for task in TASKS)
        print(
            f"{backend}: {best[backend]:.2f} s (rounds: {rounds}), {best[PLAIN] / best[backend]:.2f}x plain encode, "
            f"mean cosine {cosines[backend]:.4f}, mean macro-F1 "
            + ", ".join(f"{task} {f1[backend][task]:.4f}" for task in TASKS)
            + f", change {change}"
        )
    for task in TASKS:
        print(f"default XGBoost head fit, {task}: mean {np.mean(fit_seconds[task]):.2f} s over {args.splits} splits")
    print(f"cache memory hit vs encode: {best[PLAIN] / hits['memory']:.0f}x")
    print()

    int8_changes = {task: changes["onnx-int8"][task][0] for task in TASKS}
    print(f"torch vs plain encode: {best[PLAIN] / best['torch']:.2f}x")
    print(f"int8 vs plain encode: {best[PLAIN] / best['onnx-int8']:.2f}x")
    print(f"int8 mean cosine: {cosines['onnx-int8']:.4f}")
    print(f"int8 macro-F1 change: category {int8_changes['category']:+.4f}, sentiment {int8_changes['sentiment']:+.4f}")
    print(f"cache hit vs encode: {best[PLAIN] / hits['disk']:.0f}x")
    print(f"peak memory, {args.stream_texts} texts streamed: {stream['peak_gib']:.2f} GiB")
    print(f"default XGBoost head fit, multi-domain embeddings: {max(np.mean(values) for values in fit_seconds.values()):.1f} s")


if __name__ == "__main__":
    main()
