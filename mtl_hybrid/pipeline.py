"""The hybrid pipeline: sentence encoder, then one XGBoost head per task."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from mtl_hybrid.boosting import XGBoostHead
from mtl_hybrid.encoding import SentenceEncoder
from mtl_hybrid.multitask import MultiTaskClassifier

__all__ = ["make_hybrid_pipeline"]


def make_hybrid_pipeline(
    model_name_or_path=None,
    *,
    head=None,
    max_seq_length=None,
    class_weight=None,
    random_state=0,
    cache_dir=None,
    batch_size=32,
    device=None,
    show_progress_bar=False,
    backend="torch",
) -> Pipeline:
    """Build ``Pipeline([("encoder", SentenceEncoder), ("classifier", MultiTaskClassifier)])``.

    Parameters
    ----------
    model_name_or_path : str, default=None
        Encoder model; ``None`` is all-MiniLM-L6-v2 from the installed package.
    head : classifier or dict of {task: classifier}, default=None
        Head per task; ``None`` uses :class:`XGBoostHead` with ``class_weight`` and
        ``random_state``.
    max_seq_length, cache_dir, batch_size, device, show_progress_bar, backend
        Passed to :class:`SentenceEncoder`.
    class_weight : {"balanced"} or None, default=None
        Class weighting of the default XGBoost heads.
    random_state : int, default=0
        Seed of the default XGBoost heads.

    Examples
    --------
    >>> from mtl_hybrid.pipeline import make_hybrid_pipeline
    >>> make_hybrid_pipeline().named_steps["classifier"]
    MultiTaskClassifier(estimator=XGBoostHead())
    """
    encoder = SentenceEncoder(
        model_name_or_path,
        batch_size=batch_size,
        max_seq_length=max_seq_length,
        device=device,
        show_progress_bar=show_progress_bar,
        cache_dir=cache_dir,
        backend=backend,
    )
    if head is None:
        head = XGBoostHead(class_weight=class_weight, random_state=random_state)
    return Pipeline([("encoder", encoder), ("classifier", MultiTaskClassifier(head))])
