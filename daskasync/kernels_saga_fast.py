"""The just-in-time SAGA pass for the common case: one output (logistic or least squares)
and no L1 part, over canonical CSR rows.

The general kernel (:mod:`daskasync.kernels_saga_lazy`) handles ``K`` outputs and the L1
prox with per-coordinate loops over classes and branches; here the same update order runs
on flat arrays in one loop per row, which a compiler turns into the tight code of
scikit-learn's ``sag_fast``: a pass costs about what scikit-learn's SAGA epoch costs per
row. The arithmetic is the general kernel's, operation for operation (the model as a scale
``c`` times ``V``, catch-ups ``V_j -= M_j (cum[t] - cum[t_j])``, a flush of every
coordinate when ``c`` underflows and at the end), so the iterates agree to rounding, and
the compact result's columns, scale schedule and resets are the ones
:func:`~daskasync.kernels_saga_lazy.expand_saga_result` replays.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

from .kernels_saga_lazy import RESCALE, LazySagaResult

__all__ = ["fast_applies", "saga_fast"]


def fast_applies(X, K: int, lam1: float, step: float, lam2: float) -> bool:
    """Whether :func:`saga_fast` runs this task: one output, no L1 part, canonical CSR
    rows (sorted unique indices) and ``step * lam2 < 1``."""
    return K == 1 and lam1 == 0.0 and step * lam2 < 1.0 and bool(X.has_canonical_format)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _flush_all(VM, last, T, c, cum, cols):
    """The coordinates ``cols`` (every coordinate the pass holds) brought up to step
    ``T``, the scale folded into ``V``."""
    cT = cum[T]
    for q in range(cols.shape[0]):
        j = cols[q]
        if last[j] < T:
            VM[j, 0] -= VM[j, 1] * (cT - cum[last[j]])
        last[j] = T
        VM[j, 0] *= c


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pass(data, indices, indptr, y, rows, order, VM, last, head, old, step, lam2, inv_n,
          logistic, intercept, seen, cols):
    """The pass (see the module description) on ``VM[:, 0] = V`` and ``VM[:, 1] = M``
    (interleaved: a row's coordinate is one cache line, not two), ``last`` zero and
    ``seen`` false on entry; ``head`` is ``[b, mb, sb]``: the intercept, its ``alpha_bar``
    and its smooth movement, updated in place. Returns ``(new, c, cum)`` after the last
    step, coordinates not flushed. ``cols`` are the coordinates loaded (the rows touch no
    other), which a reset flushes."""
    B = rows.shape[0]
    new = np.empty(B)
    cum = np.zeros(B + 1)
    a = 1.0 - step * lam2
    c = 1.0
    for t in range(B):
        r = order[t]
        i = rows[r]
        p0 = indptr[i]
        p1 = indptr[i + 1]
        ct = cum[t]
        z = 0.0
        for p in range(p0, p1):  # bring the row's coordinates up to date, margin
            j = indices[p]
            v = VM[j, 0]
            if last[j] < t:
                v = v - VM[j, 1] * (ct - cum[last[j]])
                VM[j, 0] = v
                last[j] = t
            z += data[p] * v
            seen[j] = True
        z = c * z + (head[0] if intercept else 0.0)
        yi = y[i]
        s = -yi / (1.0 + math.exp(yi * z)) if logistic else z - yi
        c *= a
        g = step / c
        cum[t + 1] = ct + g
        new[r] = s
        s -= old[r]
        if intercept:
            u = step * (head[1] + s)
            head[0] -= u
            head[2] -= u
            head[1] += s * inv_n
        gs = g * s
        for p in range(p0, p1):
            j = indices[p]
            x = data[p]
            m = VM[j, 1]
            v = VM[j, 0] - m * g
            VM[j, 0] = v - gs * x
            VM[j, 1] = m + s * x * inv_n
            last[j] = t + 1
        if c < RESCALE:
            _flush_all(VM, last, t + 1, c, cum, cols)
            c = 1.0
            cum[t + 1] = 0.0
    return new, c, cum


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _load(VM, last, seen, cols, w, m):
    """``VM[cols] = [w, m]`` column by column, ``last`` zero, ``seen`` false there: one
    pass over ``cols`` (``w`` and ``m`` hold the values of ``cols``, in their order)."""
    for q in range(cols.shape[0]):
        j = cols[q]
        VM[j, 0] = w[q]
        VM[j, 1] = m[q]
        last[j] = 0
        seen[j] = False


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _flush_touched(VM, last, seen, cols, B, c, cum, m0):
    """The coordinates of ``cols`` the pass touched, brought up to the end, scale
    folded: ``(touched, final values, change of M from m0)``, ``m0`` holding the starting
    ``M`` of ``cols`` in their order."""
    u = 0
    for q in range(cols.shape[0]):
        if seen[cols[q]]:
            u += 1
    touched = np.empty(u, dtype=cols.dtype)
    out = np.empty(u)
    dm = np.empty(u)
    cB = cum[B]
    i = 0
    for q in range(cols.shape[0]):
        j = cols[q]
        if not seen[j]:
            continue
        v = VM[j, 0]
        if last[j] < B:
            v -= VM[j, 1] * (cB - cum[last[j]])
        touched[i] = j
        out[i] = v * c
        dm[i] = VM[j, 1] - m0[q]
        i += 1
    return touched, out, dm


#: the largest scratch (bytes) a thread keeps between tasks: at most a few model sizes of
#: the commonest wide problems (d up to about 3 million)
SCRATCH_MAX_BYTES = 64 << 20

_local = threading.local()


def _scratch(d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(VM, last, seen, every column)`` for ``d`` columns, reused by this thread's next task of the
    same width when small enough (see :data:`SCRATCH_MAX_BYTES`). A fresh large array
    costs a page fault per 4 KB on first touch, and distributed's workers hand freed memory
    back to the system at once (``MALLOC_TRIM_THRESHOLD_``), so without reuse every task
    pays them again. The contents are overwritten by :func:`_load` before every pass: a
    task's result never depends on the previous task's."""
    held = getattr(_local, "scratch", None)
    if held is not None and held[0].shape[0] == d:
        return held
    index = np.int32 if d < 2**31 else np.int64
    arrays = (np.empty((d, 2)), np.empty(d, dtype=np.int32), np.empty(d, dtype=np.bool_),
              np.arange(d, dtype=index))
    _local.scratch = arrays if 25 * d <= SCRATCH_MAX_BYTES else None
    return arrays


def saga_fast(X, y, rows, order, W0, M0, old, *, step: float, lam2: float, inv_n: float,
              loss_code: int, fit_intercept: bool, compact: bool,
              columns: np.ndarray | None = None):
    """One sequential SAGA pass of a task with one output and no L1 part.

    Parameters
    ----------
    X : scipy.sparse.csr_matrix
        The block, canonical (see :func:`fast_applies`); float32 or float64 values.
    y, rows, order, old
        Targets, sampled rows, visiting order (positions in ``rows``), stored scalars.
    W0, M0 : ndarray, shape (1, d + fit_intercept)
        The model and ``alpha_bar`` the task starts from (not modified); with ``columns``,
        shape ``(1, len(columns) + fit_intercept)``, their values on ``columns``.
    step, lam2, inv_n : float
        Step, L2 strength, ``1 / n``.
    loss_code : {0, 1}
        Logistic or least squares.
    fit_intercept : bool
    compact : bool
        Return a :class:`~daskasync.kernels_saga_lazy.LazySagaResult` (the touched columns
        only) instead of the dense ``(W, M, S, new)``.
    columns : ndarray of int, optional
        Sorted columns holding every nonzero of the sampled rows (a
        :class:`~daskasync.views.ColumnView`'s): the pass loads and flushes only these,
        ``O(len(columns))`` instead of ``O(d)``. Requires ``compact``.
    """
    d = X.shape[1]
    VM, last, seen, every = _scratch(d)
    if columns is None:
        cols, u = every, d
    elif not compact:
        raise ValueError("columns: a pass on some columns returns the compact result only")
    else:
        cols, u = columns, len(columns)
    _load(VM, last, seen, cols, W0[0, :u], M0[0, :u])
    head = np.array([W0[0, u], M0[0, u], 0.0]) if fit_intercept else np.zeros(3)
    new, c, cum = _pass(
        X.data, X.indices, X.indptr, y, rows, order, VM, last, head, old.reshape(-1),
        float(step), float(lam2), float(inv_n), loss_code == 0, bool(fit_intercept), seen, cols,
    )
    B = rows.shape[0]
    if compact:
        touched, final, dm = _flush_touched(VM, last, seen, cols, B, c, cum, M0[0, :u])
        icpt = None
        if fit_intercept:
            icpt = np.array([[head[0] - W0[0, u]], [head[1] - M0[0, u]], [head[2]]])
        return LazySagaResult(indices=touched, model=final.reshape(1, -1),
                              mean_delta=dm.reshape(1, -1), smooth=None,
                              intercept=icpt, new=new.reshape(-1, 1), count=int(B), d=int(d))
    _flush_all(VM, last, B, c, cum, cols)
    W = np.empty_like(W0)
    Mo = np.empty_like(M0)
    W[0, :d] = VM[:, 0]
    Mo[0, :d] = VM[:, 1]
    if fit_intercept:
        W[0, d], Mo[0, d] = head[0], head[1]
    S = W - W0
    if fit_intercept:
        S[0, d] = head[2]
    return W, Mo, S, new.reshape(-1, 1)
