"""Lazy ("just-in-time") sequential SAGA over sparse CSR rows.

The eager sparse pass of :func:`daskasync.kernels_saga._saga_sequential` costs ``O(d)`` per
sample: every step shrinks every coordinate (L2), moves it by the history average
``alpha_bar`` and soft-thresholds it (L1). Here a coordinate is brought up to date only when
a visited row touches it, from the step it was last updated, so a task costs
``O(nnz of its rows + d)`` (times ``log`` of the task length for the rare L1 crossings).
The technique is the one of Schmidt, Le Roux and Bach (2017), "Minimizing finite sums with
the stochastic average gradient", and Defazio, Bach and Lacoste-Julien (2014), "SAGA: a fast
incremental gradient method with support for non-strongly convex composite objectives",
applied to the update order of the eager kernel:

* ``W[:, :d] = c V``; the L2 shrink of step ``t`` is ``c <- a c`` with ``a = 1 - step lam2``.
* Between two touches of coordinate ``j``, ``M[k, j]`` is constant; in ``V`` space step ``s``
  moves it by ``-M[k, j] g_s`` and soft-thresholds it at ``lam1 g_s``, ``g_s = step /
  c_{s+1}``. ``cum[t] = sum_{s < t} g_s`` gives any run of missed drifts in ``O(1)``; with L1
  the run is piecewise linear in ``cum`` with at most one sign change, found by binary search
  on ``cum`` (:func:`_lagged_l1`).
* ``S`` accumulates the pre-prox change, so ``S = W_end - W_start + (amount the prox removed)``;
  the removed amount is accumulated lazily into ``S`` and the model change is added at the end.
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
    lo = t0 + 1  # first q in (t0, t1] with v - alpha (cum[q] - cum[t0]) <= 0
    hi = t1
    while lo < hi:
        mid = (lo + hi) // 2
        if v - alpha * (cum[mid] - cum[t0]) <= 0.0:
            hi = mid
        else:
            lo = mid + 1
    s = lo - 1  # the crossing step
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


@numba.njit(cache=True, nogil=True)
def _catch_up(V, M, S, j, t0, t1, cum, scale, step, lam1):  # noqa: PLR0913
    """Apply the missed steps ``t0 .. t1 - 1`` to coordinate ``j`` of every class row."""
    if t0 >= t1:
        return
    K = V.shape[0]
    if lam1 > 0.0:
        for k in range(K):
            v, removed = _lagged_l1(V[k, j], M[k, j], t0, t1, cum, scale, step, lam1)
            V[k, j] = v
            S[k, j] += removed
    else:
        G = cum[t1] - cum[t0]
        for k in range(K):
            V[k, j] -= M[k, j] * G


@numba.njit(cache=True, nogil=True)
def _flush(V, M, S, last, T, c, cum, scale, step, lam1, ops):  # noqa: PLR0913
    """Bring every coordinate up to step ``T`` and fold the scale ``c`` into ``V``."""
    K, d = V.shape
    for j in range(d):
        _catch_up(V, M, S, j, last[j], T, cum, scale, step, lam1)
        last[j] = T
        for k in range(K):
            V[k, j] *= c
    ops[0] += 2 * K * d


@numba.njit(cache=True, nogil=True)
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
def _touch(data, indices, p0, p1, t, V, M, S, last, diff, g, c_new, step, lam1, inv_n):  # noqa: PLR0913
    """Step ``t`` on the coordinates of the visited row (up to date through step ``t - 1``):
    drift with the old ``alpha_bar``, gradient correction, ``alpha_bar`` update, prox."""
    K = V.shape[0]
    for p in range(p0, p1):  # drift once per coordinate (rows may repeat an index)
        j = indices[p]
        if last[j] == t:
            for k in range(K):
                V[k, j] -= M[k, j] * g
            last[j] = -1
    for p in range(p0, p1):
        j = indices[p]
        x = data[p]
        for k in range(K):
            V[k, j] -= g * diff[k] * x
            M[k, j] += diff[k] * x * inv_n
    for p in range(p0, p1):  # prox once per coordinate
        j = indices[p]
        if last[j] == -1:
            last[j] = t + 1
            if lam1 > 0.0:
                th = lam1 * g
                for k in range(K):
                    pre = V[k, j]
                    v = pre - th if pre > th else (pre + th if pre < -th else 0.0)
                    V[k, j] = v
                    S[k, j] += c_new * (pre - v)


@numba.njit(cache=True, nogil=True)
def _saga_lazy(  # noqa: PLR0913 - a flat kernel
    data, indices, indptr, y, rows, order, W, M, S, old, step, lam2, lam1, inv_n,
    loss_code, fit_intercept, d, ops,
):
    K = W.shape[0]
    B = rows.shape[0]
    new = np.empty((B, K))
    z = np.empty(K)
    s = np.empty(K)
    diff = np.empty(K)
    V = W[:, :d].copy()
    last = np.zeros(d, dtype=np.int64)  # coordinate j is up to date through step last[j] - 1
    cum = np.zeros(B + 1)  # cum[t] = sum of g_s over s < t (since the last reset)
    scale = np.ones(B + 1)  # scale[t] = c before step t
    a = 1.0 - step * lam2
    c = 1.0
    for t in range(B):
        r = order[t]
        i = rows[r]
        p0 = indptr[i]
        p1 = indptr[i + 1]
        for p in range(p0, p1):
            j = indices[p]
            if last[j] < t:
                _catch_up(V, M, S, j, last[j], t, cum, scale, step, lam1)
                last[j] = t
                ops[0] += K
        for k in range(K):
            acc = 0.0
            for p in range(p0, p1):
                acc += data[p] * V[k, indices[p]]
            z[k] = c * acc + (W[k, d] if fit_intercept else 0.0)
        _derivative(z, s, y[i], loss_code, K)
        c_new = c * a
        g = step / c_new
        cum[t + 1] = cum[t] + g
        scale[t + 1] = c_new
        for k in range(K):
            diff[k] = s[k] - old[r, k]
            new[r, k] = s[k]
            if fit_intercept:
                u = step * (M[k, d] + diff[k])
                W[k, d] -= u
                S[k, d] -= u
                M[k, d] += diff[k] * inv_n
        _touch(data, indices, p0, p1, t, V, M, S, last, diff, g, c_new, step, lam1, inv_n)
        ops[0] += K * (p1 - p0)
        c = c_new
        if c < RESCALE:
            _flush(V, M, S, last, t + 1, c, cum, scale, step, lam1, ops)
            c = 1.0
            cum[t + 1] = 0.0
            scale[t + 1] = 1.0
    _flush(V, M, S, last, B, c, cum, scale, step, lam1, ops)
    for k in range(K):
        for j in range(d):
            S[k, j] += V[k, j] - W[k, j]
            W[k, j] = V[k, j]
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
