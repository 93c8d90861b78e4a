"""The single-output, no-L1 pass (kernels_saga_fast) equals the general just-in-time pass
and its compact result, to rounding: logistic and least squares, with and without
intercept and L2, tasks with resets, float32 values, sampled rows in a random order."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from daskasync.kernels_saga_fast import fast_applies, saga_fast
from daskasync.kernels_saga_lazy import (
    expand_saga_result,
    saga_sequential_lazy,
    saga_sequential_sparse,
)


def _task(seed, d=300, m=400, density=0.05, B=None, float32=False):
    rng = np.random.default_rng(seed)
    X = sp.random(m, d, density=density, format="csr", random_state=seed)
    X.data = rng.normal(size=X.nnz)
    if float32:
        X = X.astype(np.float32)
    y = rng.choice([-1.0, 1.0], size=m)
    B = m if B is None else B
    rows = np.sort(rng.choice(m, size=B, replace=False))
    order = rng.permutation(B)
    return X, y, rows, order, rng


CASES = [(loss, lam2, icpt, steps)
         for loss in (0, 1) for lam2 in (0.0, 1e-3) for icpt in (False, True)
         for steps in ("plain", "resets")]


@pytest.mark.parametrize("loss, lam2, intercept, steps", CASES)
def test_the_fast_pass_equals_the_general_one(loss, lam2, intercept, steps):
    X, y, rows, order, rng = _task(7)
    d = X.shape[1]
    step = 0.05
    if steps == "resets":
        lam2 = 0.5  # a = 0.975: the scale underflows every ~800 steps
        X, y, rows, order, rng = _task(8, m=3000)
    dim = d + intercept
    W0 = rng.normal(size=(1, dim)) * 0.1
    M0 = rng.normal(size=(1, dim)) * 0.01
    old = rng.normal(size=(len(rows), 1)) * 0.1
    W, M, S = W0.copy(), M0.copy(), np.zeros_like(W0)
    ops = np.zeros(1, dtype=np.int64)
    new_ref = saga_sequential_lazy(X.data, X.indices, X.indptr, y, rows, order, W, M, S, old,
                                   step, lam2, 0.0, 1 / 5000, loss, intercept, d, ops)
    if steps == "resets":
        assert ops[0] > 2 * d  # at least one flush of every coordinate mid-task
    Wf, Mf, Sf, new = saga_fast(X, y, rows, order, W0, M0, old, step=step, lam2=lam2,
                                inv_n=1 / 5000, loss_code=loss, fit_intercept=intercept,
                                compact=False)
    for got, ref in ((Wf, W), (Mf, M), (Sf, S), (new, new_ref)):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    compact = saga_fast(X, y, rows, order, W0, M0, old, step=step, lam2=lam2, inv_n=1 / 5000,
                        loss_code=loss, fit_intercept=intercept, compact=True)
    general = saga_sequential_sparse(X.data, X.indices, X.indptr, y, rows, order, W0, M0, old,
                                     step, lam2, 0.0, 1 / 5000, loss, intercept, d)
    np.testing.assert_array_equal(compact.indices, general.indices)
    np.testing.assert_allclose(compact.model, general.model, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(compact.mean_delta, general.mean_delta, rtol=1e-12, atol=1e-14)
    dense = expand_saga_result(compact, W0, M0, step=step, lam2=lam2, lam1=0.0,
                               fit_intercept=intercept)
    for got, ref in zip(dense, (W - W0, M - M0, S), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-13)
    assert compact.count == len(rows) and compact.smooth is None


def test_float32_values_and_when_the_fast_pass_applies():
    X, y, rows, order, rng = _task(3, float32=True)
    X64 = X.astype(np.float64)
    W0, M0 = rng.normal(size=(1, 300)), rng.normal(size=(1, 300)) * 0.01
    old = np.zeros((len(rows), 1))
    kw = dict(step=0.05, lam2=1e-3, inv_n=1e-3, loss_code=0, fit_intercept=False,
              compact=False)
    a = saga_fast(X, y, rows, order, W0, M0, old, **kw)
    b = saga_fast(X64, y, rows, order, W0, M0, old, **kw)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert fast_applies(X, 1, 0.0, 0.05, 1e-3)
    assert not fast_applies(X, 3, 0.0, 0.05, 1e-3)  # multinomial: the general pass
    assert not fast_applies(X, 1, 1e-3, 0.05, 1e-3)  # an L1 part: the general pass
    assert not fast_applies(X, 1, 0.0, 1.0, 2.0)  # step * lam2 >= 1
    dup = sp.csr_matrix((np.ones(2), np.array([1, 1]), np.array([0, 2])), shape=(1, 3))
    assert not fast_applies(dup, 1, 0.0, 0.05, 1e-3)  # repeated index: not canonical


def test_a_task_does_not_depend_on_the_one_before_in_its_thread():
    """Tasks of the same width reuse a thread's scratch arrays: a task's result is the
    same after another task as in a thread that ran nothing before."""
    import threading

    from daskasync import kernels_saga_fast

    X, y, rows, order, rng = _task(11, d=500)
    W0, M0 = rng.normal(size=(1, 500)), rng.normal(size=(1, 500)) * 0.01
    old = rng.normal(size=(len(rows), 1))
    kw = dict(step=0.05, lam2=1e-3, inv_n=1e-3, loss_code=0, fit_intercept=False)
    X2, y2, rows2, order2, _ = _task(12, d=500, m=200)  # touches other columns
    fresh: dict = {}

    def alone():  # a new thread: no scratch yet
        assert getattr(kernels_saga_fast._local, "scratch", None) is None
        fresh["compact"] = saga_fast(X, y, rows, order, W0, M0, old, compact=True, **kw)
        fresh["dense"] = saga_fast(X, y, rows, order, W0, M0, old, compact=False, **kw)

    thread = threading.Thread(target=alone)
    thread.start()
    thread.join()
    for compact in (True, False):
        saga_fast(X2, y2, rows2, order2, W0 * 3, M0 - 1, old[:200] + 1, compact=compact,
                  **kw)
        VM = kernels_saga_fast._local.scratch[0]
        got = saga_fast(X, y, rows, order, W0, M0, old, compact=compact, **kw)
        assert kernels_saga_fast._local.scratch[0] is VM  # the scratch was reused
        want = fresh["compact" if compact else "dense"]
        for u, v in zip(got, want, strict=True):
            if isinstance(u, np.ndarray):
                np.testing.assert_array_equal(u, v)
            else:
                assert u == v
