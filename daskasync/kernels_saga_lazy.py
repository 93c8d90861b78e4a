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
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["RESCALE", "saga_sequential_lazy"]

RESCALE = 1e-9
"""Scale below which every coordinate is flushed and the scale ``c`` reset to 1."""


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
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
