"""daskasync: asynchrony and history for distributed optimization on Dask.

The Dask counterpart of the ASYNC engine (Soori et al., IPDPS 2020): data partitioned into
row blocks on the workers, a versioned model broadcast with history, bookkeeping of every
task's staleness, barrier policies, and synchronous/asynchronous solvers on top.
"""

from typing import TYPE_CHECKING, Any

from .api import minimize
from .data import PartitionedData
from .datasets import load_libsvm, make_epsilon_like, make_rcv1_like
from .engine import (
    SSP,
    Async,
    Barrier,
    BarrierError,
    BoundedStaleness,
    Broadcaster,
    Coordinator,
    Engine,
    PartitionState,
    Predicate,
    Quorum,
    ResultAttributes,
    Sync,
    Ticket,
    ViewShipper,
    WorkerStats,
    make_barrier,
)
from .engine.history import GradientHistory
from .losses import LogisticLoss, Loss, MultinomialLoss, SquaredLoss, get_loss
from .monitor import StopCriteria
from .penalties import L1, L2, ElasticNet, NoPenalty, Penalty, make_penalty
from .plotting import LivePlot, plot_history
from .problem import Problem, RowStats, lipschitz_constant, relative_suboptimality
from .progress import ProgressBar, RunInfo
from .result import FitResult, Record
from .schedules import constant, inv_sqrt, make_schedule
from .solvers import SOLVERS, Solver, SolverState, get_solver, register_solver
from .state import RunState
from .stragglers import Cloud, DelayFunction, Intensity, NoStragglers, Straggler, make_straggler
from .tasks import sample_rows
from .views import ColumnView

if TYPE_CHECKING:
    from .estimators import LinearRegression, LogisticRegression

__version__ = "0.1.0"

#: names imported on first use: the estimators import scikit-learn (about a second), which
#: a worker running daskasync's tasks, or a script using ``minimize`` alone, never needs
_LAZY = {"LinearRegression": ".estimators", "LogisticRegression": ".estimators"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "LivePlot",
    "plot_history",
    "LinearRegression",
    "LogisticRegression",
    "ProgressBar",
    "RunInfo",
    "RunState",
    "L1",
    "L2",
    "SOLVERS",
    "Solver",
    "SolverState",
    "RowStats",
    "SSP",
    "Async",
    "Barrier",
    "BarrierError",
    "BoundedStaleness",
    "Broadcaster",
    "Cloud",
    "ColumnView",
    "Coordinator",
    "DelayFunction",
    "ElasticNet",
    "Engine",
    "FitResult",
    "GradientHistory",
    "Intensity",
    "LogisticLoss",
    "Loss",
    "MultinomialLoss",
    "NoPenalty",
    "NoStragglers",
    "PartitionState",
    "PartitionedData",
    "Penalty",
    "Predicate",
    "Problem",
    "Quorum",
    "Record",
    "ResultAttributes",
    "SquaredLoss",
    "StopCriteria",
    "Straggler",
    "Sync",
    "Ticket",
    "ViewShipper",
    "WorkerStats",
    "__version__",
    "constant",
    "get_loss",
    "get_solver",
    "register_solver",
    "inv_sqrt",
    "lipschitz_constant",
    "load_libsvm",
    "make_barrier",
    "make_epsilon_like",
    "make_penalty",
    "make_rcv1_like",
    "make_schedule",
    "make_straggler",
    "minimize",
    "relative_suboptimality",
    "sample_rows",
]
