"""What the benchmark measures on a trace: relative suboptimality
(:func:`daskasync.problem.relative_suboptimality`, re-exported here), time to a target, and
medians over runs that may never have got there."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..problem import relative_suboptimality

__all__ = ["relative_suboptimality", "time_to_target"]


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
