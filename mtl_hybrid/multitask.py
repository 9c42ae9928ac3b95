"""MultiTaskClassifier: one classifier per task on shared features."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.metrics import f1_score
from sklearn.utils.validation import _num_samples, check_is_fitted, validate_data

from mtl_hybrid.boosting import XGBoostHead, check_at_least_two_classes

logger = logging.getLogger(__name__)

__all__ = ["MultiTaskClassifier", "missing_label_mask", "targets_as_frame"]


def missing_label_mask(values) -> np.ndarray:
    """Return a boolean mask of missing labels (None or NaN)."""
    return pd.isna(pd.Series(values, dtype=object)).to_numpy()


def targets_as_frame(y) -> tuple[pd.DataFrame, bool, bool]:
    """Return ``y`` as a DataFrame with one column per task.

    Also returns whether ``y`` was a DataFrame (so predictions come back as one)
    and whether it was 1-D (a single task, predicted as a 1-D array).
    """
    if isinstance(y, pd.DataFrame):
        if y.shape[1] == 0:
            raise ValueError("y must have at least one task column, got a DataFrame with no columns.")
        names = [str(column) for column in y.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"y has duplicate task names: {names}.")
        return y.set_axis(names, axis=1).reset_index(drop=True), True, False
    if isinstance(y, pd.Series):
        name = str(y.name) if y.name is not None else "task0"
        return y.reset_index(drop=True).to_frame(name), False, True

    array = np.asarray(y, dtype=object)
    if array.ndim == 1:
        return pd.DataFrame({"task0": array}), False, True
    if array.ndim == 2:
        if array.shape[1] == 0:
            raise ValueError("y must have at least one task column, got shape (n, 0).")
        return pd.DataFrame(array, columns=[f"task{i}" for i in range(array.shape[1])]), False, False
    raise ValueError(f"y must be 1-D or 2-D, got an array of shape {array.shape}.")


def _rows_of(value, present: np.ndarray):
    """Return the rows of a per-sample fit parameter (groups, sample_weight) that
    have a label; other parameters are returned unchanged."""
    if value is None or isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        return value
    if len(value) != len(present):
        return value
    return np.asarray(value)[present]


class MultiTaskClassifier(ClassifierMixin, BaseEstimator):
    """Fit one classifier per task on the same features.

    A row whose label is missing (None or NaN) for one task is left out of that
    task's training only. Labels may be strings.

    Parameters
    ----------
    estimator : estimator or dict of {task: estimator}, default=None
        A template classifier cloned for every task, or one classifier per task
        name. ``None`` uses :class:`XGBoostHead` with its defaults.

    Attributes
    ----------
    tasks_ : list of str
        Task names: the DataFrame's columns, or ``task0``, ``task1``, ... for arrays.
    estimators_ : dict of {task: estimator}
        The fitted classifier of each task.
    classes_ : ndarray or list of ndarray
        Labels per task; a single array when ``y`` was 1-D.
    n_features_in_ : int
        Number of feature columns seen in ``fit``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mtl_hybrid import MultiTaskClassifier
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = pd.DataFrame({"size": ["s", "s", "l", "l"], "parity": ["even", "odd", "even", "odd"]})
    >>> model = MultiTaskClassifier(LogisticRegression()).fit(X, y)
    >>> model.tasks_
    ['size', 'parity']
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def _estimator_for(self, task: str):
        if self.estimator is None:
            return XGBoostHead()
        if isinstance(self.estimator, dict):
            if task not in self.estimator:
                raise ValueError(
                    f"estimator has no entry for task {task!r}; it has {sorted(self.estimator)}. "
                    "Give one estimator per task or a single template estimator."
                )
            return clone(self.estimator[task])

        estimator = clone(self.estimator)
        # A template with an Optuna study gets one study per task: "<study_name>-<task>".
        study_name = estimator.get_params().get("study_name", None)
        if study_name is not None:
            estimator.set_params(study_name=f"{study_name}-{task}")
        return estimator

    def _check_estimator_param(self) -> None:
        candidates = self.estimator.values() if isinstance(self.estimator, dict) else [self.estimator]
        for candidate in candidates:
            if candidate is not None and not is_classifier(candidate):
                raise ValueError(
                    f"estimator must be a classifier or a dict of classifiers, got {candidate!r}."
                )

    def fit(self, X, y, **fit_params):
        """Fit one classifier per task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, for example sentence embeddings.
        y : DataFrame, Series or array-like of shape (n_samples,) or (n_samples, n_tasks)
            Labels; None or NaN marks a missing label for that task.
        **fit_params : dict
            Passed to every task's ``fit`` (for example ``groups`` for tuned heads);
            a per-row array is cut to the rows where the task has a label.
        """
        self._check_estimator_param()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=None, ensure_all_finite=False)
        if _num_samples(X) != _num_samples(y):
            raise ValueError(
                f"X and y have different lengths: {_num_samples(X)} rows in X, {_num_samples(y)} in y."
            )
        Y, self._y_is_frame, self._y_is_1d = targets_as_frame(y)
        self.tasks_ = list(Y.columns)

        self.estimators_ = {}
        for task in self.tasks_:
            labels = Y[task].to_numpy(dtype=object)
            present = ~missing_label_mask(labels)
            if not present.any():
                raise ValueError(f"Task {task!r} has no labels: every value is missing.")
            task_labels = labels[present]
            if not all(isinstance(label, str) for label in task_labels):
                task_labels = np.asarray(task_labels.tolist())
            check_at_least_two_classes(np.unique(task_labels), task)

            logger.info("Fitting task %r on %d of %d rows", task, int(present.sum()), len(labels))
            task_params = {name: _rows_of(value, present) for name, value in fit_params.items()}
            self.estimators_[task] = self._estimator_for(task).fit(X[present], task_labels, **task_params)

        classes = [self.estimators_[task].classes_ for task in self.tasks_]
        self.classes_ = classes[0] if self._y_is_1d else classes
        return self

    def _checked_features(self, X):
        check_is_fitted(self, "estimators_")
        return validate_data(self, X, accept_sparse=["csr", "csc"], dtype=None, ensure_all_finite=False, reset=False)

    def predict(self, X):
        """Predict every task.

        Returns a DataFrame with one column per task when fitted on a DataFrame, a
        1-D array when fitted on a 1-D ``y``, and otherwise an array of shape
        (n_samples, n_tasks).
        """
        X = self._checked_features(X)
        predictions = {task: self.estimators_[task].predict(X) for task in self.tasks_}
        if self._y_is_1d:
            return predictions[self.tasks_[0]]
        if self._y_is_frame:
            return pd.DataFrame(predictions, columns=self.tasks_)
        columns = [predictions[task] for task in self.tasks_]
        if len({column.dtype.kind for column in columns}) == 1:
            return np.column_stack(columns)
        return np.column_stack([column.astype(object) for column in columns])

    def predict_proba(self, X):
        """Return class probabilities per task.

        A list with one array of shape (n_samples, n_classes) per task, in
        ``tasks_`` order (a single array when fitted on a 1-D ``y``).
        """
        X = self._checked_features(X)
        probabilities = [self.estimators_[task].predict_proba(X) for task in self.tasks_]
        return probabilities[0] if self._y_is_1d else probabilities

    def score(self, X, y, sample_weight=None) -> float:
        """Return the mean macro-F1 over tasks, each on its rows with a label."""
        scores = self.task_scores(X, y, sample_weight=sample_weight)
        return float(np.mean(list(scores.values())))

    def task_scores(self, X, y, sample_weight=None) -> dict[str, float]:
        """Return the macro-F1 of each task, on the rows where its label is present."""
        check_is_fitted(self, "estimators_")
        Y, _, _ = targets_as_frame(y)
        if Y.shape[1] != len(self.tasks_):
            raise ValueError(f"y has {Y.shape[1]} task column(s) but the model was fitted on {len(self.tasks_)}: {self.tasks_}.")
        Y.columns = self.tasks_
        predictions = self.predict(X)
        predicted = pd.DataFrame(np.asarray(predictions, dtype=object).reshape(len(Y), -1), columns=self.tasks_)

        scores = {}
        for task in self.tasks_:
            present = ~missing_label_mask(Y[task])
            weights = None if sample_weight is None else np.asarray(sample_weight)[present]
            truth = Y[task][present].to_numpy(dtype=object)
            guess = predicted[task][present].to_numpy(dtype=object)
            if not all(isinstance(label, str) for label in truth):
                truth, guess = np.asarray(truth.tolist()), np.asarray(guess.tolist())
            scores[task] = float(f1_score(truth, guess, average="macro", sample_weight=weights))
        return scores

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = False
        return tags
