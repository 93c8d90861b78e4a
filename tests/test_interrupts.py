"""Ctrl-C (KeyboardInterrupt) during a run: outstanding tasks are cancelled, the estimator
keeps its last consistent state, and the scheduler holds nothing of the run."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import assert_no_tasks, scheduler_keys

import daskasync


def _interrupt_after(seconds: float) -> threading.Timer:
    """Send this process SIGINT, as Ctrl-C does (Python raises KeyboardInterrupt in the
    main thread, interrupting its wait)."""
    t = threading.Timer(seconds, os.kill, args=(os.getpid(), signal.SIGINT))
    t.start()
    return t


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 30))
    y = np.where(X @ rng.standard_normal(30) + 0.5 * rng.standard_normal(4000) > 0, 1, 0)
    return X, y


@pytest.mark.parametrize("solver", ["asaga", "saga", "sgd"])
def test_ctrl_c_during_fit_keeps_the_fitted_estimator(client, xy, solver):
    X, y = xy
    clf = daskasync.LogisticRegression(solver=solver, max_iter=2, client=client,
                                       random_state=0, n_partitions=4)
    clf.fit(X, y)
    before = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in vars(clf).items()}
    clf.set_params(max_iter=100_000, tol=None)
    timer = _interrupt_after(1.5)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    timer.join()
    assert time.monotonic() - t0 < 8  # interrupted at once, not run to the end
    # the tasks of the interrupted run are gone from the scheduler
    assert_no_tasks(client, prefixes=(f"{solver}-", "daskasync-model-"))
    # exactly the estimator fitted before
    after = vars(clf)
    assert set(after) == set(before)
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(after[k], v), k
    assert clf.history_ == before["history_"] and clf.n_iter_ == before["n_iter_"]
    # and it still works: partial_fit continues from it
    clf.set_params(max_iter=2)
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 3


def test_ctrl_c_during_minimize_leaves_no_tasks(client):
    data = daskasync.PartitionedData.synthetic(n=20_000, d=50, n_partitions=4, seed=1,
                                               client=client)
    timer = _interrupt_after(1.0)
    with pytest.raises(KeyboardInterrupt):
        daskasync.minimize(data, solver="asgd", max_epochs=10_000, lam=1e-3,
                           stragglers="intensity", straggler_c=1.0)
    timer.join()
    assert_no_tasks(client, prefixes=("asgd-", "daskasync-model-"))
    assert scheduler_keys(client, "daskasync-data-")  # the data stay, for the next run
    res = daskasync.minimize(data, solver="asgd", max_epochs=1, lam=1e-3)
    assert res.updates > 0
    data.release()
