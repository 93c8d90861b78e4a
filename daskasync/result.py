"""What a run returns: coefficients, counters and the history of records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Record", "FitResult"]


@dataclass(frozen=True, slots=True)
class Record:
    """One history record."""

    time: float  #: seconds since the run started
    update: int  #: applied updates so far
    epoch: float  #: passes over the data (rows processed / n)
    objective: float  #: full objective at this point (NaN if not evaluated)
    mean_staleness: float  #: mean staleness of the results applied since the previous record
    max_staleness: int  #: max staleness of the results applied since the previous record


@dataclass
class FitResult:
    """Outcome of a solver run.

    Attributes
    ----------
    coef : ndarray
        Coefficients, shape ``(d,)`` (``(K, d)`` for multinomial models).
    intercept : float or ndarray
    updates : int
        Applied model updates.
    epochs : float
        Passes over the data.
    wall_time : float
        Seconds from the first submission to the last applied update.
    objective : float
        Final objective on the full data.
    history : list of Record
    worker_stats : dict
        Per worker address: tasks, mean task time, mean/max staleness, dropped results.
    partition_stats : list of dict
    dropped : int
        Results dropped for staleness.
    stop_reason : str
    converged : bool
        True when a tolerance stopped the run.
    recovered : dict
        What worker losses and joins cost the run (all 0 when no worker came or went):
        ``tasks`` launched again, data blocks lost with no copy left (``blocks_lost``) and
        re-created from the driver (``blocks``), lost blocks replaced by another copy
        (``blocks_from_copies``), ``model_versions`` placed again, and ``blocks_copied`` to
        workers that joined (see :meth:`daskasync.engine.recovery.Recovery.counts`).
    settings : dict
        The run's resolved settings: ``step_size``, ``combine``, the solver's options, ...,
        and ``avg_task_time``, the mean compute time of the warm-up tasks that scales
        straggler delays (see ``minimize(avg_task_time=...)``), and ``model_views``, the
        partitions whose tasks were shipped the model on their block's columns only
        (sparse, wide data: see ``minimize(transport=...)``).
    """

    solver: str
    coef: np.ndarray
    intercept: Any
    updates: int
    epochs: float
    wall_time: float
    objective: float
    history: list[Record]
    worker_stats: dict[str, dict]
    partition_stats: list[dict]
    dropped: int
    stop_reason: str
    converged: bool
    theta: np.ndarray = field(repr=False)
    grad_norm: float = float("nan")
    step_size: float = float("nan")
    settings: dict = field(default_factory=dict, repr=False)
    state: Any = field(default=None, repr=False)
    #: applied results per staleness value (a histogram)
    staleness_counts: dict[int, int] = field(default_factory=dict, repr=False)
    recovered: dict[str, int] = field(default_factory=dict)

    def history_array(self, name: str) -> np.ndarray:
        """One field of the history as an array, e.g. ``result.history_array("objective")``."""
        return np.array([getattr(r, name) for r in self.history])

    @property
    def mean_staleness(self) -> float:
        """Mean staleness over all collected results (all workers)."""
        tasks = sum(w["tasks"] for w in self.worker_stats.values())
        total = sum(w["mean_staleness"] * w["tasks"] for w in self.worker_stats.values())
        return total / tasks if tasks else 0.0

    def to_dict(self) -> dict:
        """JSON-friendly summary (no arrays but the coefficients as lists)."""
        return {
            "solver": self.solver,
            "coef": np.asarray(self.coef).tolist(),
            "intercept": np.asarray(self.intercept).tolist(),
            "updates": self.updates,
            "epochs": self.epochs,
            "wall_time": self.wall_time,
            "objective": self.objective,
            "grad_norm": self.grad_norm,
            "dropped": self.dropped,
            "stop_reason": self.stop_reason,
            "converged": self.converged,
            "mean_staleness": self.mean_staleness,
            "history": [asdict(r) for r in self.history],
            "worker_stats": self.worker_stats,
            "recovered": self.recovered,
        }

    def __repr__(self) -> str:
        return (
            f"FitResult(solver={self.solver!r}, objective={self.objective:.6g}, "
            f"updates={self.updates}, epochs={self.epochs:.3g}, wall_time={self.wall_time:.3g}s, "
            f"stop_reason={self.stop_reason!r}, dropped={self.dropped})"
        )
