"""Solvers, registered by name (dask-glm style). Each is a coroutine
``run(engine, problem, theta, schedule, fraction, monitor) -> theta``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import Monitor, Problem, StopCriteria
from .saga import run_asaga, run_saga
from .sgd import run_asgd, run_sgd, sgd_step


@dataclass(frozen=True)
class SolverSpec:
    """A registered solver: its loop and whether it runs synchronous rounds."""

    name: str
    run: Any
    synchronous: bool
    default_schedule: str = "invsqrt"
    history: bool = False


SOLVERS: dict[str, SolverSpec] = {
    "sgd": SolverSpec("sgd", run_sgd, synchronous=True),
    "asgd": SolverSpec("asgd", run_asgd, synchronous=False),
    "saga": SolverSpec("saga", run_saga, synchronous=True, default_schedule="constant",
                       history=True),
    "asaga": SolverSpec("asaga", run_asaga, synchronous=False, default_schedule="constant",
                        history=True),
}

__all__ = ["SOLVERS", "SolverSpec", "Monitor", "Problem", "StopCriteria", "sgd_step"]
