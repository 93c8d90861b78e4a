"""Solvers, registered by name (dask-glm style): :data:`SOLVERS` maps a name to a
:class:`Solver` class that owns its options, its typed state, its automatic step rule and
its loop."""

from __future__ import annotations

from .albfgs import ALBFGS
from .asaga import ASAGA, AsagaState
from .asgd import ASGD
from .base import RunContext, Solver, SolverState, apply_update, sum_results
from .lbfgs import LBFGS, LbfgsState
from .registry import SOLVERS, get_solver, register_solver
from .saga import SAGA, SagaState
from .sgd import SGD, sgd_step

__all__ = [
    "ALBFGS",
    "ASAGA",
    "LBFGS",
    "LbfgsState",
    "ASGD",
    "SAGA",
    "SGD",
    "SOLVERS",
    "AsagaState",
    "RunContext",
    "SagaState",
    "Solver",
    "SolverState",
    "apply_update",
    "get_solver",
    "register_solver",
    "sgd_step",
    "sum_results",
]
