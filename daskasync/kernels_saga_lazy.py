"""Lazy ("just-in-time") sequential SAGA over sparse CSR rows.

The eager sparse pass of :func:`daskasync.kernels_saga._saga_sequential` costs ``O(d)`` per
sample: every step shrinks every coordinate (L2), moves it by the history average
``alpha_bar`` and soft-thresholds it (L1). Here a coordinate is brought up to date only when
a visited row touches it, from the step it was last updated, so a task costs
``O(nnz of its rows + d)`` (an L1 sign change adds a search, ``O(1)`` when the steps vary
slowly, ``O(log |B|)`` at worst). The technique is the one of Schmidt, Le Roux and Bach
(2017), "Minimizing finite sums with the stochastic average gradient", and Defazio, Bach
and Lacoste-Julien (2014), "SAGA: a fast incremental gradient method with support for
non-strongly convex composite objectives", applied to the update order of the eager kernel:

* ``W[:, :d] = c V`` (``V`` stored feature-major, the ``K`` classes of a feature adjacent);
  the L2 shrink of step ``t`` is ``c <- a c`` with ``a = 1 - step lam2``.
* Between two touches of coordinate ``j``, ``M[k, j]`` is constant; in ``V`` space step ``s``
  moves it by ``-M[k, j] g_s`` and soft-thresholds it at ``lam1 g_s``, ``g_s = step /
  c_{s+1}``. ``cum[t] = sum_{s < t} g_s`` gives any run of missed drifts in ``O(1)``; with L1
  the run is piecewise linear in ``cum`` with at most one sign change, located on ``cum``
  (:func:`_lagged_l1`, :func:`_first_nonpositive`); the crossing step is reproduced exactly
  (it lands on zero or jumps across).
* ``S`` accumulates the pre-prox change, so ``S = W_end - W_start + (amount the prox removed)``;
  the removed amount (``step lam1`` per step above the threshold, the pre-prox value at a
  step that lands on zero) is accumulated lazily, the model change added at the end.
* When ``c`` underflows (``c < RESCALE``) every coordinate is flushed and ``c`` reset to 1; every
  coordinate is flushed once at the end of the task. The intercept is updated eagerly.

Sparse result (:func:`saga_sequential_sparse`, :class:`LazySagaResult`,
:func:`expand_saga_result`): a coordinate no sampled row touches keeps its ``alpha_bar``, so
it only drifts (and soft-thresholds) along the step schedule, which depends on the number of
steps, ``step`` and ``lam2`` alone, resets included. The task then runs the pass on the
touched columns only and returns their values (``O(nnz)``); the driver replays the untouched
coordinates' flushes from the model and ``alpha_bar`` it shipped, through the same helpers
(:func:`_advance`, :func:`_drift`), which makes the two forms agree to the last bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

__all__ = [
    "RESCALE",
    "LazySagaResult",
    "expand_saga_result",
    "saga_sequential_lazy",
    "saga_sequential_sparse",
]

RESCALE = 1e-9
"""Scale below which every coordinate is flushed and the scale ``c`` reset to 1."""


@numba.njit(cache=True, nogil=True, inline="always")
def _first_nonpositive(v, alpha, t0, t1, cum):
    """First ``q`` in ``(t0, t1]`` with ``v - alpha (cum[q] - cum[t0]) <= 0`` (one exists).

    A guess by linear interpolation, one Newton step on ``cum`` (the guess is then exact
    unless the steps ``g_s`` vary fast), a check, and bisection when the check fails."""
    lo = t0 + 1
    hi = t1
    target = v / alpha
    q = t0 + int(math.ceil((t1 - t0) * target / (cum[t1] - cum[t0])))
    q = min(max(q, lo), hi)
    slope = cum[q] - cum[q - 1]
    if slope > 0.0:
        q = min(max(q + int(math.ceil((target - (cum[q] - cum[t0])) / slope)), lo), hi)
    if v - alpha * (cum[q] - cum[t0]) <= 0.0:
        hi = q
        if q > lo and v - alpha * (cum[q - 1] - cum[t0]) > 0.0:
            lo = q
    else:
        lo = q + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if v - alpha * (cum[mid] - cum[t0]) <= 0.0:
            hi = mid
        else:
            lo = mid + 1
    return lo


@numba.njit(cache=True, nogil=True, inline="always")
def _lagged_l1(v0, m, t0, t1, cum, scale, step, lam1):  # noqa: PLR0913
    """Coordinate ``v0`` (``V`` space) after the missed steps ``t0 .. t1 - 1`` with L1.

    Each step is ``v <- soft(v - m g_s, lam1 g_s)``. Returns ``(v, removed)``, ``removed``
    being the total the soft-thresholdings took off, in model (``W``) space.
    """
    n = t1 - t0
    thr = step * lam1
    if v0 == 0.0 and abs(m) <= lam1:
        return 0.0, -step * m * n  # stays at zero; each step removes W_pre = -step m
    # reflect so that the coordinate starts positive (or leaves zero upwards)
    sgn = 1.0 if (v0 > 0.0 or (v0 == 0.0 and m < 0.0)) else -1.0
    v = sgn * v0
    m = sgn * m
    alpha = m + lam1  # rate of decrease of v (per unit of cum) while above the threshold
    end = v - alpha * (cum[t1] - cum[t0])
    if alpha <= 0.0 or end > 0.0:
        return sgn * end, sgn * thr * n
    s = _first_nonpositive(v, alpha, t0, t1, cum) - 1  # the crossing step
    g = step / scale[s + 1]
    pre = (v - alpha * (cum[s] - cum[t0])) - m * g
    removed = thr * (s - t0)
    if pre >= -lam1 * g:  # lands on zero
        v = 0.0
        removed += scale[s + 1] * pre
    else:  # jumps across
        v = pre + lam1 * g
        removed -= thr
    rest = t1 - s - 1
    if v == 0.0 and m <= lam1:
        removed -= step * m * rest  # stuck at zero
    else:  # below zero for good: v decreases at rate m - lam1 > 0
        v -= (m - lam1) * (cum[t1] - cum[s + 1])
        removed -= thr * rest
    return sgn * v, sgn * removed


@numba.njit(cache=True, nogil=True, inline="always")
def _drift(v, m, t0, t1, cum, scale, step, lam1):  # noqa: PLR0913
    """Coordinate ``v`` (``V`` space) after the missed steps ``t0 .. t1 - 1`` (``t0 < t1``).

    Returns ``(v, removed)``: with L1 the soft-thresholded run of :func:`_lagged_l1`, without
    it the drift ``v - m (cum[t1] - cum[t0])`` and ``removed = 0``. Every catch-up (the pass's,
    the flushes' and the driver's expansion of the untouched coordinates) goes through here,
    so they share one arithmetic."""
    if lam1 > 0.0:
        return _lagged_l1(v, m, t0, t1, cum, scale, step, lam1)
    return v - m * (cum[t1] - cum[t0]), 0.0


@numba.njit(cache=True, nogil=True, inline="always")
def _catch_up(VT, MT, RT, j, t0, t1, cum, scale, step, lam1):  # noqa: PLR0913
    """Apply :func:`_drift` to the ``K`` classes of coordinate ``j`` (``RT`` += removed)."""
    for k in range(VT.shape[1]):
        v, rem = _drift(VT[j, k], MT[j, k], t0, t1, cum, scale, step, lam1)
        VT[j, k] = v
        if lam1 > 0.0:
            RT[j, k] += rem


@numba.njit(cache=True, nogil=True, inline="always")
def _advance(c, a, step, cum, scale, t):  # noqa: PLR0913
    """Step ``t``'s shrink ``c <- a c``; sets ``cum[t + 1] = cum[t] + g`` and
    ``scale[t + 1] = c``. Returns ``(c, g)``, ``g = step / c``. The pass and the driver's
    schedule (:func:`_segments`) both advance the scale through here."""
    c *= a
    g = step / c
    cum[t + 1] = cum[t] + g
    scale[t + 1] = c
    return c, g


@numba.njit(cache=True, nogil=True)
def _flush(VT, MT, RT, last, T, c, cum, scale, step, lam1):  # noqa: PLR0913
    """Bring every coordinate up to step ``T`` and fold the scale ``c`` into ``V``."""
    d, K = VT.shape
    for j in range(d):
        t0 = last[j]
        if t0 < T:  # the missed steps t0 .. T - 1, as in the pass's catch-up
            _catch_up(VT, MT, RT, j, t0, T, cum, scale, step, lam1)
            last[j] = T
        for k in range(K):
            VT[j, k] *= c
    return 2 * K * d


@numba.njit(cache=True, nogil=True)
def _finish(W, M, S, VT, MT, RT):
    """Write the flushed model and ``alpha_bar`` back; ``S += W_end - W_start + removed``."""
    d, K = VT.shape
    prox = RT.shape[0] > 0
    for k in range(K):
        for j in range(d):
            S[k, j] += VT[j, k] - W[k, j] + (RT[j, k] if prox else 0.0)
            W[k, j] = VT[j, k]
            M[k, j] = MT[j, k]


@numba.njit(cache=True, nogil=True, inline="always")
def _derivative(z, s, yi, loss_code, K):
    """Loss derivative ``s`` at margins ``z`` (0 logistic, 1 squared, 2 multinomial)."""
    if loss_code == 0:
        s[0] = -yi / (1.0 + math.exp(yi * z[0]))
    elif loss_code == 1:
        s[0] = z[0] - yi
    else:
        zmax = z[0]
        for k in range(1, K):
            if z[k] > zmax:
                zmax = z[k]
        tot = 0.0
        for k in range(K):
            s[k] = math.exp(z[k] - zmax)
            tot += s[k]
        for k in range(K):
            s[k] /= tot
        s[int(yi)] -= 1.0


@numba.njit(cache=True, nogil=True)
def _saga_lazy(  # noqa: PLR0913 - a flat kernel
    data, indices, indptr, y, rows, order, W, M, S, old, step, lam2, lam1, inv_n,
    loss_code, fit_intercept, d, ops,
):
    """The pass of :func:`saga_sequential_lazy` (which see); ``ops[0]`` += coordinate updates."""
    K = W.shape[0]
    B = rows.shape[0]
    new = np.empty((B, K))
    z = np.empty(K)
    s = np.empty(K)
    VT = W[:, :d].T.copy()  # W[:, :d] = c V, stored feature-major
    MT = M[:, :d].T.copy()
    RT = np.zeros((d if lam1 > 0.0 else 0, K))  # amount the prox removed, model space
    last = np.zeros(d, dtype=np.int32)  # coordinate j is up to date through step last[j] - 1
    cum = np.zeros(B + 1)  # cum[t] = sum of g_s over s < t (since the last reset)
    scale = np.ones(B + 1)  # scale[t] = c before step t
    a = 1.0 - step * lam2
    c = 1.0
    nops = 0
    for t in range(B):
        r = order[t]
        i = rows[r]
        p0 = indptr[i]
        p1 = indptr[i + 1]
        for k in range(K):
            z[k] = 0.0
        for p in range(p0, p1):  # bring the row's coordinates up to date, margins
            j = indices[p]
            t0 = last[j]
            if t0 < t:  # the missed steps t0 .. t - 1 (as in _flush)
                _catch_up(VT, MT, RT, j, t0, t, cum, scale, step, lam1)
                last[j] = t
                nops += K
            for k in range(K):
                z[k] += data[p] * VT[j, k]
        for k in range(K):
            z[k] = c * z[k] + (W[k, d] if fit_intercept else 0.0)
        _derivative(z, s, y[i], loss_code, K)
        c, g = _advance(c, a, step, cum, scale, t)  # step t: shrink, drift, correction, prox
        for k in range(K):
            new[r, k] = s[k]
            s[k] -= old[r, k]
            if fit_intercept:
                u = step * (M[k, d] + s[k])
                W[k, d] -= u
                S[k, d] -= u
                M[k, d] += s[k] * inv_n
        pending = -1 if lam1 > 0.0 else t + 1
        for p in range(p0, p1):
            j = indices[p]
            x = data[p]
            if last[j] == t:  # first occurrence of j in the row (rows may repeat an index)
                for k in range(K):
                    VT[j, k] -= MT[j, k] * g
                last[j] = pending
            for k in range(K):
                VT[j, k] -= g * s[k] * x
                MT[j, k] += s[k] * x * inv_n
        nops += K * (p1 - p0)
        if lam1 > 0.0:
            th = lam1 * g
            for p in range(p0, p1):
                j = indices[p]
                if last[j] == -1:
                    last[j] = t + 1
                    for k in range(K):
                        pre = VT[j, k]
                        v = pre - th if pre > th else (pre + th if pre < -th else 0.0)
                        VT[j, k] = v
                        RT[j, k] += c * (pre - v)
        if c < RESCALE:
            nops += _flush(VT, MT, RT, last, t + 1, c, cum, scale, step, lam1)
            c = 1.0
            cum[t + 1] = 0.0
            scale[t + 1] = 1.0
    ops[0] += nops + _flush(VT, MT, RT, last, B, c, cum, scale, step, lam1)
    _finish(W, M, S, VT, MT, RT)
    return new


def saga_sequential_lazy(  # noqa: PLR0913 - the kernel's flat signature
    data, indices, indptr, y, rows, order, W, M, S, old, step, lam2, lam1, inv_n,
    loss_code, fit_intercept, d, ops=None,
):
    """Sequential SAGA pass over CSR rows with just-in-time updates.

    Same contract as the sparse branch of :func:`daskasync.kernels_saga._saga_sequential`:
    the rows ``rows[order[t]]`` of the CSR matrix ``(data, indices, indptr)`` are visited for
    ``t = 0 .. B - 1``; ``W`` (model), ``M`` (``alpha_bar``) and ``S`` (sum of the smooth,
    pre-prox parts of the steps), all ``K x (d + fit_intercept)`` float64 C-contiguous, are
    updated in place; ``old`` (``B x K``) holds the stored scalars of the sampled rows.
    The iterates equal the eager kernel's to rounding (Schmidt, Le Roux and Bach, 2017;
    Defazio, Bach and Lacoste-Julien, 2014).

    Parameters
    ----------
    data, indices, indptr : ndarray
        CSR arrays; ``data`` float32 or float64 (accumulated in float64), ``indices`` and
        ``indptr`` int32 or int64.
    y, rows, order, old : ndarray
        Targets, sampled rows, visiting order (positions in ``rows``), stored scalars.
    W, M, S : ndarray
        Model, history average and smooth movement, updated in place.
    step, lam2, lam1, inv_n : float
        Step, L2 and L1 strengths, ``1 / n``. Requires ``step * lam2 < 1``.
    loss_code : int
        0 logistic, 1 squared, 2 multinomial.
    fit_intercept : bool
        Whether column ``d`` of ``W`` is an intercept (updated eagerly).
    d : int
        Number of features.
    ops : ndarray of int64, shape (1,), optional
        Debug counter incremented by the number of coordinate updates performed.

    Returns
    -------
    new : ndarray, shape (B, K)
        The new stored scalars of the sampled rows.
    """
    if not step * lam2 < 1.0:
        raise ValueError(f"the lazy kernel needs step * lam2 < 1, got {step * lam2!r}")
    if ops is None:
        ops = np.zeros(1, dtype=np.int64)
    return _saga_lazy(
        data, indices, indptr, y, rows, order, W, M, S, old, float(step), float(lam2),
        float(lam1), float(inv_n), int(loss_code), bool(fit_intercept), int(d), ops,
    )


class LazySagaResult(NamedTuple):
    """A sequential SAGA task's result whose size follows the nonzeros of its sampled rows.

    Returned by :func:`saga_sequential_sparse` (and by
    :func:`daskasync.kernels_saga.saga_sequential_kernel` with ``sparse_result=True`` on sparse
    ``X``); :func:`expand_saga_result` rebuilds the dense ``(model change, alpha_bar change,
    smooth movement)`` from it and the model and ``alpha_bar`` the task was shipped. No array
    has a dimension of size ``d``: ``u`` is the number of distinct columns the sampled rows
    touch, ``K`` the number of classes (1 unless multinomial). The columns not in ``indices``
    never change ``alpha_bar`` during the task, so their trajectories depend only on their
    starting values and on the step schedule, which ``count`` (the number of steps) and the
    step and penalty strengths determine, resets included.

    Attributes
    ----------
    indices : ndarray of int32, shape (u,)
        Sorted distinct columns of the sampled rows (int64 when ``d >= 2**31``).
    model : ndarray, shape (K, u)
        The model's final values on ``indices``.
    mean_delta : ndarray, shape (K, u)
        The change of ``alpha_bar`` on ``indices``.
    smooth : ndarray, shape (K, u), or None
        The smooth movement ``S`` on ``indices`` when ``lam1 > 0``; ``None`` without L1, where
        ``S`` equals the model change.
    intercept : ndarray, shape (3, K), or None
        The intercept's model change, ``alpha_bar`` change and ``S``; ``None`` without one.
    new : ndarray
        The new stored scalars of the sampled rows (``(B, K)``, or shaped like the task's
        ``old`` when built by the task kernel).
    count : int
        ``B``, the number of sampled rows and of steps.
    d : int
        Number of features.
    """

    indices: np.ndarray
    model: np.ndarray
    mean_delta: np.ndarray
    smooth: np.ndarray | None
    intercept: np.ndarray | None
    new: np.ndarray
    count: int
    d: int


@numba.njit(cache=True, nogil=True)
def _gather_rows(data, indices, indptr, rows):
    """CSR arrays ``(data, indices, indptr)`` of the rows ``rows`` (in that order)."""
    B = rows.shape[0]
    ptr = np.zeros(B + 1, dtype=np.int64)
    for r in range(B):
        ptr[r + 1] = ptr[r] + indptr[rows[r] + 1] - indptr[rows[r]]
    sub_data = np.empty(ptr[B], dtype=data.dtype)
    sub_indices = np.empty(ptr[B], dtype=indices.dtype)
    for r in range(B):
        p0 = indptr[rows[r]]
        for q in range(ptr[r], ptr[r + 1]):
            sub_data[q] = data[p0 + q - ptr[r]]
            sub_indices[q] = indices[p0 + q - ptr[r]]
    return sub_data, sub_indices, ptr


def saga_sequential_sparse(  # noqa: PLR0913 - the kernel's flat signature
    data, indices, indptr, y, rows, order, W0, M0, old, step, lam2, lam1, inv_n,
    loss_code, fit_intercept, d, columns=None,
) -> LazySagaResult:
    """The pass of :func:`saga_sequential_lazy`, returned as a :class:`LazySagaResult`.

    The sampled rows are restricted to the ``u`` columns they touch and the just-in-time pass
    runs on that restriction: the touched coordinates see the arithmetic of the full pass
    (each coordinate's catch-ups, resets and flush depend only on itself and on the step
    schedule), and the untouched ones are neither flushed nor returned. Cost
    ``O(nnz log nnz + B)`` plus ``O(u)`` per reset, whatever ``d``.

    Parameters
    ----------
    data, indices, indptr, y, rows, order, old, step, lam2, lam1, inv_n, loss_code, \
fit_intercept, d
        As for :func:`saga_sequential_lazy`. Requires ``step * lam2 < 1``.
    W0, M0 : ndarray, shape (K, d + fit_intercept)
        The model and ``alpha_bar`` the task starts from (float64, not modified); with
        ``columns``, shape ``(K, len(columns) + fit_intercept)``, their values on
        ``columns``.
    columns : ndarray of int, optional
        Sorted columns holding every nonzero of the sampled rows (a
        :class:`~daskasync.views.ColumnView`'s).

    Returns
    -------
    LazySagaResult
        Equal, through :func:`expand_saga_result`, to the dense result of the full pass.
    """
    sub_data, sub_indices, ptr = _gather_rows(data, indices, indptr, rows)
    cols, local = np.unique(sub_indices, return_inverse=True)
    cols = cols.astype(np.int32 if d < 2**31 else np.int64)
    u = cols.shape[0]
    at, head = cols, d  # where cols and the intercept sit in W0 and M0
    if columns is not None:
        at, head = np.searchsorted(columns, cols), len(columns)
    W = np.ascontiguousarray(np.concatenate([W0[:, at], W0[:, head:]], axis=1))
    M = np.ascontiguousarray(np.concatenate([M0[:, at], M0[:, head:]], axis=1))
    S = np.zeros_like(W)
    B = rows.shape[0]
    new = saga_sequential_lazy(
        sub_data, local.reshape(-1).astype(np.int32), ptr, np.asarray(y)[rows], np.arange(B),
        order, W, M, S, old, step, lam2, lam1, inv_n, loss_code, fit_intercept, u,
    )
    intercept = None
    if fit_intercept:
        intercept = np.stack([W[:, u] - W0[:, head], M[:, u] - M0[:, head], S[:, u]])
    return LazySagaResult(
        indices=cols,
        model=np.ascontiguousarray(W[:, :u]),
        mean_delta=M[:, :u] - M0[:, at],
        smooth=np.ascontiguousarray(S[:, :u]) if lam1 > 0.0 else None,
        intercept=intercept,
        new=new,
        count=int(B),
        d=int(d),
    )


@numba.njit(cache=True, nogil=True)
def _segments(B, step, lam2):
    """The scale schedule of a ``B``-step task, cut at its resets.

    Returns ``(cum, scale, starts, ends, cs)``: segment ``q`` runs from position
    ``starts[q]`` to ``ends[q]`` of ``cum`` and ``scale``, which hold there the values the
    pass holds when it flushes at the end of that segment (a reset, or the end of the task),
    and ``cs[q]`` is the scale ``c`` the flush folds into ``V``. Each segment has its own
    positions, so a reset's zeroing does not overwrite the previous segment's end."""
    a = 1.0 - step * lam2
    cum = np.zeros(2 * B + 2)
    scale = np.ones(2 * B + 2)
    starts = np.zeros(B + 1, dtype=np.int64)
    ends = np.zeros(B + 1, dtype=np.int64)
    cs = np.ones(B + 1)
    c = 1.0
    p = 0  # position in cum of the current step
    q = 0  # current segment
    for _ in range(B):
        c, _g = _advance(c, a, step, cum, scale, p)
        p += 1
        if c < RESCALE:
            ends[q] = p
            cs[q] = c
            q += 1
            p += 1  # a fresh position: cum = 0, scale = 1, as after the pass's reset
            starts[q] = p
            c = 1.0
    ends[q] = p
    cs[q] = c
    return cum, scale, starts[: q + 1], ends[: q + 1], cs[: q + 1]


@numba.njit(cache=True, nogil=True, inline="always")
def _replay(w0, m, starts, ends, cs, cum, scale, step, lam1):  # noqa: PLR0913
    """An untouched coordinate from ``w0`` to the end of the task: the flushes of
    :func:`_flush` over the segments of :func:`_segments` (the same :func:`_drift`, the
    same folding of ``c``). Returns ``(v, removed)``, ``removed`` summed over the
    segments (with L1)."""
    v = w0
    r = 0.0
    for q in range(starts.shape[0]):
        if starts[q] < ends[q]:
            v, rem = _drift(v, m, starts[q], ends[q], cum, scale, step, lam1)
            if lam1 > 0.0:
                r += rem
        v *= cs[q]
    return v, r


@numba.njit(cache=True, nogil=True)
def _expand_untouched(W0, M0, d, cum, scale, starts, ends, cs, step, lam1, dW, S):  # noqa: PLR0913
    """``dW``, ``S`` of columns ``j < d`` as the pass leaves a coordinate no row touches.

    Per coordinate, the flushes of :func:`_flush` over the segments of :func:`_segments`
    (the same :func:`_drift`, the same folding of ``c``), then the sums of :func:`_finish`."""
    prox = lam1 > 0.0
    for k in range(W0.shape[0]):
        for j in range(d):
            w0 = W0[k, j]
            v, r = _replay(w0, M0[k, j], starts, ends, cs, cum, scale, step, lam1)
            S[k, j] = 0.0 + (v - w0 + (r if prox else 0.0))
            dW[k, j] = v - w0


def expand_saga_result(result, W0, M0, *, step, lam2, lam1, fit_intercept):  # noqa: PLR0913
    """Dense ``(model change, alpha_bar change, smooth movement)`` of a sequential SAGA task.

    For a :class:`LazySagaResult`, rebuilds the arrays the dense-result form of
    :func:`daskasync.kernels_saga.saga_sequential_kernel` returns for the same task: the
    touched columns from the result, the untouched ones by replaying, per coordinate, the
    pass's flushes over the task's step schedule (resets included) with the pass's own
    helpers, so the two forms agree to the last bit. A dense 5-tuple result passes through
    as its items 0, 1 and 4. Cost ``O(B)`` for the schedule and, per coordinate, one catch-up
    per segment of it (one, plus one per reset; with L1 a sign change adds the crossing
    search of :func:`_lagged_l1`), in one numba loop over the coordinates.

    Parameters
    ----------
    result : LazySagaResult or tuple
        The task's value.
    W0, M0 : ndarray
        The model and ``alpha_bar`` the task was shipped (theta's shape; not modified).
    step, lam2, lam1 : float
        The task's step and L2 and L1 strengths (``step * lam2 < 1``).
    fit_intercept : bool
        Whether the model's last column is an intercept.

    Returns
    -------
    d_theta, d_mean, smooth : ndarray
        Shaped like ``W0``, ``M0``, ``W0``.

    Raises
    ------
    ValueError
        When the arguments do not match the result (shape, intercept, L1 or not).
    """
    if not isinstance(result, LazySagaResult):
        return result[0], result[1], result[4]
    K, d = result.model.shape[0], result.d
    Wf = np.ascontiguousarray(W0, dtype=np.float64).reshape(K, -1)
    Mf = np.ascontiguousarray(M0, dtype=np.float64).reshape(K, -1)
    if (result.intercept is not None) != bool(fit_intercept):
        raise ValueError(f"fit_intercept={fit_intercept!r} does not match the result")
    if Wf.shape != (K, d + bool(fit_intercept)) or Mf.shape != Wf.shape:
        raise ValueError(f"W0 {np.shape(W0)} / M0 {np.shape(M0)} do not fit K={K}, d={d}")
    if (result.smooth is not None) != (lam1 > 0.0) or not step * lam2 < 1.0:
        raise ValueError(f"lam1={lam1!r}, step * lam2={step * lam2!r} do not match the result")
    dW = np.empty_like(Wf)
    S = np.empty_like(Wf)
    schedule = _segments(int(result.count), float(step), float(lam2))
    _expand_untouched(Wf, Mf, d, *schedule, float(step), float(lam1), dW, S)
    cols = result.indices
    dW[:, cols] = result.model - Wf[:, cols]
    S[:, cols] = result.smooth if result.smooth is not None else 0.0 + (dW[:, cols] + 0.0)
    dM = np.zeros_like(Mf)
    dM[:, cols] = result.mean_delta
    if fit_intercept:
        dW[:, d], dM[:, d], S[:, d] = result.intercept
    return dW.reshape(np.shape(W0)), dM.reshape(np.shape(M0)), S.reshape(np.shape(W0))
