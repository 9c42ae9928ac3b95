"""mtl_hybrid: multi-task text classification with sentence embeddings and boosted trees."""

import os

# OpenMP threads that spin while they wait make XGBoost fits many times slower when
# other processes or threads compete for the cores. On 2 cores busy with other
# jobs, a default head fit on 6,281 multi-domain embeddings took 269 s with
# spinning threads and 8.8 s with passive ones (experiments/BENCHMARKS.md).
# A value set before this import is kept. A library that loaded its OpenMP runtime
# before this import (xgboost, torch) keeps the policy it started with.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mtl_hybrid.boosting import XGBoostHead  # noqa: E402
from mtl_hybrid.cache import clear_memory_cache  # noqa: E402
from mtl_hybrid.encoding import SentenceEncoder  # noqa: E402
from mtl_hybrid.multitask import MultiTaskClassifier  # noqa: E402
from mtl_hybrid.tuning import TunedXGBoostHead  # noqa: E402

__version__ = "0.1.0"

__all__ = ["MultiTaskClassifier", "SentenceEncoder", "TunedXGBoostHead", "XGBoostHead", "clear_memory_cache", "__version__"]
