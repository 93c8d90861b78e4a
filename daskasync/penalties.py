"""Regularizers with their proximal operators (dask-glm style).

The objective is ``mean_i l(x_i . w + b, y_i) + penalty(w)``; the intercept ``b`` is never
penalized. ``L2`` enters through the gradient; ``L1`` and ``ElasticNet`` are applied by their
proximal operator so that solutions are exactly sparse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .constraints import Interval, check

__all__ = ["Penalty", "NoPenalty", "L2", "L1", "ElasticNet", "make_penalty"]


@dataclass(frozen=True)
class Penalty:
    """Base penalty: ``value(w)``, smooth ``gradient(w)`` and ``prox(w, step)``."""

    #: the name solvers list in their ``penalties`` (what ``make_penalty`` takes)
    name: ClassVar[str] = "penalty"

    def value(self, w: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, w: np.ndarray) -> np.ndarray | float:
        """Gradient of the smooth part (``0.0`` if none)."""
        return 0.0

    def prox(self, w: np.ndarray, step: float) -> np.ndarray:
        """Proximal operator of ``step * nonsmooth part`` (identity if none)."""
        return w

    @property
    def smooth_strength(self) -> float:
        """Strong-convexity modulus added by the smooth part (``lambda`` of L2)."""
        return 0.0

    @property
    def has_prox(self) -> bool:
        return False

    @property
    def l1_strength(self) -> float:
        """Weight of the L1 part (what the prox soft-thresholds by, per unit step)."""
        return 0.0


@dataclass(frozen=True)
class NoPenalty(Penalty):
    """No regularization.

    Examples
    --------
    >>> import numpy as np
    >>> NoPenalty().value(np.ones(3))
    0.0
    """

    name: ClassVar[str] = "none"

    def value(self, w: np.ndarray) -> float:
        return 0.0


@dataclass(frozen=True)
class L2(Penalty):
    """``lam / 2 * ||w||^2``, applied through the gradient.

    Examples
    --------
    >>> import numpy as np
    >>> L2(0.5).value(np.array([2.0]))
    1.0
    """

    name: ClassVar[str] = "l2"

    lam: float

    def value(self, w: np.ndarray) -> float:
        return 0.5 * self.lam * float(np.vdot(w, w))

    def gradient(self, w: np.ndarray) -> np.ndarray | float:
        return self.lam * w

    def prox(self, w: np.ndarray, step: float) -> np.ndarray:
        return w / (1.0 + step * self.lam)

    @property
    def smooth_strength(self) -> float:
        return self.lam


@dataclass(frozen=True)
class L1(Penalty):
    """``lam * ||w||_1``, applied by soft-thresholding.

    Examples
    --------
    >>> import numpy as np
    >>> L1(1.0).prox(np.array([3.0, -0.5]), 1.0).tolist()
    [2.0, -0.0]
    """

    name: ClassVar[str] = "l1"

    lam: float

    def value(self, w: np.ndarray) -> float:
        return self.lam * float(np.abs(w).sum())

    def prox(self, w: np.ndarray, step: float) -> np.ndarray:
        t = step * self.lam
        return np.sign(w) * np.maximum(np.abs(w) - t, 0.0)

    @property
    def has_prox(self) -> bool:
        return True

    @property
    def l1_strength(self) -> float:
        return self.lam


@dataclass(frozen=True)
class ElasticNet(Penalty):
    """``lam * (l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||^2)``.

    The L2 part enters the gradient, the L1 part the prox.

    Examples
    --------
    >>> import numpy as np
    >>> ElasticNet(1.0, 0.5).value(np.array([2.0]))
    2.0
    """

    name: ClassVar[str] = "elasticnet"

    lam: float
    l1_ratio: float = 0.5

    def value(self, w: np.ndarray) -> float:
        a = self.lam * self.l1_ratio
        b = self.lam * (1.0 - self.l1_ratio)
        return a * float(np.abs(w).sum()) + 0.5 * b * float(np.vdot(w, w))

    def gradient(self, w: np.ndarray) -> np.ndarray | float:
        return self.lam * (1.0 - self.l1_ratio) * w

    def prox(self, w: np.ndarray, step: float) -> np.ndarray:
        t = step * self.lam * self.l1_ratio
        return np.sign(w) * np.maximum(np.abs(w) - t, 0.0)

    @property
    def smooth_strength(self) -> float:
        return self.lam * (1.0 - self.l1_ratio)

    @property
    def has_prox(self) -> bool:
        return self.l1_ratio > 0

    @property
    def l1_strength(self) -> float:
        return self.lam * self.l1_ratio


def make_penalty(penalty: str | Penalty | None, lam: float = 0.0, l1_ratio: float = 0.5) -> Penalty:
    """Build a penalty from a name (``"l2"``, ``"l1"``, ``"elasticnet"``, ``"none"``).

    Examples
    --------
    >>> make_penalty("l2", 0.1)
    L2(lam=0.1)
    """
    if isinstance(penalty, Penalty):
        return penalty
    # every bad lam is a ValueError (a string or None too), as make_penalty always raised
    lam = float(check("lam", lam, Interval("real", 0), error=ValueError))
    if penalty is None or penalty == "none":
        return NoPenalty()
    if penalty == "l2":
        return L2(lam)
    if penalty == "l1":
        return L1(lam)
    if penalty == "elasticnet":
        check("l1_ratio", l1_ratio, Interval("real", 0, 1))
        return ElasticNet(lam, float(l1_ratio))
    raise ValueError(
        f"penalty: unknown penalty {penalty!r}; choose one of 'l2', 'l1', 'elasticnet', 'none'"
    )
