"""Step-size schedules: plain callables of the step count (optax style).

A schedule maps ``t`` to a step size. ``t`` counts updates in units of a full synchronous
round: ``t = k`` after ``k`` synchronous rounds, and ``t = k / P`` after ``k`` asynchronous
updates over ``P`` partitions, so that ``gamma / sqrt(t + 1)`` is MLlib's schedule for SGD and
ASYNC's ``gamma / sqrt(k / P + 1)`` for ASGD.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .constraints import Interval, check

__all__ = ["Schedule", "constant", "inv_sqrt", "make_schedule"]

Schedule = Callable[[float], float]


@dataclass(frozen=True)
class constant:  # noqa: N801 - reads like a function, as optax's schedules do
    """Constant step ``gamma``.

    Examples
    --------
    >>> constant(0.5)(10)
    0.5
    """

    gamma: float

    def __call__(self, t: float) -> float:
        return self.gamma


@dataclass(frozen=True)
class inv_sqrt:  # noqa: N801
    """``gamma / sqrt(t + 1)`` (Spark MLlib's SGD schedule, ASYNC's ASGD schedule).

    Examples
    --------
    >>> inv_sqrt(1.0)(3)
    0.5
    """

    gamma: float

    def __call__(self, t: float) -> float:
        return self.gamma / math.sqrt(t + 1.0)


def make_schedule(schedule: str | Schedule, gamma: float | None) -> Schedule:
    """Build a schedule from ``"constant"``, ``"invsqrt"`` or a callable.

    Parameters
    ----------
    schedule : {"constant", "invsqrt"} or callable
        A callable is used as is: ``step = schedule(t)``.
    gamma : float
        Base step (must be > 0) for the named schedules.

    Examples
    --------
    >>> make_schedule("invsqrt", 2.0)(0)
    2.0
    """
    if callable(schedule) and not isinstance(schedule, str):
        return schedule
    if schedule not in ("constant", "invsqrt"):
        raise ValueError(
            f"step_schedule: unknown schedule {schedule!r}; choose 'constant', 'invsqrt' "
            "or pass a callable t -> step"
        )
    check("step_size", gamma, Interval("real", 0, closed="neither"))
    return constant(float(gamma)) if schedule == "constant" else inv_sqrt(float(gamma))
