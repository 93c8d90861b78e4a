"""What the L-BFGS solvers share: the curvature memory and its two-loop recursion, the
first step, and the sufficient-decrease test (Nocedal and Wright, *Numerical
Optimization*, 2nd ed., 2006: Algorithm 7.4 and eq. 7.20 for the recursion and its initial
scaling, eq. 3.6a for the Armijo condition). Cluster-free."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.linalg.blas import daxpy, ddot

from ..constraints import Interval, Options, check

__all__ = ["CurvatureMemory", "LbfgsOptions", "PairsInState", "armijo", "first_step"]

#: Armijo's sufficient-decrease constant (Nocedal and Wright's usual ``c1``)
ARMIJO_C1 = 1e-4
#: a pair is kept only if ``s'y > CURVATURE_EPS * |s| |y|`` (a positive-definite update)
CURVATURE_EPS = 1e-10


@dataclass(frozen=True)
class LbfgsOptions:
    """Options of the L-BFGS solvers.

    ``memory``: the curvature pairs kept (scikit-learn's and scipy's default 10).

    ``precondition``: the initial inverse Hessian ``H0``
    (:mod:`~daskasync.solvers.preconditioners`, built from one pass over the data at the
    start of a run). ``"none"``: the identity scaled by ``s'y / y'y``, as scikit-learn's
    and scipy's L-BFGS. ``"jacobi"``: the inverse of :meth:`Problem.hessian_diagonal_bound
    <daskasync.Problem.hessian_diagonal_bound>`, ``c mean_i x_ij^2 + lambda`` per
    feature. ``"standardize"`` (default): the inverse Hessian at ``theta = 0`` with the
    features' covariance replaced by its diagonal and their means kept, which is L-BFGS
    on standardized features (centered when there is an intercept) written in the user's
    own coefficients. With ``"jacobi"`` and ``"standardize"`` the iterates do not depend
    on the features' units, so unscaled data need no ``StandardScaler``; where the
    features already share a scale and a mean the extra pass buys little, and on some
    sets it costs iterations (both measured on the benchmarks page)."""

    memory: int = 10
    precondition: str = "standardize"

    def __post_init__(self) -> None:
        check("memory", self.memory, Interval("int", 1))
        check("precondition", self.precondition, Options("jacobi", "none", "standardize"))


class CurvatureMemory:
    """The last ``m`` curvature pairs ``(s, y)`` and the two-loop recursion, with an
    optional initial inverse Hessian ``h0`` (symmetric positive definite, with
    ``h0.apply(q)``; :mod:`~daskasync.solvers.preconditioners`): ``gamma H0`` with
    ``gamma = s'y / y' H0 y`` of the newest pair, which is L-BFGS run on the variables
    ``H0^(-1/2) theta`` (Nocedal and Wright 2006, sec. 7.2; Liu and Nocedal 1989, sec. 4).
    Without ``h0``, ``H0`` is the identity.

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

    def __init__(self, m: int, h0: Any = None) -> None:
        self.m = int(m)
        self.h0 = h0
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
        yy = self.y[-1].reshape(-1)
        self._yhy = ddot(yy, yy if self.h0 is None else self.h0.apply(yy))  # for gamma
        return True

    def reset(self) -> None:
        self.s.clear()
        self.y.clear()
        self.rho.clear()

    def direction(self, g: np.ndarray) -> np.ndarray:
        """``-H g`` with ``H`` the L-BFGS inverse-Hessian approximation (``-H0 g``
        without pairs).

        The recursion runs in place on one copy of ``g`` with BLAS ``ddot``/``daxpy``: no
        temporary of the model's size per pair."""
        out = np.array(g, dtype=np.float64)
        q = out.reshape(-1)  # a view: the model may be a (K, d) matrix
        flat = [(s.reshape(-1), y.reshape(-1), rho)
                for s, y, rho in zip(self.s, self.y, self.rho, strict=True)]
        alphas = []
        for s, y, rho in reversed(flat):
            a = rho * ddot(s, q)
            q = daxpy(y, q, a=-a)
            alphas.append(a)
        if self.h0 is not None:
            q = self.h0.apply(q)
        if flat:
            s, y, _ = flat[-1]
            q *= ddot(s, y) / self._yhy
        for (s, y, rho), a in zip(flat, reversed(alphas), strict=True):
            q = daxpy(s, q, a=a - rho * ddot(y, q))
        q *= -1.0
        return q.reshape(out.shape)

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


class PairsInState:
    """For the L-BFGS solvers: the state's curvature pairs (fields ``s`` and ``y``) are
    read from the run's :class:`CurvatureMemory` when the state is read (a checkpoint, the
    end of a run), not stacked at every iteration (``2 m`` model-sized copies each time).
    Code inside the solver updates the other fields on ``self._state``."""

    _memory: CurvatureMemory | None = None
    _state: Any

    @property
    def state(self) -> Any:
        if self._memory is None:
            return self._state
        s, y = self._memory.arrays()
        return replace(self._state, s=s, y=y)

    @state.setter
    def state(self, value: Any) -> None:
        self._state = value

    def _attach(self, memory: CurvatureMemory) -> CurvatureMemory:
        """Fill ``memory`` from the state's pairs; from now on the state reads them from
        it."""
        self._memory = None
        memory.load(self._state.s, self._state.y)
        self._memory = memory
        return memory


def first_step(slope: float) -> float:
    """The trial step of an iteration without curvature pairs, along ``d`` with slope
    ``g'd < 0``: ``1 / sqrt(-g'd)`` capped at 1, a move of unit length in the metric of the
    initial inverse Hessian (along ``-g``: ``1 / |g|``, as scipy's L-BFGS-B does)."""
    return min(1.0, 1.0 / float(np.sqrt(-slope))) if slope < 0 else 1.0


def armijo(f_new: float, f_old: float, step: float, slope: float) -> bool:
    """Sufficient decrease: ``f_new <= f_old + c1 * step * slope`` (``slope = g'd < 0``),
    up to the rounding of ``f`` itself (``8 eps |f_old|``): at the precision floor a step
    that does not raise ``f`` is accepted rather than halved forever."""
    slack = 8.0 * np.finfo(np.float64).eps * abs(f_old)
    return bool(f_new <= f_old + ARMIJO_C1 * step * slope + slack)
