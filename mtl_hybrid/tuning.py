"""TunedXGBoostHead: an Optuna search over XGBoost parameters inside ``fit``.

Each trial cross-validates one parameter set on the features it is given (the
embeddings, computed once before the search). The first fold of a trial reports
the validation AUC after every boosting round through Optuna's
``XGBoostPruningCallback``, so the pruner can stop a poor trial before its other
folds run. The best parameters are then refitted on all rows.

Studies can live in a relational database or a journal file, so a search can be
resumed and several processes or machines can share one study.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import check_scoring
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, check_cv
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from mtl_hybrid.boosting import XGBoostHead, check_at_least_two_classes

logger = logging.getLogger(__name__)

__all__ = ["RoundCounter", "TunedXGBoostHead", "default_search_space", "make_storage", "mask_password"]

# The metric the first fold of a trial reports to the pruner after each boosting
# round. AUC rises as the model improves, like the study's "maximize" objective.
# Early stopping uses the last metric of eval_metric, the log loss, as XGBoostHead
# does by default.
PRUNING_METRIC = "auc"


def default_search_space() -> dict:
    """Return the default Optuna distributions of :class:`TunedXGBoostHead`.

    Learning rate and regularisation are searched on log scales. The number of
    rounds is not searched: early stopping finds it in every fit. Extend the space
    with ``{**default_search_space(), "max_bin": IntDistribution(32, 256)}`` or
    replace it with your own dict.

    The space leaves out settings that only cost time on dense sentence
    embeddings. On the multi-domain MiniLM embeddings (experiments/bench_xgboost.py),
    128 or 256 histogram bins and column samples of 0.8 or 1.0 made the category
    head 18% to 66% slower to fit than 64 bins and 0.5, and gained at most 0.001
    of macro-F1 on either task. So ``max_bin`` stays at the template's 64 and
    ``colsample_bytree`` ends at 0.8. A learning rate of 0.05 needed 379 of the
    400 rounds, so lower rates would mostly stop at ``n_estimators`` before
    converging.
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    return {
        "learning_rate": FloatDistribution(0.05, 0.3, log=True),
        "max_depth": IntDistribution(2, 8),
        "min_child_weight": FloatDistribution(0.5, 20.0, log=True),
        "subsample": FloatDistribution(0.5, 1.0),
        "colsample_bytree": FloatDistribution(0.2, 0.8),
        "reg_lambda": FloatDistribution(1e-3, 10.0, log=True),
        "reg_alpha": FloatDistribution(1e-3, 10.0, log=True),
        "gamma": FloatDistribution(0.0, 5.0),
        "class_weight": CategoricalDistribution([None, "balanced"]),
    }


def make_storage(storage):
    """Return an Optuna storage for ``storage``.

    ``None`` keeps the study in memory. A ``journal:///path/to/file`` URL (or any
    path ending in ``.journal``) uses a journal file that several processes on
    one machine may share. Any other string is a SQLAlchemy URL, such as
    ``sqlite:///study.db`` or ``postgresql://user:password@host/db``. Such a
    storage gets a heartbeat. A trial whose worker was killed is then marked
    failed and retried by the next worker instead of staying RUNNING.
    """
    import optuna

    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, (str, os.PathLike)):
        raise TypeError(f"storage must be None, a URL string or an Optuna storage, got {type(storage).__name__}.")

    url = os.fspath(storage)
    if url.startswith("journal://") or url.endswith(".journal"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = url.removeprefix("journal://")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    if "://" not in url:
        raise ValueError(
            f"storage {url!r} is not a URL; use sqlite:///FILE, postgresql://..., or journal:///FILE."
        )
    from optuna.storages import RDBStorage

    try:
        from optuna.storages import RetryHeartbeatStaleTrialCallback as RetryCallback
    except ImportError:  # Optuna < 4.9
        from optuna.storages import RetryFailedTrialCallback as RetryCallback

    import sqlalchemy.exc

    # Workers that start together on a new database race to create Optuna's tables.
    # The losers get an IntegrityError, or on PostgreSQL a ProgrammingError such as
    # DuplicateTable for alembic_version. By the next attempt the tables exist.
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                # Optuna marks the heartbeat as experimental; it is the documented way
                # to recover trials of killed workers.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    heartbeat_interval=30,
                    grace_period=90,
                    heartbeat_stale_trial_callback=RetryCallback(max_retry=1),
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            if attempt == 2:
                raise ValueError(f"storage {mask_password(url)} could not be set up: {str(error).splitlines()[0]}") from error
            logger.info("Optuna tables in %s were created concurrently; retrying", mask_password(url))
            time.sleep(0.5 * (attempt + 1))
        except ImportError as error:
            raise ValueError(f"storage {mask_password(url)}: the database driver is not installed ({error}).") from error
        except Exception as error:
            # SQLAlchemy raises its own error types (OperationalError, ArgumentError, ...).
            reason = str(error).splitlines()[0]
            raise ValueError(f"storage {mask_password(url)} could not be opened: {reason}") from error


def mask_password(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    import re

    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def suggest(trial, name: str, distribution):
    """Sample ``name`` from an Optuna distribution through the trial's public API."""
    from optuna.distributions import (
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    _check_search_space({name: distribution})
    return trial.suggest_categorical(name, distribution.choices)


def _check_search_space(space: dict) -> None:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    for name, distribution in space.items():
        if not isinstance(distribution, (FloatDistribution, IntDistribution, CategoricalDistribution)):
            raise TypeError(
                f"search_space[{name!r}] must be an Optuna Float-, Int- or CategoricalDistribution, got {distribution!r}."
            )


def _within(distribution, value) -> bool:
    """Return whether ``value`` is one the distribution can propose."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    return isinstance(value, Real) and distribution.low <= value <= distribution.high


def _round_counter_class():
    from xgboost.callback import TrainingCallback

    class _RoundCounter(TrainingCallback):
        """Count the boosting rounds a fit runs, including one stopped by pruning."""

        def __init__(self) -> None:
            super().__init__()
            self.rounds = 0

        def after_iteration(self, model, epoch, evals_log) -> bool:
            self.rounds += 1
            return False

    return _RoundCounter


def RoundCounter():
    """Return an XGBoost callback whose ``rounds`` attribute counts boosting rounds."""
    return _round_counter_class()()


class TunedXGBoostHead(ClassifierMixin, BaseEstimator):
    """XGBoost head whose parameters an Optuna study picks in ``fit``.

    Every trial samples parameters from ``search_space``, cross-validates an
    :class:`XGBoostHead` with them and returns the mean ``scoring`` value. The
    best parameters, with the number of rounds early stopping found for them, are
    refitted on all rows as ``best_estimator_``.

    Parameters
    ----------
    estimator : XGBoostHead, default=None
        Template whose parameters the trials start from; ``None`` is ``XGBoostHead()``.
        With ``early_stopping_rounds=None`` every trial runs ``n_estimators`` rounds
        and nothing is pruned.
    search_space : dict of {name: optuna.distributions.BaseDistribution}, default=None
        Distributions of the searched parameters; ``None`` is :func:`default_search_space`.
    n_trials : int, default=30
        Trials this call of ``fit`` runs. With a persistent ``storage`` they add to
        the trials the study already has.
    timeout : float, default=None
        Stop starting new trials after this many seconds.
    cv : int or cross-validation splitter, default=3
        An int means stratified folds (``StratifiedGroupKFold`` when ``groups`` are
        passed to ``fit``).
    scoring : str or callable, default="f1_macro"
        Score to maximise, as accepted by :func:`sklearn.metrics.check_scoring`.
    sampler : optuna.samplers.BaseSampler, default=None
        ``None`` is ``TPESampler(seed=random_state, multivariate=True)``, and a new
        study then starts with one trial of the template's own parameters. Give each
        of several workers sharing a study its own seed, or they propose the same
        parameters.
    pruner : optuna.pruners.BasePruner, default=None
        ``None`` is ``MedianPruner(n_startup_trials=5, n_warmup_steps=20)``. Pass
        ``optuna.pruners.NopPruner()`` to disable pruning.
    storage : str or optuna storage, default=None
        ``None`` (in memory), a SQLAlchemy URL (``sqlite:///FILE``,
        ``postgresql://...``) or ``journal:///FILE``; see :func:`make_storage`.
    study_name : str, default=None
        Name of the study in ``storage``; an existing study of that name is resumed.
    n_jobs : int, default=1
        Trials run in parallel threads of this process.
    show_progress_bar : bool, default=False
        Show a tqdm bar over trials.
    random_state : int, default=0
        Seed of the sampler, the folds and XGBoost.

    Attributes
    ----------
    study_ : optuna.study.Study
        The study after the search (not saved with the estimator; reopen it from
        ``storage`` with ``optuna.load_study``).
    best_params_ : dict
        Best parameters, including ``n_estimators`` found by early stopping.
    best_score_ : float
        Mean cross-validated score of the best trial.
    best_estimator_ : XGBoostHead
        The best parameters refitted on all rows.
    boosting_rounds_ : int
        Boosting rounds run by the trials of this ``fit`` (pruned rounds included).
    classes_ : ndarray
        Labels in the order of ``predict_proba``'s columns.
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "search_space": [dict, None],
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "cv": ["cv_object"],
        "scoring": [str, callable],
        "sampler": [HasMethods(["sample_relative"]), None],
        "pruner": [HasMethods(["prune"]), None],
        "storage": [str, os.PathLike, HasMethods(["create_new_study"]), None],
        "study_name": [str, None],
        "n_jobs": [Integral],
        "show_progress_bar": ["boolean"],
        "random_state": [Integral],
    }

    def __init__(
        self,
        estimator=None,
        *,
        search_space=None,
        n_trials=30,
        timeout=None,
        cv=3,
        scoring="f1_macro",
        sampler=None,
        pruner=None,
        storage=None,
        study_name=None,
        n_jobs=1,
        show_progress_bar=False,
        random_state=0,
    ):
        self.estimator = estimator
        self.search_space = search_space
        self.n_trials = n_trials
        self.timeout = timeout
        self.cv = cv
        self.scoring = scoring
        self.sampler = sampler
        self.pruner = pruner
        self.storage = storage
        self.study_name = study_name
        self.n_jobs = n_jobs
        self.show_progress_bar = show_progress_bar
        self.random_state = random_state

    def _base_estimator(self) -> XGBoostHead:
        base = XGBoostHead(random_state=self.random_state) if self.estimator is None else clone(self.estimator)
        params = dict(base.get_params().get("xgb_params") or {})
        loss = "mlogloss" if len(self.classes_) > 2 else "logloss"
        params["eval_metric"] = [PRUNING_METRIC, loss]
        return base.set_params(xgb_params=params)

    def _create_study(self, data_key: str):
        import optuna

        storage = make_storage(self.storage)
        n_existing = 0
        if storage is not None and self.study_name is not None:
            try:
                existing = optuna.load_study(study_name=self.study_name, storage=storage)
            except KeyError:
                existing = None
            if existing is not None:
                n_existing = len(existing.trials)
                recorded = existing.user_attrs.get("data_key")
                if recorded is not None and recorded != data_key:
                    raise ValueError(
                        f"Study {self.study_name!r} in the storage was run on other data, folds or search space; "
                        "resume it only with the same inputs, or choose another study_name."
                    )

        sampler = self.sampler
        if sampler is None:
            with warnings.catch_warnings():
                # Optuna marks multivariate TPE as experimental. It models the
                # parameters jointly, which suits correlated ones such as the
                # learning rate and the depth.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # A resumed study gets a seed shifted by its trial count, so its random
                # start-up trials differ from the ones already run.
                sampler = optuna.samplers.TPESampler(seed=self.random_state + n_existing, multivariate=True)
        pruner = self.pruner if self.pruner is not None else optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20)
        study = optuna.create_study(
            storage=storage,
            study_name=self.study_name,
            sampler=sampler,
            pruner=pruner,
            direction="maximize",
            load_if_exists=True,
        )
        finished = [trial for trial in study.trials if trial.state.is_finished()]
        if finished:
            logger.info("Resuming study %r with %d finished trial(s)", study.study_name, len(finished))
        study.set_user_attr("data_key", data_key)
        return study

    def _enqueue_defaults(self, study, base, space: dict) -> None:
        """Queue the template's own parameters as the first trial of a new study, so
        the untuned head's cross-validated score is among the trials compared."""
        if study.trials:
            return
        defaults = {name: base.get_params()[name] for name in space if name in base.get_params()}
        valid = {name: value for name, value in defaults.items() if _within(space[name], value)}
        if valid:
            study.enqueue_trial(valid, skip_if_exists=True)

    @staticmethod
    def _data_key(X, y, splits, space) -> str:
        """Return a hash of the data, folds and search space, recorded in the study."""
        import hashlib

        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(X).tobytes())
        digest.update("\0".join(map(str, y)).encode())
        for _, test_rows in splits:
            digest.update(np.asarray(test_rows).tobytes())
        digest.update(repr(sorted((name, repr(dist)) for name, dist in space.items())).encode())
        return digest.hexdigest()

    def _splits(self, X, y, groups):
        if isinstance(self.cv, Integral):
            if groups is not None:
                splitter = StratifiedGroupKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
            else:
                splitter = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
        else:
            splitter = check_cv(self.cv, y, classifier=True)
        return list(splitter.split(X, y, groups))

    def _objective(self, X, y, splits, base, space, scorer, rounds_total: list):
        from optuna_integration.xgboost import XGBoostPruningCallback

        def objective(trial) -> float:
            params = {name: suggest(trial, name, distribution) for name, distribution in space.items()}
            scores, best_rounds = [], []
            for fold, (train_rows, test_rows) in enumerate(splits):
                counter = RoundCounter()
                callbacks = [counter]
                # Without early stopping there is no validation split to report on.
                if fold == 0 and base.early_stopping_rounds is not None:
                    callbacks.append(XGBoostPruningCallback(trial, f"validation_0-{PRUNING_METRIC}"))
                head = clone(base).set_params(**params)
                try:
                    head.fit(X[train_rows], y[train_rows], callbacks=callbacks)
                finally:
                    rounds_total.append(counter.rounds)
                    trial.set_user_attr("boosting_rounds", int(sum(best_rounds) + counter.rounds))
                best_rounds.append(head.best_iteration_)
                scores.append(scorer(head, X[test_rows], y[test_rows]))

            trial.set_user_attr("n_estimators", int(round(np.mean(best_rounds))))
            trial.set_user_attr("fold_scores", [float(score) for score in scores])
            return float(np.mean(scores))

        return objective

    def fit(self, X, y, groups=None):
        """Search parameters by cross-validation on ``X``, then refit the best on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, for example sentence embeddings.
        y : array-like of shape (n_samples,)
            Labels (strings allowed).
        groups : array-like of shape (n_samples,), default=None
            Group of each row (a product id); folds keep groups apart.
        """
        import optuna

        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32, ensure_all_finite="allow-nan", ensure_min_samples=2)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        check_at_least_two_classes(self.classes_)

        base = self._base_estimator()
        space = self.search_space if self.search_space is not None else default_search_space()
        _check_search_space(space)
        scorer = check_scoring(base, scoring=self.scoring)
        splits = self._splits(X, y, None if groups is None else np.asarray(groups))

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = self._create_study(self._data_key(X, y, splits, space))
        if self.sampler is None:
            self._enqueue_defaults(study, base, space)
        rounds_total: list[int] = []
        study.optimize(
            self._objective(X, y, splits, base, space, scorer, rounds_total),
            n_trials=self.n_trials,
            timeout=self.timeout,
            n_jobs=self.n_jobs,
            show_progress_bar=self.show_progress_bar,
        )
        self.boosting_rounds_ = int(sum(rounds_total))

        completed = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
        if not completed:
            raise RuntimeError(f"Study {study.study_name!r} has no completed trial; raise n_trials or timeout.")
        best = study.best_trial
        self.study_ = study
        self.best_score_ = float(best.value)
        self.best_params_ = {**best.params, "n_estimators": int(best.user_attrs.get("n_estimators", base.n_estimators))}
        logger.info("Study %r: best score %.4f with %s", study.study_name, self.best_score_, self.best_params_)

        # The refit uses every row, so it runs the number of rounds early stopping
        # chose during the search instead of holding rows out again.
        final_params = {**self.best_params_, "early_stopping_rounds": None}
        final = clone(base).set_params(**final_params)
        final.set_params(xgb_params={k: v for k, v in final.xgb_params.items() if k != "eval_metric"} or None)
        self.best_estimator_ = final.fit(X, y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Return class probabilities of the refitted best model."""
        check_is_fitted(self, "best_estimator_")
        X = validate_data(self, X, dtype=np.float32, ensure_all_finite="allow-nan", reset=False)
        return self.best_estimator_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """Return the most probable label for each row."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("study_", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def save_study_plots(study, directory, prefix: str) -> list:
    """Write PNG plots of a study: the optimisation history and, with at least two
    completed trials, the parameter importances.

    Returns the paths written. Needs matplotlib (``pip install mtl-hybrid[plot]``).
    """
    from pathlib import Path

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("Study plots need matplotlib; install it with `pip install mtl-hybrid[plot]`.") from error
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    completed = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    plots = {"history": optuna_plots.plot_optimization_history}
    if len(completed) >= 2 and len({tuple(sorted(t.params.items(), key=str)) for t in completed}) >= 2:
        plots["importances"] = optuna_plots.plot_param_importances

    written = []
    for kind, plot in plots.items():
        with warnings.catch_warnings():
            # Optuna marks its matplotlib plots as experimental.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = plot(study)
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        path = directory / f"{prefix}-{kind}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written
