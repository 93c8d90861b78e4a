"""A sequential SAGA task's change, added to the driver's arrays without its dense form.

A compact result (:class:`~daskasync.kernels_saga_lazy.LazySagaResult`) holds the columns
its rows touched; every other column only drifted along the task's step schedule, from the
model and ``alpha_bar`` the task was shipped. :func:`~daskasync.kernels_saga_lazy.expand_saga_result`
rebuilds three dense arrays from it (model change, ``alpha_bar`` change, smooth movement),
which the driver then adds to its own: at ``d = 10^6`` that is three 8 MB allocations and
five passes over ``d`` per result. :class:`SagaChange` adds ``weight`` times the change
straight into the target in one pass over the untouched columns (through the same
per-coordinate replay, so the sums are those of the dense form to the last bit) and touches
``alpha_bar`` on the touched columns only, where it changed.
:class:`DenseSagaChange` gives a dense result (dense rows, the eager kernel) the same
interface, so a solver applies both alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

from .kernels_saga_lazy import LazySagaResult, _replay, _segments

__all__ = ["DenseSagaChange", "SagaChange", "add_model_changes", "saga_change"]


@numba.njit(cache=True, nogil=True)
def _add_drift(W0, M0, d, cum, scale, starts, ends, cs, step, lam1, smooth, weight, out):  # noqa: PLR0913
    """``out[k, j] += weight * change`` for every column ``j < d`` as if no row touched it:
    the replay of :func:`~daskasync.kernels_saga_lazy._replay` (a branch-free loop the
    compiler vectorizes)."""
    for k in range(W0.shape[0]):  # one loop per case: no branch inside
        if smooth:  # r is 0.0 without L1, so one loop serves both
            for j in range(d):
                w0 = W0[k, j]
                v, r = _replay(w0, M0[k, j], starts, ends, cs, cum, scale, step, lam1)
                out[k, j] += weight * (0.0 + (v - w0 + r))
        else:
            for j in range(d):
                w0 = W0[k, j]
                v, _ = _replay(w0, M0[k, j], starts, ends, cs, cum, scale, step, lam1)
                out[k, j] += weight * (v - w0)


@numba.njit(cache=True, nogil=True)
def _add_change(W0, M0, d, cols, touched, plain, cum, scale, starts, ends, cs,  # noqa: PLR0913
                step, lam1, smooth, weight, out):
    """``out[k, j] += weight * change`` for the columns ``j < d``: the model change, or the
    smooth movement when ``smooth``. A column in ``cols`` takes the change the result gives
    for it, ``touched[k, q]`` minus the start when ``plain`` (the model's final value, not
    a movement); any other column only drifted along the schedule (:func:`_add_drift`,
    over every column, after which the touched ones are set from their values before)."""
    K, n_cols = W0.shape[0], cols.shape[0]
    before = np.empty((K, n_cols))
    for k in range(K):
        for q in range(n_cols):
            before[k, q] = out[k, cols[q]]
    _add_drift(W0, M0, d, cum, scale, starts, ends, cs, step, lam1, smooth, weight, out)
    for k in range(K):
        for q in range(n_cols):
            j = cols[q]
            w0 = W0[k, j]
            if not plain:
                out[k, j] = before[k, q] + weight * touched[k, q]
            elif smooth:
                out[k, j] = before[k, q] + weight * (0.0 + ((touched[k, q] - w0) + 0.0))
            else:
                out[k, j] = before[k, q] + weight * (touched[k, q] - w0)


@numba.njit(cache=True, nogil=True)
def _add_at(out, cols, values):
    """``out[:, cols] += values`` (``cols`` distinct), without numpy's fancy-index copies."""
    for k in range(out.shape[0]):
        for q in range(cols.shape[0]):
            out[k, cols[q]] += values[k, q]


@numba.njit(cache=True, nogil=True)
def _add_linear(W0, M0, d, A, B, weight, out):  # noqa: PLR0913
    """``out[k, j] += weight * (A W0[k, j] + B M0[k, j])`` for the columns ``j < d``."""
    for k in range(W0.shape[0]):
        for j in range(d):
            out[k, j] += weight * (A * W0[k, j] + B * M0[k, j])


@numba.njit(cache=True, nogil=True)
def _fix_touched(W0, M0, cols, touched, a, b, weight, out):  # noqa: PLR0913
    """On the columns ``cols`` a task touched: replace the drift ``(a - 1) w0 + b m0``
    added for it by its change, ``touched`` (final values) minus ``w0``."""
    for k in range(W0.shape[0]):
        for q in range(cols.shape[0]):
            j = cols[q]
            w0 = W0[k, j]
            out[k, j] += weight * ((touched[k, q] - w0) - ((a - 1.0) * w0 + b * M0[k, j]))


def _rows(a: np.ndarray, K: int) -> np.ndarray:
    """``a`` as a ``(K, dim)`` view (no copy: the caller's array is written)."""
    view = a.reshape(K, -1)
    if not np.shares_memory(view, a):
        raise ValueError("out: must be a contiguous array shaped like the model")
    return view


class SagaChange:
    """The change of one sequential SAGA task from its compact result.

    Parameters
    ----------
    result : LazySagaResult
        The task's value.
    W0, M0 : ndarray
        The model and ``alpha_bar`` the task was shipped (theta's shape). They are read
        when a change is added, not copied: they must not change until then (the
        broadcaster's versions do not).
    step, lam2, lam1 : float
        The task's step and L2 and L1 strengths (``step * lam2 < 1``).
    fit_intercept : bool
        Whether the model's last column is an intercept.

    Notes
    -----
    ``add_model(out, w)`` leaves ``out`` equal, bit for bit, to ``out + w * d_theta`` with
    ``d_theta`` from :func:`~daskasync.kernels_saga_lazy.expand_saga_result` (likewise
    ``add_smooth`` and ``add_mean``), at the cost of one pass over the columns.
    """

    def __init__(self, result: LazySagaResult, W0: np.ndarray, M0: np.ndarray, *,
                 step: float, lam2: float, lam1: float, fit_intercept: bool) -> None:
        K, d = result.model.shape[0], result.d
        self.shape = np.shape(W0)
        self.W0 = np.ascontiguousarray(W0, dtype=np.float64).reshape(K, -1)
        self.M0 = np.ascontiguousarray(M0, dtype=np.float64).reshape(K, -1)
        if (result.intercept is not None) != bool(fit_intercept):
            raise ValueError(f"fit_intercept={fit_intercept!r} does not match the result")
        if self.W0.shape != (K, d + bool(fit_intercept)) or self.M0.shape != self.W0.shape:
            raise ValueError(f"W0 {np.shape(W0)} / M0 {np.shape(M0)} do not fit K={K}, d={d}")
        if (result.smooth is not None) != (lam1 > 0.0) or not step * lam2 < 1.0:
            raise ValueError(f"lam1={lam1!r}, step * lam2={step * lam2!r} do not match the "
                             "result")
        self.result = result
        self.K, self.d = K, d
        self.step, self.lam2, self.lam1 = float(step), float(lam2), float(lam1)
        self.new = result.new
        self.count = int(result.count)

    def _add(self, out: np.ndarray, weight: float, smooth: bool) -> None:
        res, view = self.result, _rows(out, self.K)
        schedule = _segments(self.count, self.step, self.lam2)
        given = smooth and res.smooth is not None  # the result's own smooth movement
        _add_change(self.W0, self.M0, self.d, res.indices, res.smooth if given else res.model,
                    not given, *schedule, self.step, self.lam1, smooth, float(weight), view)
        if res.intercept is not None:
            view[:, self.d] += weight * res.intercept[2 if smooth else 0]

    def add_model(self, out: np.ndarray, weight: float = 1.0) -> None:
        """``out += weight * (model change)``, in place."""
        self._add(out, weight, False)

    def add_smooth(self, out: np.ndarray, weight: float = 1.0) -> None:
        """``out += weight * (smooth movement)`` (the model change before the prox)."""
        self._add(out, weight, True)

    def linear_drift(self) -> tuple[float, float] | None:
        """``(a, b)`` such that a coordinate no row touched ends the task at
        ``a w0 + b m0`` (its start and ``alpha_bar``), to rounding; ``None`` with an L1
        part (the drift is then a soft threshold, not linear). Without L1 every segment
        of the scale schedule maps ``v`` to ``(v - m (cum[e] - cum[s])) c``."""
        if self.lam1 > 0.0:
            return None
        cum, _, starts, ends, cs = _segments(self.count, self.step, self.lam2)
        a, b = 1.0, 0.0
        for s, e, c in zip(starts, ends, cs, strict=True):
            if s < e:
                b -= cum[e] - cum[s]
            a *= c
            b *= c
        return a, b

    def add_mean(self, mean: np.ndarray) -> None:
        """``mean += (alpha_bar change)``: on the touched columns (and the intercept) only."""
        res, view = self.result, _rows(mean, self.K)
        _add_at(view, res.indices, res.mean_delta)
        if res.intercept is not None:
            view[:, self.d] += res.intercept[1]


class DenseSagaChange:
    """:class:`SagaChange`'s interface over the dense result ``(model change, alpha_bar
    change, new scalars, |B|, smooth movement)``."""

    def __init__(self, value: tuple) -> None:
        self.d_theta, self.d_mean, self.new, self.count, self.smooth = value

    def add_model(self, out: np.ndarray, weight: float = 1.0) -> None:
        np.add(out, weight * self.d_theta, out=out)

    def add_smooth(self, out: np.ndarray, weight: float = 1.0) -> None:
        np.add(out, weight * self.smooth, out=out)

    def add_mean(self, mean: np.ndarray) -> None:
        mean += self.d_mean


def saga_change(value: Any, W0: np.ndarray, M0: np.ndarray, *, step: float, lam2: float,
                lam1: float, fit_intercept: bool) -> SagaChange | DenseSagaChange:
    """The change of a sequential SAGA task's value (compact or dense), relative to the
    model ``W0`` and ``alpha_bar`` ``M0`` it was shipped."""
    if isinstance(value, LazySagaResult):
        return SagaChange(value, W0, M0, step=step, lam2=lam2, lam1=lam1,
                          fit_intercept=fit_intercept)
    return DenseSagaChange(value)


def add_model_changes(out: np.ndarray, changes: Sequence[SagaChange | DenseSagaChange],
                      weight: float = 1.0) -> None:
    """``out += weight * (sum of the changes' model changes)``, in place (to rounding).

    A round of a synchronous solver has one result per partition, all computed on one
    version. Without an L1 part a coordinate none of them touched ends each task at
    ``a_i w0 + b_i m0`` (:meth:`SagaChange.linear_drift`), so their sum is one linear
    combination of the version's model and ``alpha_bar``: compact changes sharing a version
    are added in one pass over the columns, then each corrects the columns it touched.
    The round costs ``O(d + nnz)`` instead of one pass over ``d`` per partition. Other
    changes (dense ones, L1) are added one by one with :meth:`SagaChange.add_model`.
    """
    groups: dict[tuple[int, int], list[tuple[SagaChange, float, float]]] = {}
    for change in changes:
        linear = change.linear_drift() if isinstance(change, SagaChange) else None
        if linear is None:
            change.add_model(out, weight)
            continue
        key = (change.W0.ctypes.data, change.M0.ctypes.data)
        groups.setdefault(key, []).append((change, *linear))
    for group in groups.values():
        first = group[0][0]
        view = _rows(out, first.K)
        A = sum(a - 1.0 for _, a, _ in group)
        B = sum(b for _, _, b in group)
        _add_linear(first.W0, first.M0, first.d, A, B, float(weight), view)
        for change, a, b in group:
            res = change.result
            _fix_touched(change.W0, change.M0, res.indices, res.model, a, b, float(weight),
                         view)
            if res.intercept is not None:
                view[:, change.d] += weight * res.intercept[0]
