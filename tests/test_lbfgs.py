"""The L-BFGS solvers: their pieces without a cluster (curvature memory, the partitions'
table, the gradient path, the straggler rule, the look-back test), and whole runs on real
clusters: defaults reaching 1e-8 and scikit-learn's coefficients on LIBSVM data, multinomial,
stragglers left behind and every result stored once."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

import daskasync as da
from daskasync.losses import SquaredLoss
from daskasync.penalties import L2
from daskasync.problem import Problem
from daskasync.solvers.albfgs import (
    ALBFGS,
    GradientPath,
    PartitionGradients,
    _Iteration,
    _Move,
    retreat,
    stragglers,
)
from daskasync.solvers.lbfgs_common import CurvatureMemory, LbfgsOptions, armijo
from daskasync.solvers.preconditioners import (
    DiagonalInverse,
    StandardizedInverse,
    from_column_sums,
)
from daskasync.tasks import column_sums_kernel


# --------------------------------------------------------------------------- cluster-free
def test_two_loop_recursion_inverts_a_quadratic_with_exact_pairs():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    A = A @ A.T + 6 * np.eye(6)
    mem = CurvatureMemory(6)
    x = np.zeros(6)
    for _ in range(6):  # BFGS with exact line searches on a quadratic: conjugate steps
        g = A @ x - 1.0
        d = mem.direction(g)
        a = -float(g @ d) / float(d @ A @ d)
        mem.push(a * d, A @ (a * d))
        x = x + a * d
    np.testing.assert_allclose(x, np.linalg.solve(A, np.ones(6)), atol=1e-8)
    assert not mem.push(np.ones(6), -np.ones(6))  # negative curvature is refused
    assert len(mem) == 6


def _two_loop(pairs, g, scale):
    """The two-loop recursion as Nocedal and Wright write it (Algorithm 7.4), in numpy."""
    q, alphas = g.copy(), []
    for s, y in reversed(pairs):
        alphas.append((s @ q) / (s @ y))
        q = q - alphas[-1] * y
    s, y = pairs[-1]
    r = (s @ y) / (y @ (scale * y)) * scale * q
    for (s, y), a in zip(pairs, reversed(alphas), strict=True):
        r = r + (a - (y @ r) / (s @ y)) * s
    return -r


@pytest.mark.parametrize("shape", [(40,), (3, 14)])
def test_the_scaled_two_loop_is_lbfgs_on_rescaled_variables(shape):
    """With ``scale = P`` the direction equals the textbook recursion with ``H0 = gamma P``,
    and equals plain L-BFGS run on ``u = P^(-1/2) theta`` (pairs ``P^(-1/2) s``,
    ``P^(1/2) y``, gradient ``P^(1/2) g``), mapped back; for a (K, d) model too."""
    rng = np.random.default_rng(1)
    P = np.exp(rng.normal(scale=3.0, size=shape))  # scales over many orders of magnitude
    pairs = []
    for _ in range(5):
        s = rng.normal(size=shape)
        pairs.append((s, s / P + 0.1 * rng.normal(size=shape) * np.abs(s)))
    g = rng.normal(size=shape)
    scaled, plain = CurvatureMemory(4, DiagonalInverse(P)), CurvatureMemory(4)
    for s, y in pairs:
        assert scaled.push(s, y) and plain.push(s / np.sqrt(P), y * np.sqrt(P))
    d = scaled.direction(g)
    assert d.shape == shape
    flat = [(s.ravel(), y.ravel()) for s, y in pairs[1:]]
    np.testing.assert_allclose(d.ravel(), _two_loop(flat, g.ravel(), P.ravel()), rtol=1e-10)
    np.testing.assert_allclose(d, np.sqrt(P) * plain.direction(np.sqrt(P) * g), rtol=1e-10)
    np.testing.assert_allclose(CurvatureMemory(4, DiagonalInverse(P)).direction(g), -P * g)
    with pytest.raises(ValueError, match="precondition"):
        LbfgsOptions(precondition="diagonal")


def test_the_hessian_diagonal_bound_per_feature_loss_and_intercept():
    X = np.array([[3.0, 0.0, 1.0], [1.0, 0.0, -2.0]])
    sums = column_sums_kernel((X, np.zeros(2)))
    assert sums.tolist() == [[4.0, 0.0, -1.0], [10.0, 0.0, 5.0]]
    import scipy.sparse as sp
    for block in (sp.csr_matrix(X), sp.csc_matrix(X.astype(np.float32))):
        out = column_sums_kernel((block, np.zeros(2)))
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, sums)
    assert column_sums_kernel((X.astype(np.float32), np.zeros(2))).dtype == np.float64
    prob = Problem(SquaredLoss(), L2(0.5), True, n=2, d=3)
    assert prob.hessian_diagonal_bound(sums[1] / 2).tolist() == [5.5, 0.5, 3.0, 1.0]
    multi = Problem(da.losses.MultinomialLoss(), L2(0.0), False, n=2, d=3, n_outputs=2)
    D = multi.hessian_diagonal_bound(sums[1] / 2)  # curvature 1/2; the zero column made 1.25
    np.testing.assert_array_equal(D, [[2.5, 1.25, 1.25]] * 2)


def _model_hessian(mean, var, lam, c, intercept):
    """``c E[x x'] + lambda I`` (no penalty on the intercept) with ``E[x x'] = diag(var) +
    mean mean'`` and ``x`` followed by a 1 with an intercept, as a dense matrix."""
    d = len(mean)
    xx = np.diag(var) + np.outer(mean, mean)
    if intercept:
        xx = np.block([[xx, mean[:, None]], [mean[None, :], np.ones((1, 1))]])
    H = c * xx
    H[np.arange(d), np.arange(d)] += lam
    return H


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("K", [1, 3])
def test_the_standardized_preconditioner_inverts_its_model_hessian(intercept, K):
    """``H0`` is the exact inverse of ``c (diag(v) + m m') + lambda I`` (bordered by the
    intercept's row and column), per class, from the columns' sums; and it is what
    ``"jacobi"`` is when the means are 0."""
    rng = np.random.default_rng(4)
    n, d = 50, 6
    X = rng.normal(size=(n, d)) * 10.0 ** rng.uniform(-2, 2, d) + rng.normal(size=d) * 5
    X[:, 2] = 0.0  # a column of zeros: its entry is lambda
    lam = 0.1
    prob = Problem(da.losses.MultinomialLoss() if K > 1 else da.losses.LogisticLoss(),
                   L2(lam), intercept, n=n, d=d, n_outputs=K if K > 1 else 1)
    h0 = from_column_sums("standardize", prob, column_sums_kernel((X, None)))
    mean, var = X.mean(axis=0), X.var(axis=0)
    c = prob.loss.curvature
    H = _model_hessian(mean, var, lam, c, intercept)
    q = rng.normal(size=prob.shape)
    want = np.linalg.solve(H, q.reshape(-1, H.shape[0]).T).T.reshape(prob.shape)
    np.testing.assert_allclose(h0.apply(q), want, rtol=1e-9)
    Xc = X - mean  # means 0: the same as the diagonal of c E[x x'] + lambda I
    jac = from_column_sums("jacobi", prob, column_sums_kernel((Xc, None)))
    std = from_column_sums("standardize", prob, column_sums_kernel((Xc, None)))
    if not intercept:
        np.testing.assert_allclose(std.apply(q), jac.apply(q), rtol=1e-9)
    assert isinstance(jac, DiagonalInverse) and isinstance(std, StandardizedInverse)
    assert from_column_sums("none", prob, column_sums_kernel((X, None))) is None


@pytest.mark.parametrize("seed", range(5))
def test_the_aggregate_is_the_sum_of_the_latest_results_after_any_interleaving(seed):
    rng = np.random.default_rng(seed)
    P, table = 5, PartitionGradients(5, (3,))
    latest: dict[int, tuple[int, np.ndarray, float]] = {}
    version = np.full(P, -1)
    for _ in range(200):
        p = int(rng.integers(P))
        version[p] += int(rng.integers(1, 4))
        g, f = rng.normal(size=3), float(rng.normal())
        table.store(p, int(version[p]), f, g, seconds=float(rng.random()))
        latest[p] = (int(version[p]), g, f)
    np.testing.assert_allclose(table.gradient(), sum(g for _, g, _ in latest.values()))
    assert table.loss() == pytest.approx(sum(f for _, _, f in latest.values()))
    with pytest.raises(ValueError, match="stored once, in order"):
        table.store(0, int(version[0]), 0.0, np.zeros(3))  # the same result again
    with pytest.raises(ValueError, match="stored once, in order"):
        table.store(0, int(version[0]) - 1, 0.0, np.zeros(3))  # an older one


def test_a_straggler_needs_two_slow_tasks_and_more_than_noise():
    table = PartitionGradients(4, (1,))
    for v in range(3):
        for p in range(4):
            table.store(p, v, 0.0, np.zeros(1), seconds=1.0 if p or v else 5.0)
    assert stragglers(table.times, 1.5) == set()  # one slow task of three: not yet
    for p in range(4):
        table.store(p, 3, 0.0, np.zeros(1), seconds=5.0 if p == 0 else 1.0)
        table.store(p, 4, 0.0, np.zeros(1), seconds=5.0 if p == 0 else 1.0)
    assert stragglers(table.times, 1.5) == {0}
    assert stragglers(np.array([0.001, 0.001, 0.03]), 1.5) == set()  # below the noise


def test_the_path_carries_a_gradient_along_a_quadratic_exactly():
    """For a quadratic whose partitions share the Hessian per row, a stale gradient moved
    along the measured path is the gradient at the current iterate."""
    rng = np.random.default_rng(1)
    H = np.diag([1.0, 3.0])
    xs = [rng.normal(size=2) for _ in range(4)]
    path = GradientPath((2,))
    path.start(0)
    for v in range(1, 4):
        path.extend(v, v - 1, H @ (xs[v] - xs[v - 1]))  # change per row
    rows = 7
    g_old = rows * (H @ xs[1])  # a partition's gradient sum at version 1
    carried = g_old + rows * path.shift(1, 3)
    np.testing.assert_allclose(carried, rows * (H @ xs[3]))


def test_the_look_back_rejects_a_rise_and_keeps_a_descent():
    """Two partitions of a quadratic, one stale: the test's estimate of the stale part is
    exact (trapezoid rule), so it judges the full objective."""
    n_rows = np.array([3, 5])
    problem = Problem(SquaredLoss(), L2(0.0), False, n=8, d=2)
    A = np.diag([2.0, 1.0])  # per-row Hessian

    def f_p(p, x):  # loss sum of partition p: rows * 0.5 x'Ax - rows * b'x
        return n_rows[p] * (0.5 * x @ A @ x - np.array([1.0, 1.0]) @ x)

    def g_p(p, x):
        return n_rows[p] * (A @ x - 1.0)

    x_ref = np.array([0.0, 0.0])
    solver = ALBFGS(problem)
    solver._rows = n_rows

    class Ctx:
        pass

    ctx = Ctx()
    ctx.problem = problem
    ctx.engine = type("E", (), {"n_partitions": 2})()
    for d, expected in ((np.array([0.4, 0.9]), True), (np.array([3.0, 4.0]), False)):
        table, path = PartitionGradients(2, (2,)), GradientPath((2,))
        path.start(0)
        for p in (0, 1):
            table.store(p, 0, f_p(p, x_ref), g_p(p, x_ref))
        x = x_ref + d
        path.extend(1, 0, A @ d)
        table.store(0, 1, f_p(0, x), g_p(0, x))  # partition 0 fresh, partition 1 stale
        it = _Iteration(1, x, 0)
        it.fresh = {0}
        grad = (table.gradient() / 8.0)
        move = _Move(x_ref, 0, d, 1.0, float(grad @ d))
        assert solver._look_back(ctx, table, path, it, move) is expected
    assert armijo(1.0, 1.0 + 1e-17, 1.0, -1e-30)  # at the rounding floor


@pytest.mark.parametrize("exact", [False, True])
def test_a_rejected_half_of_a_move_from_stale_gradients_goes_back_and_waits(exact):
    """A rising move is halved; if it came from stale partitions' estimates and its half
    rises too, the run goes back to where the move started and the next iteration waits
    for every partition. A move from exact gradients is halved on (a line search)."""
    rows = np.array([3, 5])
    problem = Problem(SquaredLoss(), L2(0.0), False, n=8, d=2)
    A = np.diag([2.0, 1.0])
    f_p = lambda p, x: rows[p] * (0.5 * x @ A @ x - x.sum())  # noqa: E731
    g_p = lambda p, x: rows[p] * (A @ x - 1.0)  # noqa: E731
    solver = ALBFGS(problem)
    solver._rows, solver._verify = rows, False
    ctx = type("Ctx", (), {"problem": problem,
                           "engine": type("E", (), {"n_partitions": 2})()})()
    table, path, memory = PartitionGradients(2, (2,)), GradientPath((2,)), CurvatureMemory(5)
    x_ref, d = np.zeros(2), np.array([3.0, 4.0])  # f(a d) = rows (17 a^2 - 7 a): a rise
    # above f(0) for a > 7/17, so both a = 1 and a = 1/2 are rejected
    path.start(0)
    for p in (0, 1):
        table.store(p, 0, f_p(p, x_ref), g_p(p, x_ref))
    move = _Move(x_ref, 0, d, 1.0, float(table.gradient() @ d) / 8, exact)
    for version in (1, 2):
        x = x_ref + move.a * d
        it = _Iteration(version, x, 0)
        before = table.store(0, version, f_p(0, x), g_p(0, x))[1]  # partition 1 stays stale
        it.fresh, it.fresh_rows, it.path_rows = {0}, 3, 3
        it.path_parts[0] = g_p(0, x) - before + 3 * path.at(version - 1)
        move, x_next = solver._advance(ctx, table, path, memory, it, move)
        path.iterate(version, x)
    assert solver.state.retreats == 2 and solver.state.abandoned == (not exact)
    if exact:
        assert move.a == 0.25 and not solver._verify
    else:
        assert move.a == 0.0 and solver._verify
        np.testing.assert_array_equal(x_next, x_ref)
        solver._judge(ctx, table, path, _Iteration(3, x_next, 0))
        assert solver._verify  # the next iteration waits for every partition
    assert retreat(move)[0].a == (0.125 if exact else 0.0)


# --------------------------------------------------------------------------- clusters
def _reference(X, y):
    """scikit-learn's Newton solve: its coefficients to machine precision (its lbfgs stops
    short of 1e-5 on a9a at lambda = 1/n)."""
    clf = LogisticRegression(C=1.0, tol=1e-14, max_iter=1000, fit_intercept=False,
                             solver="newton-cholesky")
    clf.fit(X, y)
    w = clf.coef_.ravel()
    f = float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 / len(y) * w @ w)
    return w, f


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a9a.xz", "w8a.xz"])
@pytest.mark.parametrize("solver", ["auto", "lbfgs"])
def test_defaults_reach_1e_8_and_sklearns_coefficients(client4, name, solver):
    X, y = da.load_libsvm(shared_data(name))
    w_ref, f_ref = _reference(X, y)
    data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client4)
    res = da.minimize(data, solver=solver, max_epochs=1500, gtol=1e-9)  # lam = 1/n
    assert res.solver == ("albfgs" if solver == "auto" else "lbfgs")
    assert (res.objective - f_ref) / f_ref < 1e-8
    assert np.linalg.norm(res.coef - w_ref) / np.linalg.norm(w_ref) < 1e-5
    data.release()


@pytest.mark.parametrize("solver", ["lbfgs", "albfgs"])
def test_preconditioned_iterates_do_not_depend_on_the_features_units(client, solver):
    """Without a penalty (whose norm is not scale-free), fitting ``X diag(D)`` gives
    ``coef / D`` of fitting ``X`` at every iterate with ``"jacobi"`` and ``"standardize"``;
    with ``"standardize"`` and an intercept, so does fitting ``X diag(D) + t`` (the
    intercept absorbs ``t``). The plain initial scaling is thrown off by the scales."""
    X, y = da.make_epsilon_like(n=4000, d=12, seed=3, noise=0.5)
    rng = np.random.default_rng(0)
    D, t = 10.0 ** rng.uniform(-2, 2, size=12), rng.normal(size=12) * 100
    # albfgs's iterates depend on timing once a task is late (it is then left behind): on a
    # loaded machine one can be, so here no task ever is, and albfgs waits for every result
    never_late = {"patience": 1e6} if solver == "albfgs" else {}
    fits = {}
    for pre in ("jacobi", "standardize", "none"):
        for name, Z in (("X", X), ("XD", X * D), ("XDt", X * D + t)):
            if name == "XDt" and pre != "standardize":
                continue
            data = da.PartitionedData.from_arrays(Z, y, n_partitions=4, client=client)
            fits[pre, name] = da.minimize(data, solver=solver, penalty="none",
                                          max_updates=8, fit_intercept=pre == "standardize",
                                          solver_options={"precondition": pre, **never_late})
            data.release()
    for pre in ("jacobi", "standardize"):
        base, scaled = fits[pre, "X"], fits[pre, "XD"]
        np.testing.assert_allclose(scaled.coef * D, base.coef, rtol=1e-6)
        assert scaled.objective == pytest.approx(base.objective, rel=1e-12)
    shifted, base = fits["standardize", "XDt"], fits["standardize", "X"]
    np.testing.assert_allclose(shifted.coef * D, base.coef, rtol=1e-6)
    np.testing.assert_allclose(shifted.intercept + shifted.coef @ t, base.intercept,
                               rtol=1e-6, atol=1e-9)
    assert shifted.objective == pytest.approx(base.objective, rel=1e-10)
    assert fits["none", "XD"].objective - fits["jacobi", "XD"].objective > 1e-3


@pytest.mark.parametrize("solver", ["albfgs", "lbfgs"])
def test_multinomial_digits_match_sklearn_with_defaults(client, solver):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    sk = LogisticRegression(C=1.0, tol=1e-12, max_iter=100_000).fit(X, y)
    clf = da.LogisticRegression(solver=solver, max_iter=500, tol=1e-12, random_state=0,
                                client=client).fit(X, y)
    assert np.linalg.norm(clf.coef_ - sk.coef_) / np.linalg.norm(sk.coef_) < 1e-4
    assert np.mean(clf.predict(X) == sk.predict(X)) == 1.0


def test_albfgs_leaves_a_straggler_behind_and_stores_each_result_once(client):
    X, y = da.make_epsilon_like(n=20_000, d=60, seed=2, decay=0.5)
    data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client)
    slow = da.Intensity(c=30.0, partitions=(0,))  # partition 0 takes ~31 task times
    res = da.minimize(data, solver="albfgs", max_epochs=300, stragglers=slow,
                      avg_task_time=0.01, gtol=1e-9)
    w_ref, f_ref = _reference(X, y)
    state = res.settings["solver_state"]
    assert state["fresh_sum"] / (state["steps"] + state["retreats"]) < 0.95  # left behind
    assert res.partition_stats[0]["tasks"] < res.partition_stats[1]["tasks"]
    assert res.mean_staleness > 0
    assert (res.objective - f_ref) / f_ref < 1e-8  # the compensated aggregate converges
    data.release()


def test_partitions_not_heard_from_are_estimated_then_replaced_once():
    rows = np.array([10, 10, 20, 40])
    table = PartitionGradients(4, (2,))
    table.store(0, 0, 1.0, np.array([1.0, 2.0]), 0.1)
    table.store(1, 0, 3.0, np.array([3.0, 0.0]), 0.1)
    table.estimate([2, 3], 0, rows)  # 20 known rows: partition 2 counts double, 3 fourfold
    assert table.complete() and table.estimated.tolist() == [False, False, True, True]
    np.testing.assert_allclose(table.gradient(), np.array([4.0, 2.0]) * (1 + 1 + 2 + 4) / 2)
    assert table.loss() == 4.0 * 8 / 2 and table.loss_at(2, 0) is None
    before = table.store(2, 0, 5.0, np.array([1.0, 1.0]), 2.0)  # its own result, same version
    assert before[0] == -1 and not table.estimated[2]  # an estimate measured no path
    with pytest.raises(ValueError, match="stored once"):
        table.store(2, 0, 5.0, np.array([1.0, 1.0]), 2.0)
    with pytest.raises(ValueError, match="stored once"):
        table.store(0, 0, 1.0, np.array([1.0, 2.0]))
