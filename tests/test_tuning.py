"""TunedXGBoostHead: Optuna studies on real MiniLM embeddings, resumed and shared."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution, IntDistribution

from mtl_hybrid import MultiTaskClassifier, SentenceEncoder
from mtl_hybrid.tuning import TunedXGBoostHead, default_search_space, make_storage

POSTGRES_VARIABLE = "MTL_HYBRID_POSTGRES_URL"


@pytest.fixture(scope="module")
def embedded(reviews):
    """MiniLM embeddings of the multi-domain sample, with its labels and product ids."""
    X = SentenceEncoder().fit().transform(reviews["text"])
    return X, reviews


@pytest.fixture(scope="module")
def saved_embeddings(embedded, tmp_path_factory):
    """The embeddings and sentiment labels as .npy files, for worker processes."""
    X, reviews = embedded
    folder = tmp_path_factory.mktemp("embeddings")
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", reviews["sentiment"].to_numpy(dtype=str))
    return folder


def worker_command(folder, storage: str, study_name: str, n_trials: int, seed: int) -> list[str]:
    """Return a command that runs one tuning worker in its own process; ``seed``
    seeds its sampler, while the folds stay those of every other worker."""
    code = textwrap.dedent(
        f"""
        import numpy as np
        import optuna
        from mtl_hybrid.tuning import TunedXGBoostHead
        X = np.load({str(folder / "X.npy")!r})
        y = np.load({str(folder / "y.npy")!r})
        sampler = optuna.samplers.TPESampler(seed={seed})
        TunedXGBoostHead(n_trials={n_trials}, storage={storage!r}, study_name={study_name!r}, sampler=sampler).fit(X, y)
        """
    )
    return [sys.executable, "-c", code]


def finished_trials(storage, study_name: str) -> list:
    study = optuna.load_study(study_name=study_name, storage=make_storage(storage))
    return [trial for trial in study.trials if trial.state.is_finished()]


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_first_trial_is_template(embedded):
    X, reviews = embedded
    head = TunedXGBoostHead(n_trials=2).fit(X, reviews["sentiment"])
    assert head.study_.trials[0].params["max_depth"] == 4
    assert head.study_.trials[0].params["class_weight"] is None


def test_tuned_head_fits(embedded):
    X, reviews = embedded
    head = TunedXGBoostHead(n_trials=4).fit(X, reviews["sentiment"], groups=reviews["asin"])
    assert len(head.study_.trials) == 4
    assert set(head.best_params_) == set(default_search_space()) | {"n_estimators"}
    assert head.best_params_["n_estimators"] >= 1
    assert 0 < head.best_score_ <= 1
    assert set(head.predict(X)) <= {"negative", "positive"}
    assert head.best_estimator_.best_iteration_ == head.best_params_["n_estimators"]


def test_custom_search_space(embedded):
    X, reviews = embedded
    space = {"max_depth": IntDistribution(2, 3), "learning_rate": FloatDistribution(0.05, 0.2, log=True)}
    head = TunedXGBoostHead(n_trials=3, search_space=space).fit(X, reviews["category"])
    assert set(head.best_params_) == {"max_depth", "learning_rate", "n_estimators"}
    assert head.best_params_["max_depth"] in (2, 3)


def test_invalid_distribution_rejected(embedded):
    X, reviews = embedded
    with pytest.raises(TypeError, match=r"search_space\['max_depth'\] must be an Optuna"):
        TunedXGBoostHead(n_trials=1, search_space={"max_depth": [2, 3]}).fit(X, reviews["category"])


def test_pruner_stops_trials(embedded):
    X, reviews = embedded
    head = TunedXGBoostHead(n_trials=3, pruner=AlwaysPrune(), cv=3)
    with pytest.raises(RuntimeError, match="no completed trial"):
        head.fit(X, reviews["sentiment"])
    assert head.boosting_rounds_ == 3


def test_pickle_drops_study(embedded):
    X, reviews = embedded
    head = TunedXGBoostHead(n_trials=2).fit(X, reviews["sentiment"])
    restored = pickle.loads(pickle.dumps(head))
    assert not hasattr(restored, "study_")
    np.testing.assert_array_equal(restored.predict_proba(X), head.predict_proba(X))


def test_study_per_task(embedded, tmp_path):
    X, reviews = embedded
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    template = TunedXGBoostHead(n_trials=2, storage=storage, study_name="reviews")
    model = MultiTaskClassifier(template).fit(X, reviews[["category", "sentiment"]], groups=reviews["asin"].to_numpy())
    assert sorted(optuna.get_all_study_names(make_storage(storage))) == ["reviews-category", "reviews-sentiment"]
    assert model.estimators_["sentiment"].study_.study_name == "reviews-sentiment"


def test_resume_keeps_trials(embedded, tmp_path):
    X, reviews = embedded
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = TunedXGBoostHead(n_trials=3, storage=storage, study_name="resume").fit(X, reviews["sentiment"])
    values = [trial.value for trial in first.study_.trials]

    second = TunedXGBoostHead(n_trials=2, storage=storage, study_name="resume").fit(X, reviews["sentiment"])
    assert len(second.study_.trials) == 5
    assert [trial.value for trial in second.study_.trials[:3]] == values
    assert second.best_score_ >= first.best_score_
    old = [trial.params for trial in second.study_.trials[:3]]
    assert all(trial.params not in old for trial in second.study_.trials[3:])


def test_resume_other_data_rejected(embedded, tmp_path):
    X, reviews = embedded
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    TunedXGBoostHead(n_trials=1, storage=storage, study_name="one").fit(X, reviews["sentiment"])
    with pytest.raises(ValueError, match="was run on other data"):
        TunedXGBoostHead(n_trials=1, storage=storage, study_name="one").fit(X, reviews["category"])


@pytest.mark.parametrize(
    "storage, message",
    [
        ("sqlite:////nonexistent/folder/study.db", "could not be opened"),
        ("postgresql://user:secret@127.0.0.1:1/db", "could not be opened"),
        ("not-a-url", "is not a URL"),
    ],
)
def test_bad_storage_rejected(storage, message):
    with pytest.raises(ValueError, match=message) as error:
        make_storage(storage)
    assert "secret" not in str(error.value)


def test_resume_after_kill(saved_embeddings, tmp_path):
    storage = f"sqlite:///{tmp_path / 'killed.db'}"
    worker = subprocess.Popen(worker_command(saved_embeddings, storage, "killed", 200, 0))
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                if len(finished_trials(storage, "killed")) >= 3:
                    break
            except KeyError:
                continue
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait()
    before = {trial.number: trial.value for trial in finished_trials(storage, "killed")}
    assert len(before) >= 3

    X, y = np.load(saved_embeddings / "X.npy"), np.load(saved_embeddings / "y.npy")
    resumed = TunedXGBoostHead(n_trials=2, storage=storage, study_name="killed").fit(X, y)
    after = {trial.number: trial.value for trial in resumed.study_.trials if trial.state.is_finished()}
    assert {number: after[number] for number in before} == before
    assert len(after) >= len(before) + 2


def run_two_workers(folder, storage: str, study_name: str) -> None:
    workers = [subprocess.Popen(worker_command(folder, storage, study_name, 3, seed)) for seed in (1, 2)]
    assert [worker.wait(timeout=300) for worker in workers] == [0, 0]


def test_two_workers_journal(saved_embeddings, tmp_path):
    storage = f"journal://{tmp_path / 'study.journal'}"
    run_two_workers(saved_embeddings, storage, "shared")
    assert len(finished_trials(storage, "shared")) == 6


def test_two_workers_postgresql(saved_embeddings):
    url = os.environ.get(POSTGRES_VARIABLE)
    if not url:
        pytest.skip(f"{POSTGRES_VARIABLE} is not set; .ci/run starts a PostgreSQL server and sets it")
    study_name = f"shared-{os.getpid()}-{time.time_ns()}"
    run_two_workers(saved_embeddings, url, study_name)
    assert len(finished_trials(url, study_name)) == 6
    optuna.delete_study(study_name=study_name, storage=make_storage(url))


def test_cli_tune(clothing_csv, tmp_path, capsys):
    from mtl_hybrid.cli import main

    output = tmp_path / "tuned"
    code = main(
        [
            "tune", "--data", str(clothing_csv), "--task", "category", "--task", "sentiment",
            "--group-column", "clothing_id", "--trials", "3", "--storage", f"sqlite:///{tmp_path / 'cli.db'}",
            "--cache-dir", str(tmp_path / "cache"), "--output", str(output),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "category: best parameters" in out
    metrics = pd.read_json(output / "metrics.json", typ="series")
    assert set(metrics["tasks"]) == {"category", "sentiment"}
    assert metrics["tuning"]["sentiment"]["n_trials"] == 3
    for task in ("category", "sentiment"):
        assert (output / "plots" / f"{task}-history.png").stat().st_size > 1000
