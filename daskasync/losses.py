"""Losses ("families") for linear models.

A loss works on margins ``z = X @ coef + intercept`` and labels ``y``; its gradient with
respect to ``coef`` for sample ``i`` is ``derivative(z_i, y_i) * x_i``. This one scalar per
sample is what SAGA's gradient history stores (see :mod:`daskasync.saga`).

All functions are pure numpy and run on the workers.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import expit, log_expit

__all__ = ["Loss", "LogisticLoss", "SquaredLoss", "get_loss", "LOSSES"]


class Loss:
    """Base class of a per-sample loss ``l(z, y)`` on margins ``z``.

    Subclasses implement :meth:`value` and :meth:`derivative` (both vectorized) and
    :meth:`check_labels`.
    """

    name: ClassVar[str] = "loss"
    #: Upper bound of the second derivative of ``l`` in ``z`` (for Lipschitz step sizes).
    curvature: ClassVar[float] = 1.0

    def value(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample loss values."""
        raise NotImplementedError

    def derivative(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample derivative ``dl/dz``."""
        raise NotImplementedError

    def check_labels(self, y: np.ndarray) -> None:
        """Raise ``ValueError`` if the labels do not fit this loss."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class LogisticLoss(Loss):
    """Binary logistic loss ``log(1 + exp(-y z))`` with labels in ``{-1, +1}``.

    Examples
    --------
    >>> import numpy as np
    >>> loss = LogisticLoss()
    >>> float(loss.value(np.array([0.0]), np.array([1.0]))[0])  # log(2)
    0.6931471805599453
    """

    name = "logistic"
    curvature = 0.25

    def value(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        return -log_expit(y * z)

    def derivative(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        return -y * expit(-y * z)

    def check_labels(self, y: np.ndarray) -> None:
        bad = ~np.isin(y, (-1.0, 1.0))
        if bad.any():
            raise ValueError(
                "y: the logistic loss needs labels in {-1, +1}; found "
                f"{np.unique(y[bad])[:5].tolist()} (estimators map any two classes for you)"
            )


class SquaredLoss(Loss):
    """Least-squares loss ``(z - y)^2 / 2``.

    Examples
    --------
    >>> import numpy as np
    >>> float(SquaredLoss().derivative(np.array([3.0]), np.array([1.0]))[0])
    2.0
    """

    name = "squared"
    curvature = 1.0

    def value(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = z - y
        return 0.5 * r * r

    def derivative(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        return z - y


LOSSES: dict[str, type[Loss]] = {"logistic": LogisticLoss, "squared": SquaredLoss}


def get_loss(loss: str | Loss) -> Loss:
    """Return a :class:`Loss` from its name or instance.

    Examples
    --------
    >>> get_loss("logistic")
    LogisticLoss()
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(f"loss: unknown loss {loss!r}; choose one of {sorted(LOSSES)} or a Loss")
