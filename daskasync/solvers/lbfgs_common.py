"""What the L-BFGS solvers share: the curvature memory and its two-loop recursion, the
first step, and the sufficient-decrease test (Nocedal and Wright, *Numerical
Optimization*, 2nd ed., 2006: Algorithm 7.4 and eq. 7.20 for the recursion and its initial
scaling, eq. 3.6a for the Armijo condition). Cluster-free."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constraints import Interval, check

__all__ = ["CurvatureMemory", "LbfgsOptions", "armijo", "first_step"]

#: Armijo's sufficient-decrease constant (Nocedal and Wright's usual ``c1``)
ARMIJO_C1 = 1e-4
#: a pair is kept only if ``s'y > CURVATURE_EPS * |s| |y|`` (a positive-definite update)
CURVATURE_EPS = 1e-10


@dataclass(frozen=True)
class LbfgsOptions:
    """Options of the L-BFGS solvers: ``memory``, the curvature pairs kept (scikit-learn's
    and scipy's default 10)."""

    memory: int = 10

    def __post_init__(self) -> None:
        check("memory", self.memory, Interval("int", 1))


class CurvatureMemory:
    """The last ``m`` curvature pairs ``(s, y)`` and the two-loop recursion.

    Examples
    --------
    >>> import numpy as np
    >>> mem = CurvatureMemory(3)
    >>> A = np.diag([1.0, 4.0])                 # a quadratic's Hessian
    >>> for s in (np.array([1.0, 0.0]), np.array([0.0, 1.0])):
    ...     _ = mem.push(s, A @ s)
    >>> mem.direction(np.array([2.0, 8.0])).tolist()   # -A^{-1} g
    [-2.0, -2.0]
    >>> mem.direction(A @ np.array([0.0, 1.0])).tolist()   # the newest pair's secant
    [-0.0, -1.0]
    """

    def __init__(self, m: int) -> None:
        self.m = int(m)
        self.s: list[np.ndarray] = []
        self.y: list[np.ndarray] = []
        self.rho: list[float] = []

    def __len__(self) -> int:
        return len(self.s)

    def push(self, s: np.ndarray, y: np.ndarray) -> bool:
        """Keep the pair if it satisfies the curvature condition; returns whether kept."""
        sy = float(np.vdot(s, y))
        if not sy > CURVATURE_EPS * float(np.linalg.norm(s)) * float(np.linalg.norm(y)):
            return False
        if len(self.s) == self.m:
            del self.s[0], self.y[0], self.rho[0]
        self.s.append(np.array(s, dtype=np.float64))
        self.y.append(np.array(y, dtype=np.float64))
        self.rho.append(1.0 / sy)
        return True

    def reset(self) -> None:
        self.s.clear()
        self.y.clear()
        self.rho.clear()

    def direction(self, g: np.ndarray) -> np.ndarray:
        """``-H g`` with ``H`` the L-BFGS inverse-Hessian approximation, scaled initially by
        ``s'y / y'y`` of the newest pair (``-g`` without pairs)."""
        q = np.array(g, dtype=np.float64)
        alphas = []
        for s, y, rho in zip(reversed(self.s), reversed(self.y), reversed(self.rho),
                             strict=True):
            a = rho * float(np.vdot(s, q))
            q -= a * y
            alphas.append(a)
        if self.s:
            q *= float(np.vdot(self.s[-1], self.y[-1])) / float(np.vdot(self.y[-1], self.y[-1]))
        for (s, y, rho), a in zip(zip(self.s, self.y, self.rho, strict=True),
                                  reversed(alphas), strict=True):
            b = rho * float(np.vdot(y, q))
            q += (a - b) * s
        return -q

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The pairs as two ``(k, ...)`` arrays (for a run's saved state)."""
        if not self.s:
            return np.zeros((0,)), np.zeros((0,))
        return np.stack(self.s), np.stack(self.y)

    def load(self, s: np.ndarray | None, y: np.ndarray | None) -> None:
        """Restore pairs saved by :meth:`arrays`."""
        self.reset()
        if s is None or y is None or len(s) == 0:
            return
        for si, yi in zip(s, y, strict=True):
            self.push(si, yi)


def first_step(g: np.ndarray) -> float:
    """The trial step of the first iteration, along ``-g``: ``1 / |g|`` (capped at 1), so the
    first move has unit length, as scipy's L-BFGS-B does."""
    norm = float(np.linalg.norm(g))
    return min(1.0, 1.0 / norm) if norm > 0 else 1.0


def armijo(f_new: float, f_old: float, step: float, slope: float) -> bool:
    """Sufficient decrease: ``f_new <= f_old + c1 * step * slope`` (``slope = g'd < 0``),
    up to the rounding of ``f`` itself (``8 eps |f_old|``): at the precision floor a step
    that does not raise ``f`` is accepted rather than halved forever."""
    slack = 8.0 * np.finfo(np.float64).eps * abs(f_old)
    return bool(f_new <= f_old + ARMIJO_C1 * step * slope + slack)
