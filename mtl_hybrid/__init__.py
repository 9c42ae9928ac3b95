"""mtl_hybrid: multi-task text classification with sentence embeddings and boosted trees."""

from mtl_hybrid.boosting import XGBoostHead
from mtl_hybrid.cache import clear_memory_cache
from mtl_hybrid.encoding import SentenceEncoder
from mtl_hybrid.multitask import MultiTaskClassifier
from mtl_hybrid.tuning import TunedXGBoostHead

__version__ = "0.1.0"

__all__ = ["MultiTaskClassifier", "SentenceEncoder", "TunedXGBoostHead", "XGBoostHead", "clear_memory_cache", "__version__"]
