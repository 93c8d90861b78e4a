"""SAGA and ASAGA with the gradient history, on a real 4-worker cluster, against
scikit-learn and closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import daskasync as da
from daskasync.bench.peers.sklearn import logistic_penalty


def _sk(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(tol=1e-12, max_iter=20000, **kw)


@pytest.mark.parametrize("solver", ["saga", "asaga"])
def test_l1_support_and_coefficients_match_sklearn(client4, solver):
    X, y = da.make_epsilon_like(n=4000, d=30, seed=3)
    X = X * np.sqrt(30)
    C = 0.02
    sk = _sk(solver="saga", **logistic_penalty(1.0), C=C, fit_intercept=False).fit(X, y)
    ref = sk.coef_.ravel()
    data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client4)
    res = da.minimize(data, solver=solver, penalty="l1", lam=1 / (C * len(y)),
                      batch_fraction=1.0 if solver == "saga" else 0.5, gtol=1e-10,
                      max_epochs=400)
    assert 0 < np.count_nonzero(ref) < len(ref)  # a sparse solution, not all-or-nothing
    np.testing.assert_array_equal(res.coef != 0, ref != 0)  # exactly the same support
    assert np.linalg.norm(res.coef - ref) / np.linalg.norm(ref) < 1e-5
    if solver == "asaga":
        assert res.mean_staleness > 1
    data.release()


@pytest.mark.parametrize("solver", ["saga", "asaga"])
def test_multinomial_on_digits_matches_sklearn(client4, solver):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    C = 0.01
    sk = _sk(solver="lbfgs", C=C).fit(X, y)
    data = da.PartitionedData.from_arrays(X, y.astype(float), n_partitions=4, client=client4)
    res = da.minimize(data, solver=solver, loss="multinomial", lam=1 / (C * len(y)),
                      fit_intercept=True, batch_fraction=1.0, gtol=1e-10, max_epochs=400)
    assert res.coef.shape == (10, 64) and res.intercept.shape == (10,)
    assert np.linalg.norm(res.coef - sk.coef_) / np.linalg.norm(sk.coef_) < 1e-5
    np.testing.assert_allclose(res.intercept, sk.intercept_, atol=1e-5)
    assert res.state.history.alpha.shape == (len(y), 10)  # K scalars of history per sample
    data.release()


@pytest.mark.parametrize("solver, inner", [("saga", "sequential"), ("asaga", "sequential")])
def test_least_squares_matches_the_ridge_closed_form(client4, solver, inner):
    rng = np.random.default_rng(8)
    n, d, lam = 3000, 12, 1e-2
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.5 + 0.1 * rng.normal(size=n)
    Xc, yc = X - X.mean(0), y - y.mean()
    w = np.linalg.solve(Xc.T @ Xc / n + lam * np.eye(d), Xc.T @ yc / n)
    b = y.mean() - X.mean(0) @ w
    data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client4)
    res = da.minimize(data, solver=solver, inner=inner, loss="squared", lam=lam,
                      fit_intercept=True, batch_fraction=1.0 if solver == "saga" else 0.5,
                      gtol=1e-10, max_epochs=600)
    assert res.converged, res
    np.testing.assert_allclose(res.coef, w, atol=1e-8)
    assert abs(res.intercept - b) < 1e-8
    data.release()


def test_staleness_aware_asaga_converges(client4):
    """Staleness-aware weights change the run but not where it converges."""
    X, y = load_digits(return_X_y=True)
    data = da.PartitionedData.from_arrays(X / 16.0, y.astype(float), n_partitions=4,
                                          client=client4)
    slow = {"stragglers": da.Intensity(c=4.0), "avg_task_time": 0.004,  # varied staleness
            "batch_fraction": 0.1}
    plain = da.minimize(data, solver="asaga", loss="multinomial", lam=0.05, max_epochs=30,
                        **slow)
    aware = da.minimize(data, solver="asaga", loss="multinomial", lam=0.05, max_epochs=30,
                        staleness_aware=True, **slow)
    assert aware.settings["staleness_aware"] and not plain.settings["staleness_aware"]
    # staler results were weighted less, so the runs differ (most on the way: at the end
    # both are close to the one optimum); both converge as well
    assert max(r.max_staleness for r in plain.history) > 1  # there was staleness to weigh
    early = [(a.objective, p.objective)
             for a, p in zip(aware.history, plain.history, strict=False)
             if a.epoch == p.epoch <= 5]  # records at the same update counts
    assert early and max(abs(a - p) / p for a, p in early) > 1e-4, early
    assert abs(aware.objective - plain.objective) < 1e-6
    data.release()
