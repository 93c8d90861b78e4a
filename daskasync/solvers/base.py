"""What every solver is made of.

A solver is a class with

* class attributes stating its properties (``name``, ``synchronous``, ``history``,
  ``losses``, ``penalties``, ``default_schedule``) read by the registry, ``minimize``, the
  estimators, the command line and the benchmark;
* ``Options``: a frozen dataclass of its own options, checked by :meth:`Solver.make_options`
  before any task reaches the cluster;
* ``State``: a frozen dataclass of what it keeps between updates beyond the model and the
  gradient history (e.g. SAGA's combination multiplier), with ``to_dict``/``from_dict``, so
  that a :class:`~daskasync.RunState` can save it and a run can continue from it
  (:meth:`Solver.from_state`);
* :meth:`Solver.auto_step`, its step rule for ``step_size="auto"``;
* :meth:`Solver.run`, the loop: a coroutine over the engine's public contract that returns
  the final model.

This is optax's split of an update rule into ``init``/``update`` over a small immutable
state, and dask-glm's registry of solvers by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..engine.barriers import Barrier
from ..engine.history import GradientHistory
from ..monitor import Monitor
from ..problem import Problem, RowStats
from ..schedules import Schedule

__all__ = [
    "NoOptions",
    "RunContext",
    "Solver",
    "SolverState",
    "apply_update",
    "sum_results",
]


@dataclass(frozen=True)
class SolverState:
    """A solver's state besides the model and the gradient history (base: nothing).

    ``to_dict`` gives plain values (floats, ints, None and numpy arrays) that a
    :class:`~daskasync.RunState` file stores; ``from_dict`` reads them back."""

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (np.array(v) if isinstance(v, np.ndarray) else v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SolverState:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"init: {cls.__name__} has no field(s) {unknown}")
        return cls(**dict(values))


@dataclass(frozen=True)
class NoOptions:
    """Options of a solver that takes none."""


@dataclass(frozen=True)
class RunContext:
    """What a solver's loop works with."""

    engine: Any  #: the :class:`~daskasync.Engine` (its public coroutines)
    problem: Problem
    monitor: Monitor
    schedule: Schedule  #: ``t -> step``
    fraction: float  #: rows each task samples, as a fraction of its partition
    staleness_aware: bool = False
    history: GradientHistory | None = None  #: SAGA's memory, updated in place


class Solver:
    """Base class of the solvers (see the module description).

    Parameters
    ----------
    problem : Problem
    options : Options dataclass of the solver
    state : State dataclass of the solver, optional
        Where a continued run starts from (default: ``State()``).
    """

    name: ClassVar[str] = ""
    #: solvers with the same update rule, one synchronous and one asynchronous, share a
    #: family (the benchmark compares them); default: the name
    family: ClassVar[str] = ""
    synchronous: ClassVar[bool] = True
    history: ClassVar[bool] = False
    default_schedule: ClassVar[str] = "invsqrt"
    losses: ClassVar[tuple[str, ...]] = ("logistic", "squared", "multinomial")
    penalties: ClassVar[tuple[str, ...]] = ("none", "l2", "l1", "elasticnet")
    #: ``batch_fraction`` when none is given: the rows each task samples
    default_fraction: ClassVar[float] = 1.0
    Options: ClassVar[type] = NoOptions
    State: ClassVar[type[SolverState]] = SolverState
    #: values ``minimize`` passes for options a solver does not take
    OPTION_DEFAULTS: ClassVar[dict[str, Any]] = {"inner": "sequential", "combine": None}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("family"):
            cls.family = cls.name

    def __init__(self, problem: Problem, options: Any = None,
                 state: SolverState | None = None) -> None:
        self.problem = problem
        self.options = options if options is not None else self.Options()
        self.state = state if state is not None else self.State()

    @classmethod
    def own_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``given`` that are this solver's options; refuses the others:
        one of ``minimize``'s SAGA options (``inner``, ``combine``) set to
        anything but its default, or a name the solver does not know."""
        fields = {f.name for f in dataclasses.fields(cls.Options)}
        for key, value in given.items():
            if key in fields:
                continue
            if key not in cls.OPTION_DEFAULTS:
                raise ValueError(
                    f"solver_options: solver {cls.name!r} has no option {key!r} (its "
                    f"options: {', '.join(sorted(fields)) or 'none'})"
                )
            if not _same(value, cls.OPTION_DEFAULTS[key]):
                raise ValueError(
                    f"{key}: solver {cls.name!r} does not take {key} "
                    f"(got {value!r}); see the solver's documentation"
                )
        return {k: v for k, v in given.items() if k in fields}

    @classmethod
    def make_options(cls, problem: Problem, n_partitions: int, **given: Any) -> Any:
        """Check ``given`` (``minimize``'s solver options and ``solver_options``) and build
        ``Options``; every refusal names the option."""
        return cls.Options(**cls.own_options(given))

    @classmethod
    def updates_per_epoch(cls, n_partitions: int, fraction: float) -> float:
        """Applied updates per pass over the data: one per round of every partition
        (synchronous), one per partition result (asynchronous)."""
        return (1 if cls.synchronous else n_partitions) / fraction

    @classmethod
    def from_state(cls, problem: Problem, options: Any,
                   saved: SolverState | Mapping[str, Any] | None) -> Solver:
        """The solver continuing a run whose :class:`~daskasync.RunState` recorded
        ``saved`` (its ``State``, or ``State.to_dict()``)."""
        if saved is None:
            state = cls.State()
        elif isinstance(saved, SolverState):
            if not isinstance(saved, cls.State):
                raise ValueError(f"init: the state of a {type(saved).__name__}, not of "
                                 f"solver {cls.name!r}")
            state = saved
        else:
            state = cls.State.from_dict(saved)
        return cls(problem, options, state)

    def auto_step(self, stats: RowStats, n_partitions: int, barrier: Barrier,
                  staleness_aware: bool) -> float:
        """Base step for ``step_size="auto"``."""
        raise NotImplementedError

    async def run(self, ctx: RunContext, theta: np.ndarray) -> np.ndarray:
        """The loop: apply updates to ``theta`` until the monitor says stop; return it."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Resolved options, for the result's settings."""
        return dataclasses.asdict(self.options)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def sum_results(values: list, array_at: int, count_at: int) -> tuple[np.ndarray, int]:
    """Sum, in partition order, the array and the row count of a round's results."""
    total = values[0][array_at].copy()
    count = values[0][count_at]
    for v in values[1:]:
        total += v[array_at]
        count += v[count_at]
    return total, count


def apply_update(engine: Any, monitor: Monitor, theta: np.ndarray, rows: int, step: float,
                 exact: tuple[float, Any] | None = None,
                 model: np.ndarray | tuple[np.ndarray, ...] | None = None):
    """Count one applied update of ``rows`` sampled rows: tick the logical clock, publish
    the new version (``model``, default ``theta``: what the tasks read), record; returns
    the monitor's stop reason (or None). ``exact``: the full loss and gradient sums at
    ``theta`` when the solver has them (see :meth:`Monitor.after_update`)."""
    monitor.last_step = step
    engine.tick()
    engine.publish(theta if model is None else model)
    return monitor.after_update(theta, rows, exact)
