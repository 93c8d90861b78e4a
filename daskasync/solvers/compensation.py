"""How wrong a stale partition gradient carried to the current iterate can be, and when an
asynchronous iteration should wait for it instead (cluster-free).

A partition's gradient sum computed at an older iterate ``x_p`` is carried to ``x`` along
the measured change of the average gradient per row (:class:`~daskasync.solvers.albfgs.
GradientPath`): ``g_p(x) ~ g_p(x_p) + r_p (path(x) - path(x_p))``. Its error is
``(H_p - r_p H) (x - x_p)`` to first order, where ``H_p`` is the partition's Hessian and
``H`` the average one per row: with rows dealt to partitions at random, ``H_p / r_p``
differs from ``H`` by a sampling error that does not shrink as the run converges (it grows
with ``d / r_p``). :class:`CompensationError` measures its size relative to the distance
carried, on the partitions whose results close an iteration (each partition's own
gradient change against the others' average, leave one out), and bounds the error of the
stale partitions carried now, their sampling errors being independent (they add in
quadrature).

The norm test (Byrd, Chin, Nocedal and Wu, *Sample size selection in optimization
methods for machine learning*, Math. Program. 134, 2012; Carter, *On the global
convergence of trust region algorithms using inexact gradient information*, SIAM J.
Numer. Anal. 28, 1991): an inexact gradient ``g~ = g + e`` gives a descent direction
``-H g~`` for the true gradient whenever ``|e|_H < |g~|_H``, since
``g'H g~ >= |g~|_H (|g~|_H - |e|_H)``; with ``|e|_H <= |g~|_H / 2`` (:data:`ERROR_BOUND`)
the true slope is at least half the estimated one. Past that bound a unit quasi-Newton step
lands where the true gradient is about the error itself, so iterating on the estimate
makes no progress; the iteration waits for stale partitions until the bound holds. The norm
is the one of the initial inverse Hessian ``H0``, of which the L-BFGS matrix is a scaled
low-rank update (Euclidean without ``H0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg.blas import ddot

__all__ = ["ERROR_BOUND", "CompensationError"]

#: the norm test's bound on the stale partitions' carried error, relative to the
#: aggregate gradient: at most one half keeps the true slope at least half the estimated one
ERROR_BOUND = 0.5


class CompensationError:
    """The compensation error's size per unit of distance carried (``ratio``), measured at
    the end of every iteration, and the bound it gives on the error of a sum of carried
    gradients.

    Examples
    --------
    Partitions sharing the Hessian per row are carried exactly:

    >>> import numpy as np
    >>> err = CompensationError()
    >>> H, s = np.diag([1.0, 2.0]), np.array([1.0, 1.0])
    >>> parts = {p: r * (H @ s) for p, r in enumerate([2, 3, 5])}  # from path 0 to path H s
    >>> err.measure(parts, {0: 2, 1: 3, 2: 5}, {p: np.zeros(2) for p in parts})
    0.0
    >>> err.bound([(4.0, H @ s)])
    0.0
    """

    def __init__(self, h0: Any = None) -> None:
        self.h0 = h0
        self.ratio: float | None = None  #: error per row over distance per row, measured

    def norm2(self, v: np.ndarray) -> float:
        """The squared norm of ``v`` in the metric of ``H0``."""
        flat = np.ascontiguousarray(v, dtype=np.float64).reshape(-1)
        return float(ddot(flat, flat if self.h0 is None else self.h0.apply(flat)))

    def measure(self, parts: dict[int, np.ndarray], rows: dict[int, int],
                origins: dict[int, np.ndarray]) -> float | None:
        """Measure the ratio from the partitions whose results closed an iteration at
        ``x``: ``parts[p] = r_p path(x_p) + g_p(x) - g_p(x_p)`` (``r_p`` times partition
        ``p``'s own estimate of the path at ``x``), ``rows[p] = r_p`` and ``origins[p] =
        path(x_p)``. Each partition's estimate is compared with the others' (leave one
        out), and the squared deviations, weighted by ``r_p^2`` as they enter a sum of
        gradients, are pooled against the distances carried: ``ratio^2 = sum r_p^2
        |dev_p|^2 / sum r_p^2 |path(x) - path(x_p)|^2``. Keeps the last measured value
        when fewer than two partitions or no distance were measured; returns the ratio."""
        total_rows = float(sum(rows[p] for p in parts))
        if len(parts) < 2 or not total_rows:
            return self.ratio
        path = sum(parts[p] for p in sorted(parts)) / total_rows
        num = den = 0.0
        for p in sorted(parts):
            r = float(rows[p])
            deviation = (parts[p] / r - path) * (total_rows / (total_rows - r))
            num += r * r * self.norm2(deviation)
            den += r * r * self.norm2(path - origins[p])
        if den > 0:
            self.ratio = float(np.sqrt(num / den))
        return self.ratio

    def bound(self, carried: list[tuple[float, np.ndarray]], stale_rows: float = 0.0,
              fresh: list[tuple[float, np.ndarray]] | None = None) -> float:
        """The error of a sum of carried gradients, each group ``(q, shift)`` being the
        partitions carried by ``shift`` (a change of the path) with ``q`` the sum of
        their rows squared. The path they are carried to is itself the fresh partitions'
        estimate, ``fresh = [(r_p, path(x) - path(x_p))]``, whose error every one of the
        ``stale_rows`` carries; the two are independent:
        ``ratio^2 (sum q |shift|^2 + stale_rows^2 sum r_p^2 |shift_p|^2 / (sum r_p)^2)``,
        square-rooted (0 before any measurement)."""
        if not self.ratio:
            return 0.0
        total = sum(q * self.norm2(s) for q, s in carried)
        fresh_rows = sum(r for r, _ in fresh or ())
        if fresh_rows:
            total += (stale_rows / fresh_rows) ** 2 * sum(r * r * self.norm2(s)
                                                           for r, s in fresh or ())
        return self.ratio * float(np.sqrt(total))

    def trusted(self, gradient: np.ndarray, carried: list[tuple[float, np.ndarray]],
                stale_rows: float = 0.0, fresh: list[tuple[float, np.ndarray]] | None = None,
                limit: float = ERROR_BOUND) -> bool:
        """The norm test: the :meth:`bound` on the carried part's error is at most
        ``limit`` times the norm of the aggregate ``gradient`` (both in the metric of
        ``H0``)."""
        error = self.bound(carried, stale_rows, fresh)
        return error == 0.0 or error <= limit * float(np.sqrt(self.norm2(gradient)))
