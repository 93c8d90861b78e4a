"""The optimization problem every solver shares: ``mean_i loss(x_i . w + b, y_i) +
penalty(w)`` over ``theta = [w, b]``, its smoothness constant, the row statistics the
automatic step rules read, and the relative suboptimality ``(f - f*) / |f*|`` that the
plots and the benchmark report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .losses import Loss
from .penalties import Penalty

__all__ = ["Problem", "RowStats", "lipschitz_constant", "relative_suboptimality"]


@dataclass(frozen=True)
class Problem:
    """``min_theta mean_i loss(x_i . w + b, y_i) + penalty(w)`` over ``theta = [w, b]``.

    ``theta`` has shape ``(dim,)``, or ``(K, dim)`` for a multiclass loss with ``K``
    outputs (``dim = d + fit_intercept``)."""

    loss: Loss
    penalty: Penalty
    fit_intercept: bool
    n: int
    d: int
    n_outputs: int = 1

    @property
    def dim(self) -> int:
        return self.d + int(self.fit_intercept)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_outputs, self.dim) if self.loss.multiclass else (self.dim,)

    def coef(self, theta: np.ndarray) -> np.ndarray:
        return theta[..., : self.d]

    def intercept(self, theta: np.ndarray) -> Any:
        if not self.fit_intercept:
            return np.zeros(self.n_outputs) if theta.ndim == 2 else 0.0
        return theta[..., -1].copy() if theta.ndim == 2 else float(theta[-1])

    def objective(self, loss_sum: float, theta: np.ndarray) -> float:
        return loss_sum / self.n + self.penalty.value(theta[..., : self.d])

    def smooth_gradient(self, theta: np.ndarray) -> np.ndarray | float:
        """Gradient of the penalty's smooth part, as a ``theta``-shaped array (or 0)."""
        g = self.penalty.gradient(theta[..., : self.d])
        if isinstance(g, float):
            return g
        if self.fit_intercept:
            out = np.zeros_like(theta)
            out[..., : self.d] = g
            return out
        return g

    def prox(self, theta: np.ndarray, step: float) -> np.ndarray:
        """Apply the penalty's prox to the coefficients in place (intercept untouched)."""
        if self.penalty.has_prox:
            theta[..., : self.d] = self.penalty.prox(theta[..., : self.d], step)
        return theta

    def optimality(self, grad_sum: np.ndarray, theta: np.ndarray) -> float:
        """Sup-norm of the (proximal) gradient mapping at ``theta`` from the loss gradient
        sum: the gradient norm for smooth problems."""
        g = grad_sum / self.n + self.smooth_gradient(theta)
        if not self.penalty.has_prox:
            return float(np.abs(g).max())
        moved = self.prox(theta - g, 1.0)
        return float(np.abs(theta - moved).max())

    def hessian_diagonal_bound(self, col_sq_mean: np.ndarray) -> np.ndarray:
        """The diagonal of ``c X'X / n + lambda I`` (with ``c`` the loss's curvature bound
        and ``lambda`` the smooth penalty's strength), shaped like ``theta``: the
        Hessian's diagonal at ``theta = 0`` for the logistic and squared losses, an
        upper bound of it elsewhere; the intercept's entry is ``c``.

        ``col_sq_mean`` is every column's second moment: its mean square (the Hessian's
        own diagonal), or its variance (the standardized model of
        :mod:`~daskasync.solvers.preconditioners`). Entries that are 0
        (a column of zeros without a penalty: its gradient is always 0) are set to the
        smallest positive entry, so the diagonal can be inverted.

        Examples
        --------
        >>> from daskasync.losses import LogisticLoss
        >>> from daskasync.penalties import L2
        >>> p = Problem(LogisticLoss(), L2(0.5), True, n=4, d=2)
        >>> p.hessian_diagonal_bound(np.array([4.0, 0.0])).tolist()
        [1.5, 0.5, 0.25]
        """
        c = self.loss.curvature
        diag = np.empty(self.dim)
        diag[: self.d] = c * np.asarray(col_sq_mean, dtype=np.float64) + self.penalty.smooth_strength
        if self.fit_intercept:
            diag[-1] = c
        positive = diag[diag > 0]
        diag[diag <= 0] = positive.min() if len(positive) else 1.0
        return np.broadcast_to(diag, self.shape).copy()

    @property
    def kernel_kwargs(self) -> dict:
        """What the evaluation kernels need to know of the problem."""
        return {"loss": self.loss, "fit_intercept": self.fit_intercept}


@dataclass(frozen=True)
class RowStats:
    """Largest and mean squared row norm of the data (one pass over the blocks)."""

    max_sq_norm: float
    mean_sq_norm: float


def lipschitz_constant(max_sq_row_norm: float, problem: Problem) -> float:
    """Smoothness constant of one sample's loss plus the smooth penalty:
    ``curvature * max ||[x_i, 1]||^2 + lambda`` (Schmidt, Le Roux and Bach 2017, sec. 4.6;
    scikit-learn's ``get_auto_step_size``).

    Examples
    --------
    >>> from daskasync.losses import LogisticLoss
    >>> from daskasync.penalties import L2
    >>> lipschitz_constant(4.0, Problem(LogisticLoss(), L2(0.5), False, n=10, d=3))
    1.5
    """
    r2 = max_sq_row_norm + (1.0 if problem.fit_intercept else 0.0)
    return problem.loss.curvature * r2 + problem.penalty.smooth_strength


def relative_suboptimality(f: Any, f_star: float) -> Any:
    """``(f - f_star) / |f_star|``: a float for a scalar ``f``, an array for a sequence.

    Examples
    --------
    >>> relative_suboptimality(1.5, 1.0)
    0.5
    >>> relative_suboptimality([2.0, 1.0], -2.0)
    array([2. , 1.5])
    """
    scale = max(abs(float(f_star)), 1e-300)
    if np.ndim(f) == 0:
        return (float(f) - f_star) / scale
    return (np.asarray(f, dtype=float) - f_star) / scale
