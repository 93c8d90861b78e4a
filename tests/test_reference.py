"""The reference f* solver agrees with scikit-learn's tight solutions."""

from __future__ import annotations

import warnings

import numpy as np
from conftest import shared_data
from sklearn.linear_model import LogisticRegression

import daskasync as da
from daskasync.penalties import L2
from daskasync.reference import objective, reference_solution


def test_reference_matches_sklearn_saga_on_a9a():
    X, y = da.load_libsvm(shared_data("a9a.xz"))
    n = X.shape[0]
    theta, f_star = reference_solution(X, y, "logistic", L2(1.0 / n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = LogisticRegression(solver="saga", C=1.0, fit_intercept=False, tol=1e-10,
                                max_iter=5000).fit(X, y)
    w = sk.coef_.ravel()
    assert np.linalg.norm(w - theta) / np.linalg.norm(theta) < 1e-7
    assert f_star <= objective(X, y, w, "logistic", L2(1.0 / n)) + 1e-13


def test_reference_with_intercept_and_squared_loss():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6))
    y = X @ rng.normal(size=6) + 2.0
    lam = 0.1
    theta, f = reference_solution(X, y, "squared", L2(lam), fit_intercept=True)
    Xc, yc = X - X.mean(0), y - y.mean()
    w = np.linalg.solve(Xc.T @ Xc / 500 + lam * np.eye(6), Xc.T @ yc / 500)
    np.testing.assert_allclose(theta[:6], w, atol=1e-9)
    assert abs(theta[6] - (y.mean() - X.mean(0) @ w)) < 1e-9
