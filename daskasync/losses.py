"""Losses ("families") for linear models.

A loss works on margins ``z = X @ coef + intercept`` and labels ``y``; its gradient with
respect to ``coef`` for sample ``i`` is ``derivative(z_i, y_i) * x_i``. This one scalar per
sample is what SAGA's gradient history stores (see :mod:`daskasync.saga`).

All functions are pure numpy and run on the workers.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import expit, log_expit, logsumexp, softmax

__all__ = ["Loss", "LogisticLoss", "SquaredLoss", "MultinomialLoss", "get_loss", "LOSSES"]


class Loss:
    """Base class of a per-sample loss ``l(z, y)`` on margins ``z``.

    Subclasses implement :meth:`value` and :meth:`derivative` (both vectorized) and
    :meth:`check_labels`.
    """

    name: ClassVar[str] = "loss"
    #: Upper bound of the second derivative of ``l`` in ``z`` (for Lipschitz step sizes).
    curvature: ClassVar[float] = 1.0
    #: True for losses over ``K`` margins per sample (``z`` of shape ``(m, K)``)
    multiclass: ClassVar[bool] = False

    def second_derivative(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample ``d^2 l / dz^2`` (binary losses; used by reference Newton solves)."""
        raise NotImplementedError

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

    def second_derivative(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = expit(z)
        return p * (1.0 - p)

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

    def second_derivative(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.ones_like(z)


class MultinomialLoss(Loss):
    """Multinomial logistic (softmax cross-entropy) over ``K`` margins per sample.

    Labels are class indices ``0 .. K-1`` (floats holding integers). The derivative in the
    margins is ``softmax(z) - onehot(y)``: ``K`` scalars per sample, which is what the
    SAGA history keeps for this loss.

    Examples
    --------
    >>> import numpy as np
    >>> loss = MultinomialLoss()
    >>> z = np.zeros((1, 4)); y = np.array([2.0])
    >>> round(float(loss.value(z, y)[0]), 6) == round(float(np.log(4)), 6)
    True
    >>> loss.derivative(z, y).tolist()
    [[0.25, 0.25, -0.75, 0.25]]
    """

    name = "multinomial"
    curvature = 0.5  # largest eigenvalue of diag(p) - p p^T is at most 1/2
    multiclass = True

    def value(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        idx = y.astype(np.intp)
        return logsumexp(z, axis=-1) - np.take_along_axis(z, idx[..., None], axis=-1)[..., 0]

    def derivative(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = softmax(z, axis=-1)
        p[np.arange(len(y)), y.astype(np.intp)] -= 1.0
        return p

    def check_labels(self, y: np.ndarray) -> None:
        if (y < 0).any() or (y != np.round(y)).any():
            raise ValueError(
                "y: the multinomial loss needs class indices 0..K-1 (estimators encode any "
                "labels for you)"
            )


LOSSES: dict[str, type[Loss]] = {
    "logistic": LogisticLoss,
    "squared": SquaredLoss,
    "multinomial": MultinomialLoss,
}


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
