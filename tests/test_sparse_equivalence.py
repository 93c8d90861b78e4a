"""Whole runs on sparse rows (the just-in-time kernel, compact task results expanded on the
driver) equal the runs on the same rows stored dense (the eager kernel), to rounding: for
every loss and penalty, with and without intercept, synchronous SAGA and ASAGA."""

from __future__ import annotations

import numpy as np
import pytest

import daskasync as da

P = 4

CASES = [
    (loss, penalty, intercept)
    for loss in ("logistic", "squared", "multinomial")
    for penalty in ("none", "l2", "l1", "elasticnet")
    for intercept in (False, True)
    if (loss, penalty, intercept) != ("squared", "none", True)  # the same as without
]


def _round_robin(states, clock):
    """One partition at a time, in turn: the asynchronous loop in a fixed order."""
    return [clock % len(states)]


@pytest.fixture(scope="module")
def rows():
    X, y = da.make_rcv1_like(n=1200, d=400, density=0.02, seed=5)
    labels = {"logistic": y, "squared": y + 0.1 * np.arange(len(y)) % 3,
              "multinomial": (np.arange(len(y)) * 7 % 3).astype(float)}
    return X, labels


@pytest.mark.slow
@pytest.mark.parametrize("loss, penalty, intercept", CASES,
                         ids=[f"{a}-{b}-{'b' if c else 'nob'}" for a, b, c in CASES])
def test_sparse_and_dense_rows_give_the_same_iterates(client, rows, loss, penalty, intercept):
    X, labels = rows
    y = labels[loss]
    sparse = da.PartitionedData.from_arrays(X, y, n_partitions=P, client=client, shuffle=False)
    dense = da.PartitionedData.from_arrays(X.toarray(), y, n_partitions=P, client=client,
                                           shuffle=False)
    assert sparse.is_sparse and not dense.is_sparse
    lam = 1e-3 if penalty != "none" else 0.0
    common = dict(loss=loss, penalty=penalty, lam=lam, fit_intercept=intercept,
                  batch_fraction=0.5, max_epochs=2, seed=3, record_every=1)
    runs = {
        "saga": dict(solver="saga"),
        "asaga": dict(solver="asaga", barrier=_round_robin),
    }
    for name, kw in runs.items():
        a = da.minimize(sparse, **common, **kw)
        b = da.minimize(dense, **common, **kw)
        assert a.updates == b.updates > 0, name
        scale = max(1.0, float(np.abs(b.theta).max()))
        np.testing.assert_allclose(a.theta, b.theta, rtol=0, atol=1e-10 * scale,
                                   err_msg=name)
        np.testing.assert_allclose(a.state.history.alpha, b.state.history.alpha, rtol=0,
                                   atol=1e-10, err_msg=name)
        np.testing.assert_allclose(a.history_array("objective"), b.history_array("objective"),
                                   rtol=1e-10, err_msg=name)
    sparse.release()
    dense.release()
