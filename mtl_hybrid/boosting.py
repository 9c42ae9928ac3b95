"""XGBoostHead: an XGBoost classifier for one task, on embeddings.

It wraps :class:`xgboost.XGBClassifier` with what a head on sentence embeddings
needs: labels of any type (strings included), ``class_weight="balanced"`` and
early stopping on an internal stratified validation split.
"""

from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

logger = logging.getLogger(__name__)

__all__ = ["XGBoostHead", "check_at_least_two_classes"]


def check_at_least_two_classes(classes: np.ndarray, task: str | None = None) -> None:
    """Raise a ValueError when a target has fewer than two classes."""
    if len(classes) < 2:
        where = f"task {task!r}" if task is not None else "y"
        if not len(classes):
            raise ValueError(f"Classifier needs samples of at least 2 classes, but {where} has no labels.")
        raise ValueError(
            f"Classifier needs samples of at least 2 classes, but {where} has only one class: {str(classes[0])!r}."
        )


class XGBoostHead(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (XGBoost) for one classification task.

    The defaults suit dense sentence embeddings (a few hundred float columns):
    histogram splits with 64 bins, shallow trees, half of the columns per tree and
    early stopping on 10% of the training rows. On the multi-domain MiniLM
    embeddings (experiments/bench_xgboost.py) faster settings, such as 32 bins, a
    learning rate of 0.2 or 15 early-stopping rounds, lost 0.5 to 1.9 points of
    sentiment macro-F1, and more bins or columns slowed the category head without
    a gain above 0.001.

    Parameters
    ----------
    n_estimators : int, default=400
        Maximum number of boosting rounds.
    learning_rate : float, default=0.1
        Shrinkage applied to every tree.
    max_depth : int, default=4
        Maximum tree depth.
    min_child_weight : float, default=1.0
        Minimum sum of instance weight (hessian) in a leaf.
    subsample : float, default=0.8
        Fraction of rows sampled for each tree.
    colsample_bytree : float, default=0.5
        Fraction of columns sampled for each tree.
    reg_lambda : float, default=1.0
        L2 regularisation on leaf weights.
    reg_alpha : float, default=0.0
        L1 regularisation on leaf weights.
    gamma : float, default=0.0
        Minimum loss reduction to make a split.
    max_bin : int, default=64
        Histogram bins per feature.
    class_weight : {"balanced"}, dict or None, default=None
        ``"balanced"`` weights each row by ``n_samples / (n_classes * count(class))``;
        a dict maps labels to weights. Multiplies ``sample_weight``.
    early_stopping_rounds : int or None, default=30
        Stop when the validation loss has not improved for this many rounds.
        ``None`` trains all ``n_estimators`` rounds on all rows.
    validation_fraction : float, default=0.1
        Share of the training rows held out for early stopping, stratified by class.
    n_jobs : int, default=None
        Threads used by XGBoost; ``None`` uses all cores.
    random_state : int, default=0
        Seed of XGBoost and of the validation split.
    xgb_params : dict, default=None
        Further keyword arguments passed to :class:`xgboost.XGBClassifier`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels in the order of ``predict_proba``'s columns.
    booster_ : xgboost.XGBClassifier
        The fitted XGBoost model (labels encoded as 0 .. n_classes - 1).
    best_iteration_ : int
        Number of rounds kept (the best round found by early stopping, plus one).
    n_features_in_ : int
        Number of columns seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from mtl_hybrid import XGBoostHead
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 8))
    >>> y = np.where(X[:, 0] > 0, "positive", "negative")
    >>> XGBoostHead(n_estimators=50).fit(X, y).predict(X[:2]).tolist()
    ['positive', 'negative']
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_depth": [Interval(Integral, 0, None, closed="left")],
        "min_child_weight": [Interval(Real, 0, None, closed="left")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
        "reg_alpha": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "max_bin": [Interval(Integral, 2, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "xgb_params": [dict, None],
    }

    def __init__(
        self,
        *,
        n_estimators=400,
        learning_rate=0.1,
        max_depth=4,
        min_child_weight=1.0,
        subsample=0.8,
        colsample_bytree=0.5,
        reg_lambda=1.0,
        reg_alpha=0.0,
        gamma=0.0,
        max_bin=64,
        class_weight=None,
        early_stopping_rounds=30,
        validation_fraction=0.1,
        n_jobs=None,
        random_state=0,
        xgb_params=None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.max_bin = max_bin
        self.class_weight = class_weight
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.xgb_params = xgb_params

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.randint(np.iinfo(np.int32).max))
        if isinstance(self.random_state, np.random.RandomState):
            return int(self.random_state.randint(np.iinfo(np.int32).max))
        return int(self.random_state)

    def _make_booster(self, seed: int, n_classes: int, callbacks=None, early_stopping_rounds=None):
        try:
            from xgboost import XGBClassifier
        except ImportError as error:
            raise ImportError(
                "XGBoostHead needs the xgboost module: install `pip install mtl-hybrid[cpu]` (xgboost-cpu) "
                "or `pip install mtl-hybrid[gpu]` (xgboost with GPU support)."
            ) from error

        params = dict(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            reg_alpha=self.reg_alpha,
            gamma=self.gamma,
            max_bin=self.max_bin,
            tree_method="hist",
            n_jobs=self.n_jobs,
            random_state=seed,
            objective="multi:softprob" if n_classes > 2 else "binary:logistic",
            eval_metric="mlogloss" if n_classes > 2 else "logloss",
            early_stopping_rounds=early_stopping_rounds,
            callbacks=callbacks,
        )
        params.update(self.xgb_params or {})
        return XGBClassifier(**params)

    def fit(self, X, y, sample_weight=None, *, callbacks=None):
        """Fit the boosted trees on ``X`` (n_samples, n_features) and labels ``y``.

        ``callbacks`` are passed to :class:`xgboost.XGBClassifier`, for example an
        Optuna pruning callback that reads the validation loss each round.
        """
        self._validate_params()
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=np.float32, ensure_all_finite="allow-nan", ensure_min_samples=2
        )
        check_classification_targets(y)
        self._label_encoder = LabelEncoder().fit(y)
        self.classes_ = self._label_encoder.classes_
        check_at_least_two_classes(self.classes_)
        y_encoded = self._label_encoder.transform(y)

        weights = _check_sample_weight(sample_weight, X, dtype=np.float32)
        if self.class_weight is not None:
            weights = weights * compute_sample_weight(self.class_weight, y)

        seed = self._seed()
        fit_rows = np.arange(len(y_encoded))
        eval_set = None
        if self.early_stopping_rounds is not None:
            fit_rows, eval_rows = self._validation_split(y_encoded, seed)
            eval_set = [(X[eval_rows], y_encoded[eval_rows])]

        self.booster_ = self._make_booster(
            seed,
            len(self.classes_),
            callbacks=callbacks,
            early_stopping_rounds=self.early_stopping_rounds if eval_set is not None else None,
        )
        fit_kwargs = {"sample_weight": weights[fit_rows], "verbose": False}
        if eval_set is not None:
            fit_kwargs["eval_set"] = eval_set
            fit_kwargs["sample_weight_eval_set"] = [weights[eval_rows]]
        self.booster_.fit(X[fit_rows], y_encoded[fit_rows], **fit_kwargs)
        # Callbacks such as Optuna's pruning callback hold a trial and its storage,
        # which must not be pickled with the fitted model.
        self.booster_.callbacks = None

        best = getattr(self.booster_, "best_iteration", None)
        self.best_iteration_ = int(best) + 1 if eval_set is not None and best is not None else self.n_estimators
        logger.debug("XGBoostHead kept %d of %d rounds", self.best_iteration_, self.n_estimators)
        return self

    def _validation_split(self, y_encoded: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(y_encoded))
        counts = np.bincount(y_encoded)
        n_eval = max(int(round(self.validation_fraction * len(rows))), 1)
        # Stratify only when every class can appear on both sides of the split.
        stratify = y_encoded if counts.min() >= 2 and n_eval >= len(counts) else None
        if len(rows) - n_eval < 1:
            return rows, rows
        return train_test_split(rows, test_size=n_eval, stratify=stratify, random_state=seed)

    def predict_proba(self, X) -> np.ndarray:
        """Return class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        check_is_fitted(self, "booster_")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float32, ensure_all_finite="allow-nan", reset=False)
        return self.booster_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """Return the most probable label for each row."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        return tags
