"""float32 data stays float32 on the workers (half the memory and bandwidth); models and
histories stay float64, and fits agree with the float64 fit to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import daskasync as da


def _block_dtypes(client, data):
    return client.gather([client.submit(lambda b: str(b[0].dtype), f) for f in data.parts])


@pytest.fixture(scope="module")
def problem():
    X, y = da.make_rcv1_like(n=3000, d=300, density=0.05, seed=3)
    return X, y


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_float32_blocks_stay_float32_and_fit_like_float64(client, problem, kind):
    X, y = problem
    X = X.toarray() if kind == "dense" else X
    d32 = da.PartitionedData.from_arrays(X.astype(np.float32), y, n_partitions=4, client=client)
    d64 = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client)
    assert _block_dtypes(client, d32) == ["float32"] * 4
    assert _block_dtypes(client, d64) == ["float64"] * 4
    for solver in ("lbfgs", "saga"):
        kw = dict(solver=solver, max_epochs=40, lam=1e-3)
        r32, r64 = da.minimize(d32, **kw), da.minimize(d64, **kw)
        assert r32.coef.dtype == np.float64 and r32.state.theta.dtype == np.float64
        scale = np.abs(r64.coef).max()
        np.testing.assert_allclose(r32.coef, r64.coef, atol=1e-4 * scale)
        assert abs(r32.objective - r64.objective) <= 1e-5 * abs(r64.objective)
        if solver == "saga":
            assert r32.state.history.alpha.dtype == np.float64
    d32.release()
    d64.release()


def test_other_dtypes_become_float64(client):
    X = np.arange(40).reshape(20, 2)
    for arr in (X, X.astype(np.int8), sp.csr_matrix(X.astype(np.int64))):
        data = da.PartitionedData.from_arrays(arr, np.sign(np.arange(20) - 9.5),
                                              n_partitions=2, client=client)
        assert _block_dtypes(client, data) == ["float64", "float64"]
        data.release()


def test_estimators_keep_float32(client, problem):
    X, y = problem
    clf32 = da.LogisticRegression(solver="lbfgs", max_iter=60, tol=None, client=client)
    clf64 = da.LogisticRegression(solver="lbfgs", max_iter=60, tol=None, client=client)
    clf32.fit(X.astype(np.float32), y)
    clf64.fit(X, y)
    assert clf32.coef_.dtype == np.float64
    np.testing.assert_allclose(clf32.coef_, clf64.coef_, atol=1e-4 * np.abs(clf64.coef_).max())
