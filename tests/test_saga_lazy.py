"""The lazy (just-in-time) sparse SAGA kernel equals the eager reference to rounding.

No cluster: the kernels are called directly on random CSR blocks.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from daskasync.kernels_saga import _EMPTY_2D, _saga_sequential, saga_sequential_kernel
from daskasync.kernels_saga_lazy import (
    RESCALE,
    _first_nonpositive,
    _lagged_l1,
    saga_sequential_lazy,
)

LOSSES = {"logistic": (0, 1), "squared": (1, 1), "multinomial3": (2, 3), "multinomial10": (2, 10)}
PENALTIES = ("none", "l2", "l1", "elasticnet")
# (seed, rows in the block, d, density, sampled rows B)
SHAPES = [(0, 400, 5, 0.2, 300), (1, 3000, 500, 0.01, 2000), (2, 300, 50_000, 0.001, 200),
          (3, 50, 20, 0.2, 1), (4, 600, 2_000, 0.05, 500)]


def _block(seed, m, d, density, loss_code, K, empty=0.1):
    """Random CSR block (some rows empty, features shared) and targets."""
    rng = np.random.default_rng(seed)
    X = sp.random(m, d, density=density, format="csr", random_state=rng)
    X.data = rng.standard_normal(X.nnz)
    X = (sp.diags((rng.random(m) >= empty).astype(float)) @ X).tocsr()
    X.eliminate_zeros()
    if loss_code == 0:
        y = rng.choice([-1.0, 1.0], m)
    elif loss_code == 1:
        y = rng.standard_normal(m)
    else:
        y = rng.integers(0, K, m).astype(float)
    return X, y


def _problem(seed, X, K, B, fit_intercept, penalty, *, rescale=False):
    """Sampled rows, order, starting W (near zero, some exact zeros), non-zero M, old, step
    and penalty strengths (|M| both below and above lam1)."""
    rng = np.random.default_rng(seed + 1000)
    m, d = X.shape
    rows = np.sort(rng.choice(m, B, replace=False))
    order = rng.permutation(B)
    norms = np.asarray(X.multiply(X).sum(axis=1)).ravel()
    step = 0.5 / (max(1.0, norms.max()) + fit_intercept)
    W0 = rng.standard_normal((K, d + fit_intercept)) * step
    W0[rng.random(W0.shape) < 0.2] = 0.0
    M0 = rng.standard_normal((K, d + fit_intercept)) * 0.1
    old = rng.standard_normal((B, K)) * 0.3
    lam2 = {"none": 0.0, "l2": 0.01, "l1": 0.0, "elasticnet": 0.01}[penalty] / step
    lam1 = {"none": 0.0, "l2": 0.0, "l1": 0.05, "elasticnet": 0.05}[penalty]
    if rescale:
        lam2 = 0.2 / step
    return rows, order, W0, M0, old, step, lam2, lam1


def _both(X, y, rows, order, W0, M0, old, step, lam2, lam1, loss_code, fit_intercept):
    """``(W, M, S, new)`` of the reference and of the lazy kernel, and the lazy op count."""
    d = X.shape[1]
    inv_n = 1.0 / X.shape[0]
    out = []
    ops = np.zeros(1, dtype=np.int64)
    for lazy in (False, True):
        W, M, S = W0.copy(), M0.copy(), np.zeros_like(W0)
        args = (y, rows, order, W, M, S, old, step, lam2, lam1, inv_n, loss_code,
                fit_intercept, d)
        if lazy:
            new = saga_sequential_lazy(X.data, X.indices, X.indptr, *args, ops=ops)
        else:
            new = _saga_sequential(False, _EMPTY_2D, X.data, X.indices, X.indptr, *args)
        out.append((W, M, S, new))
    return out[0], out[1], int(ops[0])


def _assert_equal_to_rounding(ref, lazy):
    for name, a, b in zip("WMS", ref[:3], lazy[:3], strict=True):
        scale = max(1.0, np.abs(a).max())
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12 * scale, err_msg=name)
    np.testing.assert_allclose(lazy[3], ref[3], rtol=1e-9, atol=1e-12, err_msg="new")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"d{s[2]}-B{s[4]}")
@pytest.mark.parametrize("fit_intercept", [False, True], ids=["noint", "int"])
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("loss", LOSSES)
def test_lazy_equals_reference(loss, penalty, fit_intercept, shape):
    seed, m, d, density, B = shape
    loss_code, K = LOSSES[loss]
    if K == 10 and d == 50_000:
        B = 50  # the reference is O(B K d)
    X, y = _block(seed, m, d, density, loss_code, K)
    prob = _problem(seed, X, K, B, fit_intercept, penalty)
    ref, lazy, _ = _both(X, y, *prob, loss_code, fit_intercept)
    _assert_equal_to_rounding(ref, lazy)


@pytest.mark.parametrize("penalty", ["l2", "elasticnet"])
@pytest.mark.parametrize("loss", ["logistic", "multinomial3"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_long_tasks_reset_the_scale(seed, loss, penalty):
    loss_code, K = LOSSES[loss]
    X, y = _block(seed, 3000, 300, 0.02, loss_code, K)
    B = 2000
    rows, order, W0, M0, old, step, lam2, lam1 = _problem(seed, X, K, B, True, penalty,
                                                          rescale=True)
    lam1 = lam1 * 0.2 if lam1 else 0.0
    ref, lazy, ops = _both(X, y, rows, order, W0, M0, old, step, lam2, lam1, loss_code, True)
    _assert_equal_to_rounding(ref, lazy)
    # the scale fell below RESCALE many times: each reset flushes every coordinate
    resets = B // int(np.ceil(np.log(RESCALE) / np.log(1.0 - step * lam2)))
    assert resets >= 10
    assert ops >= 2 * K * X.shape[1] * (1 + resets)


def _stepwise(w0, m, a, step, lam1, n):
    """Model-space trajectory of a coordinate over ``n`` untouched steps: the final value,
    the amount the prox removed, and whether it landed on zero / jumped across zero."""
    w, removed, landed, jumped = w0, 0.0, False, False
    thr = step * lam1
    for _ in range(n):
        pre = a * w - step * m
        new = pre - thr if pre > thr else (pre + thr if pre < -thr else 0.0)
        landed |= new == 0.0 and w != 0.0
        jumped |= new * w < 0.0
        removed += pre - new
        w = new
    return w, removed, landed, jumped


@pytest.mark.parametrize("a", [1.0, 0.97])
def test_lagged_l1_reproduces_every_regime(a):
    rng = np.random.default_rng(7)
    step, lam1, B = 0.3, 0.5, 60
    scale = 2.0 * a ** np.arange(B + 1)  # c before step t (not 1 at t = 0: after a reset)
    cum = np.concatenate([[0.0], np.cumsum(step / scale[1:])])
    seen = {"landed": 0, "jumped": 0, "stuck": 0, "big_m": 0}
    for _ in range(3000):
        t0, t1 = np.sort(rng.choice(B + 1, 2, replace=False))
        m = rng.choice([rng.uniform(-4, 4) * lam1, lam1, -lam1, 0.0])
        v0 = rng.choice([0.0, rng.normal() * step * lam1 * (t1 - t0) / scale[t0]])
        w, removed, landed, jumped = _stepwise(scale[t0] * v0, m, a, step, lam1, t1 - t0)
        v, rem = _lagged_l1(v0, m, t0, t1, cum, scale, step, lam1)
        tol = 1e-12 * max(1.0, abs(scale[t0] * v0), step * (abs(m) + lam1) * (t1 - t0))
        assert abs(scale[t1] * v - w) <= tol
        assert abs(rem - removed) <= tol
        seen["landed"] += landed
        seen["jumped"] += jumped
        seen["stuck"] += landed and w == 0.0 and abs(m) <= lam1
        seen["big_m"] += abs(m) > lam1 and (landed or jumped)
    assert min(seen.values()) >= 50, seen


def test_crossing_search_matches_a_scan():
    """The interpolation + Newton guess is checked and falls back to bisection: irregular
    steps (ratios up to 1e6 between neighbours) still give the first crossing."""
    rng = np.random.default_rng(11)
    for _ in range(5000):
        B = int(rng.integers(1, 300))
        g = rng.exponential(size=B) * 10.0 ** rng.uniform(-3, 3, size=B)
        if rng.random() < 0.3:
            g = np.sort(g)  # increasing, like step / c under L2
        cum = np.concatenate([[0.0], np.cumsum(g)])
        t0, t1 = np.sort(rng.choice(B + 1, 2, replace=False))
        alpha = 10.0 ** rng.uniform(-2, 2)
        v = alpha * (cum[t1] - cum[t0]) * rng.uniform(0.0, 1.0)
        expect = next(q for q in range(t0 + 1, t1 + 1) if v - alpha * (cum[q] - cum[t0]) <= 0)
        assert _first_nonpositive(v, alpha, t0, t1, cum) == expect


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_crossings_with_large_alpha_bar(seed, penalty):
    """|M_j| well above lam1, weights near zero: the drift carries rarely touched
    coordinates to zero and across it between their touches."""
    X, y = _block(seed, 2000, 5_000, 0.002, 0, 1)
    rows, order, W0, M0, old, step, lam2, lam1 = _problem(seed, X, 1, 1500, True, penalty)
    M0 *= 5.0
    W0 *= 20.0
    ref, lazy, _ = _both(X, y, rows, order, W0, M0, old, step, lam2, lam1, 0, True)
    _assert_equal_to_rounding(ref, lazy)
    crossed = np.sign(ref[0][0, :-1]) * np.sign(W0[0, :-1]) < 0
    assert crossed.sum() > 100


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("loss", ["logistic", "multinomial3"])
def test_float32_data_and_int64_indices(loss, penalty):
    loss_code, K = LOSSES[loss]
    X, y = _block(5, 1000, 3_000, 0.01, loss_code, K)
    X32 = X.astype(np.float32)
    X64 = X32.astype(np.float64)
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    prob = _problem(5, X64, K, 800, True, penalty)
    _, lazy32, _ = _both(X32, y, *prob, loss_code, True)
    ref64, lazy64, _ = _both(X64, y, *prob, loss_code, True)
    for a, b in zip(lazy32, lazy64, strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_equal_to_rounding(ref64, lazy64)


def test_repeated_column_indices():
    """A non-canonical CSR row may repeat an index: one drift and one prox per coordinate."""
    X, y = _block(6, 500, 40, 0.1, 0, 1, empty=0.0)
    X.indices[1::7] = X.indices[0::7][: len(X.indices[1::7])]  # duplicates within rows
    X.indices[X.indptr[1:][np.diff(X.indptr) > 0] - 1] = 3
    assert not X.has_canonical_format
    for penalty in PENALTIES:
        prob = _problem(6, X, 1, 400, True, penalty)
        ref, lazy, _ = _both(X, y, *prob, 0, True)
        _assert_equal_to_rounding(ref, lazy)


@pytest.mark.parametrize("penalty", ["none", "elasticnet"])
def test_cost_is_nnz_plus_d(penalty):
    """Coordinate updates counted (not timed): O(nnz + d) per task, not O(B d)."""
    d, B, per_row = 2_000_000, 100, 50
    rng = np.random.default_rng(0)
    indices = np.concatenate([np.sort(rng.choice(d, per_row, replace=False)) for _ in range(B)])
    X = sp.csr_matrix((rng.standard_normal(B * per_row), indices, np.arange(B + 1) * per_row),
                      shape=(B, d))
    y = rng.choice([-1.0, 1.0], B)
    W, M, S = np.zeros((1, d + 1)), rng.standard_normal((1, d + 1)) * 1e-3, np.zeros((1, d + 1))
    ops = np.zeros(1, dtype=np.int64)
    lam2, lam1 = (0.0, 0.0) if penalty == "none" else (1e-4, 1e-3)
    saga_sequential_lazy(X.data, X.indices, X.indptr, y, np.arange(B), rng.permutation(B),
                         W, M, S, np.zeros((B, 1)), 0.01, lam2, lam1, 1.0 / B, 0, True, d,
                         ops=ops)
    assert ops[0] <= 2 * X.nnz + 2 * d
    assert ops[0] < B * d / 40


def test_wrapper_switch_and_fallback():
    X, y = _block(8, 400, 300, 0.05, 0, 1)
    n = X.shape[0]
    kw = dict(loss_code=0, fraction=0.5, fit_intercept=True, n=n, partition=1, task_index=2,
              seed=3, lam1=0.01)
    rng = np.random.default_rng(9)
    theta = rng.standard_normal(301) * 0.1
    mean = rng.standard_normal(301) * 0.1
    B = int(round(0.5 * n))
    old = rng.standard_normal(B) * 0.1
    for lam2, step in [(0.5, 0.1), (20.0, 0.1)]:  # the second has step * lam2 >= 1
        a = saga_sequential_kernel((X, y), theta, old=old, mean=mean, step=step, lam2=lam2, **kw)
        b = saga_sequential_kernel((X, y), theta, old=old, mean=mean, step=step, lam2=lam2,
                                   lazy=False, **kw)
        assert a[3] == b[3] == B
        for u, v in zip(a[:3] + a[4:], b[:3] + b[4:], strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12 * max(1.0, np.abs(v).max()))
    with pytest.raises(ValueError, match="step \\* lam2 < 1"):
        saga_sequential_lazy(X.data, X.indices, X.indptr, y, np.arange(2), np.arange(2),
                             np.zeros((1, 301)), np.zeros((1, 301)), np.zeros((1, 301)),
                             np.zeros((2, 1)), 1.0, 1.0, 0.0, 1.0 / n, 0, True, 300)
