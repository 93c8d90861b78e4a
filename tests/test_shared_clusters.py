"""Several fits at once on one cluster (a LocalCluster of worker processes) through one
shared client: four `minimize` calls from four threads, and scikit-learn's GridSearchCV
fitting four estimators at a time. Each fit equals its run alone (the synchronous solvers
bit for bit, the asynchronous ones to the same optimum), and nothing of any run is left on
the scheduler afterwards."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
from conftest import scheduler_keys
from distributed import Client
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold

import daskasync as da

#: four runs: three synchronous (bit for bit), one asynchronous (to its optimum)
RUNS = {
    "saga": {"solver": "saga", "batch_fraction": 0.5, "max_epochs": 4},
    "lbfgs": {"solver": "lbfgs", "max_epochs": 8},
    "sgd": {"solver": "sgd", "batch_fraction": 0.25, "max_epochs": 3, "fit_intercept": True},
    "albfgs": {"solver": "albfgs", "max_epochs": 200, "gtol": 1e-9},
}


@pytest.fixture
def shared(cluster):
    """One client; two data sets (the saga and sgd runs share one data object)."""
    with Client(cluster) as c:
        before = set(scheduler_keys(c))
        one = da.PartitionedData.synthetic("epsilon", n=3000, d=15, n_partitions=4, client=c)
        rng = np.random.default_rng(1)
        X = rng.normal(size=(2000, 10))
        y = np.where(X @ rng.normal(size=10) + 0.5 * rng.normal(size=2000) > 0, 1.0, -1.0)
        two = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=c)
        data = {"saga": one, "sgd": one, "lbfgs": two, "albfgs": two}
        yield c, data, before
        one.release()
        two.release()


def _settled_keys(client: Client, before: set[str], timeout: float = 10.0) -> list[str]:
    """Keys on the scheduler that were not there before, once releases have landed."""
    deadline = time.monotonic() + timeout
    while True:
        left = sorted(set(scheduler_keys(client)) - before)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _assert_nothing_left(client: Client, data: dict, before: set[str]) -> None:
    """Once the data sets are released, the scheduler holds no key it did not hold before
    the fixture: no run left a model, a task or a copy of a block (a worker that held no
    block when a run started gets copies; they go with the data set)."""
    for d in data.values():
        d.release()
    assert _settled_keys(client, before) == []


def test_four_fits_from_four_threads_on_one_client_equal_their_solo_runs(shared):
    client, data, before = shared
    solo = {name: da.minimize(data[name], **kw) for name, kw in RUNS.items()}
    start = threading.Barrier(len(RUNS))

    times: dict[str, tuple[float, float]] = {}

    def run(name: str) -> da.FitResult:
        start.wait(timeout=60)  # all four submit at once
        t0 = time.monotonic()
        res = da.minimize(data[name], **RUNS[name])
        times[name] = (t0, time.monotonic())
        return res

    with ThreadPoolExecutor(len(RUNS)) as pool:
        futures = {name: pool.submit(run, name) for name in RUNS}
        together = {name: f.result(timeout=600) for name, f in futures.items()}
    for name in ("saga", "lbfgs", "sgd"):
        np.testing.assert_array_equal(together[name].theta, solo[name].theta, err_msg=name)
        assert together[name].updates == solo[name].updates
        assert together[name].state.fingerprint == solo[name].state.fingerprint
    assert together["albfgs"].objective == pytest.approx(solo["albfgs"].objective, rel=1e-9)
    # the runs overlapped: all four had started before the first one ended
    assert max(t0 for t0, _ in times.values()) < min(t1 for _, t1 in times.values())
    _assert_nothing_left(client, data, before)


def test_grid_search_with_four_jobs_sharing_the_client_equals_one_job(shared):
    """GridSearchCV fits 4 candidates x 2 folds four at a time, every fit on the client
    the estimator was given (joblib's threading backend: the fits run in this process;
    its default process backend would pickle the estimator, and a client does not travel
    to another process). The scores equal those of one fit at a time exactly (a
    synchronous solver)."""
    client, data, before = shared
    X, y = data["lbfgs"].gather()
    grid = {"C": [0.01, 0.1, 1.0, 10.0]}
    base = da.LogisticRegression(solver="lbfgs", max_iter=10, tol=None, random_state=0,
                                 n_partitions=4, client=client)
    cv = KFold(2, shuffle=True, random_state=0)
    one = GridSearchCV(base, grid, cv=cv, n_jobs=1, refit=False).fit(X, y)
    with joblib.parallel_backend("threading", n_jobs=4):
        four = GridSearchCV(base, grid, cv=cv, n_jobs=4, refit=False).fit(X, y)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(four.cv_results_[key], one.cv_results_[key])
    assert four.best_params_ == one.best_params_
    assert clone(base).client is client  # a clone shares the client, it does not copy it
    _assert_nothing_left(client, data, before)
