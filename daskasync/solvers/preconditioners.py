"""Initial inverse Hessians ``H0`` for the L-BFGS solvers, built from one pass over the data
(every column's sum and sum of squares). Cluster-free.

Both are exact inverses of a model of the Hessian at ``theta = 0``. There, the logistic and
squared losses have the curvature ``c`` of every row (an upper bound of it elsewhere, and
for the multinomial loss), so the Hessian is ``c E[x x'] + lambda I``, with ``x`` a row
followed by a 1 when the model has an intercept. What differs is the model of ``E[x x']``:

* :class:`DiagonalInverse` (``"jacobi"``) keeps its diagonal, ``c mean_i x_ij^2 +
  lambda``. That removes the features' scales, but a feature's mean counts as curvature
  of its own coefficient. Features that are all positive (counts, pixels, one-hot
  indicators) share a large common direction, their mean, that the diagonal spreads over
  every coordinate.
* :class:`StandardizedInverse` (``"standardize"``) replaces the features' *covariance* by
  its diagonal (the variances) and keeps their means exactly: ``E[x x'] ~ V + m m'``.
  With an intercept, the model Hessian's inverse is that of L-BFGS on centered and scaled
  features (what ``StandardScaler`` does), written in the user's own coefficients:
  ``H0 = S diag(1 / (c v + lambda), 1 / c) S'`` with ``S = [[I, 0], [-m', 1]]``. Without
  one, the Sherman-Morrison formula inverts ``diag(c v + lambda) + c m m'``. Either way
  ``H0 q`` costs ``O(d)`` per class.

With either, L-BFGS's iterates do not change when a feature is multiplied by a constant
(the coefficient is divided by it; exactly so without a penalty), and, with
``StandardizedInverse`` and an intercept, when a constant is added to a feature (the
intercept absorbs it): the solver sees the same problem whatever units the data come in
(Nocedal and Wright 2006, sec. 7.2 on scaling ``H0``; Liu and Nocedal 1989, sec. 4).

A feature whose variance (or mean square) is 0 contributes nothing to the gradient but
through the penalty; its entry takes the smallest positive one, so the model can be
inverted. ``v = mean x^2 - m^2`` is computed from float64 sums: a feature whose mean is
over ``1e6`` times its standard deviation loses its variance to rounding and is treated
as nearly constant.
"""

from __future__ import annotations

import numpy as np

from ..problem import Problem

__all__ = ["DiagonalInverse", "StandardizedInverse", "from_column_sums"]


class DiagonalInverse:
    """``H0 q = scale * q`` (``scale`` positive, shaped like the model).

    Examples
    --------
    >>> import numpy as np
    >>> DiagonalInverse(np.array([2.0, 0.5])).apply(np.array([1.0, 4.0])).tolist()
    [2.0, 2.0]
    """

    def __init__(self, scale: np.ndarray) -> None:
        self.scale = np.ascontiguousarray(scale, dtype=np.float64)

    def apply(self, q: np.ndarray) -> np.ndarray:
        """``H0 q`` (a new array, shaped like ``q``)."""
        return self.scale.reshape(q.shape) * q


class StandardizedInverse:
    """``H0`` of the standardized features (see the module description): ``mean`` the
    features' means ``(d,)``, ``inv`` the inverse diagonal ``1 / (c v + lambda)`` (with
    ``1 / c`` for the intercept), shaped like the model (``(dim,)`` or ``(K, dim)``),
    ``intercept`` whether the model's last column is one, ``c`` the loss's curvature.

    Examples
    --------
    With an intercept, ``H0`` inverts ``c [x; 1][x; 1]'`` where ``x`` has the given
    means and variances (here a feature of mean 2 and variance 1, ``c = 1``):

    >>> import numpy as np
    >>> h0 = StandardizedInverse(np.array([2.0]), np.array([1.0, 1.0]), True, 1.0)
    >>> H = np.array([[1.0 + 4.0, 2.0], [2.0, 1.0]])       # E[[x, 1]'[x, 1]]
    >>> np.allclose(h0.apply(H @ np.array([0.3, -1.2])), [0.3, -1.2])
    True
    """

    def __init__(self, mean: np.ndarray, inv: np.ndarray, intercept: bool, c: float) -> None:
        self.mean = np.ascontiguousarray(mean, dtype=np.float64)
        self.inv = np.ascontiguousarray(inv, dtype=np.float64)
        self.intercept = bool(intercept)
        self.c = float(c)
        rows = self.inv.reshape(-1, self.inv.shape[-1])
        if not self.intercept:
            am = rows * self.mean
            self._am = am  # A m, per class
            self._den = 1.0 + self.c * (am * self.mean).sum(axis=1)

    def apply(self, q: np.ndarray) -> np.ndarray:
        """``H0 q`` (a new array, shaped like ``q``)."""
        dim = self.inv.shape[-1]
        Q = q.reshape(-1, dim)
        inv = self.inv.reshape(-1, dim)
        d = self.mean.shape[0]
        if self.intercept:
            u = Q.copy()
            u[:, :d] -= np.multiply.outer(Q[:, d], self.mean)
            u *= inv
            u[:, d] -= u[:, :d] @ self.mean
        else:
            coef = self.c * (Q * self._am).sum(axis=1) / self._den
            u = inv * Q - coef[:, None] * self._am
        return u.reshape(q.shape)


def from_column_sums(kind: str, problem: Problem, sums: np.ndarray
                     ) -> DiagonalInverse | StandardizedInverse | None:
    """The initial inverse Hessian ``kind`` (``"none"``, ``"jacobi"`` or
    ``"standardize"``) of ``problem`` from the columns' sums ``sums[0]`` and sums of
    squares ``sums[1]`` over all rows (:func:`daskasync.tasks.column_sums_kernel`).

    Examples
    --------
    >>> import numpy as np
    >>> from daskasync.losses import SquaredLoss
    >>> from daskasync.penalties import L2
    >>> p = Problem(SquaredLoss(), L2(0.0), True, n=2, d=1)
    >>> sums = np.array([[4.0], [10.0]])       # the column [1, 3]: mean 2, variance 1
    >>> from_column_sums("jacobi", p, sums).scale.tolist()
    [0.2, 1.0]
    >>> from_column_sums("standardize", p, sums).inv.tolist()
    [1.0, 1.0]
    """
    if kind == "none":
        return None
    mean = sums[0] / problem.n
    sq_mean = sums[1] / problem.n
    if kind == "jacobi":
        return DiagonalInverse(1.0 / problem.hessian_diagonal_bound(sq_mean))
    if kind == "standardize":
        var = np.maximum(sq_mean - mean * mean, 0.0)
        inv = 1.0 / problem.hessian_diagonal_bound(var)
        return StandardizedInverse(mean, inv, problem.fit_intercept, problem.loss.curvature)
    raise ValueError(f"precondition: {kind!r} is not 'none', 'jacobi' or 'standardize'")
