"""The norm test on stale partitions' carried gradients (cluster-free): the bound on their
compensation error is calibrated on a quadratic whose partitions are random rows, and an
asynchronous L-BFGS iteration ends on stale estimates only while the bound holds."""

from __future__ import annotations

import numpy as np
import pytest

from daskasync.losses import SquaredLoss
from daskasync.penalties import L2
from daskasync.problem import Problem
from daskasync.solvers.albfgs import ALBFGS, GradientPath, PartitionGradients, _Iteration
from daskasync.solvers.compensation import CompensationError

N, D, P = 2000, 50, 8


def _partitions(rng):
    """Least squares on random rows dealt to 8 partitions: each partition's Hessian (of its
    loss sum) and rows."""
    X = rng.standard_normal((N, D))
    blocks = np.array_split(rng.permutation(N), P)
    return [X[i].T @ X[i] for i in blocks], np.array([len(i) for i in blocks])


def _one_step(rng, H, rows):
    """Measure the ratio on a step every partition closes, then carry partitions 4-7
    (stale) along a second step measured by partitions 0-3: the actual error of the carried
    sum and its bound."""
    s1, s2 = rng.standard_normal(D), rng.standard_normal(D)
    err = CompensationError()
    parts = {p: H[p] @ s1 for p in range(P)}  # path 0 at the start
    err.measure(parts, {p: int(rows[p]) for p in range(P)}, {p: np.zeros(D) for p in parts})
    fresh, stale = range(4), range(4, P)
    shift = sum(H[p] @ s2 for p in fresh) / rows[:4].sum()  # the path's change, estimated
    actual = sum(H[p] @ s2 for p in stale) - rows[4:].sum() * shift
    bound = err.bound([(float((rows[4:] ** 2).sum()), shift)], float(rows[4:].sum()),
                      [(float(rows[p]), shift) for p in fresh])
    return float(np.linalg.norm(actual)), bound, err.ratio


def test_the_bound_is_the_size_of_the_carried_error():
    """Over 20 random problems and steps the carried sum's actual error is its bound to
    within a factor 1.5, and the median within 25%: the bound neither ignores the error
    nor inflates it (either would make the norm test wait never or always)."""
    rng = np.random.default_rng(0)
    quotients = []
    for _ in range(20):
        H, rows = _partitions(rng)
        actual, bound, ratio = _one_step(rng, H, rows)
        assert 0.3 < ratio < 0.7  # about sqrt(d / rows per partition) / 2 for Gaussian rows
        quotients.append(actual / bound)
    assert 0.75 < np.median(quotients) < 1.25
    assert 1 / 1.5 < min(quotients) and max(quotients) < 1.5


def test_no_error_is_measured_where_the_partitions_share_the_hessian():
    H, rows = np.diag([1.0, 4.0]), [10, 20, 30]
    err = CompensationError()
    parts = {p: r * (H @ np.ones(2)) for p, r in enumerate(rows)}
    assert err.measure(parts, dict(enumerate(rows)), {p: np.zeros(2) for p in parts}) == 0.0
    assert err.trusted(np.full(2, 1e-12), [(100.0, np.ones(2))], 60.0,
                       [(10.0, np.ones(2))])
    assert CompensationError().measure({0: np.ones(2)}, {0: 10}, {0: np.zeros(2)}) is None


@pytest.mark.parametrize("short", [True, False])
def test_an_iteration_ends_on_stale_partitions_only_while_the_bound_holds(short):
    """Partitions 4-7 stale at version 1, carried to version 2 by partitions 0-3. The
    carried error grows with the step, the gradient with the distance left: after a short
    step the error is small beside the gradient and the iteration may end; after a step
    that lands near the solution (as a good quasi-Newton step does) it is not, and the
    iteration must wait (and may end once they are fresh)."""
    rng = np.random.default_rng(3)
    H, rows = _partitions(rng)
    b = rng.standard_normal(D) * 1e-3
    optimum = np.linalg.solve(sum(H), b * N)
    x1 = optimum + rng.standard_normal(D)
    x2 = optimum + (x1 - optimum) * (0.9 if short else 0.01)
    g = [lambda x, p=p: H[p] @ x - rows[p] * b for p in range(P)]
    problem = Problem(SquaredLoss(), L2(0.0), False, n=N, d=D)
    solver = ALBFGS(problem)
    solver._rows, solver._error = rows, CompensationError()
    ctx = type("Ctx", (), {"problem": problem})()
    table, path = PartitionGradients(P, (D,)), GradientPath((D,))
    path.set(0, np.zeros(D))
    x0 = np.zeros(D)
    for p in range(P):
        table.store(p, 0, 0.0, g[p](x0))
    it1 = _Iteration(1, x1, 0)
    for p in range(P):
        before = table.store(p, 1, 0.0, g[p](x1))[1]
        it1.path_parts[p], it1.origins[p] = g[p](x1) - before, path.at(0)
        it1.path_rows += int(rows[p])
    solver._error.measure(it1.path_parts, dict(enumerate(rows.tolist())), it1.origins)
    path.set(1, it1.path())
    it2 = _Iteration(2, x2, 1)
    for p in range(4):
        before = table.store(p, 2, 0.0, g[p](x2))[1]
        it2.path_parts[p] = int(rows[p]) * path.at(1) + g[p](x2) - before
        it2.origins[p] = path.at(1)
        it2.path_rows += int(rows[p])
    assert solver._trusted(ctx, table, path, it2) is short
    for p in range(4, P):
        table.store(p, 2, 0.0, g[p](x2))
    assert solver._trusted(ctx, table, path, it2)  # nothing carried: nothing to wait for
