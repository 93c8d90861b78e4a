"""What the benchmark measures on a trace: relative suboptimality, time to a target, and
medians over runs that may never have got there."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["relative_suboptimality", "time_to_target"]


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


def time_to_target(trace: Sequence[Sequence[float]], target: float) -> float | None:
    """First time at which the relative suboptimality of ``trace`` (``[[t, r], ...]``) is
    at or below ``target``; ``None`` if never.

    Examples
    --------
    >>> time_to_target([[0.0, 1.0], [1.5, 1e-3], [3.0, 1e-5]], 1e-4)
    3.0
    >>> time_to_target([[0.0, 1.0]], 1e-4) is None
    True
    """
    for t, r in trace:
        if r <= target:
            return float(t)
    return None


def _median_or_none(values: Sequence[float | None]) -> float | None:
    """Median where a run that never reached counts as infinitely slow."""
    if not values:
        return None
    arr = np.array([math.inf if v is None else v for v in values])
    med = float(np.median(arr))
    return None if math.isinf(med) or math.isnan(med) else med
