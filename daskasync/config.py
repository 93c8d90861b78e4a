"""A run's configuration, validated in one place: :func:`make_config` turns
:func:`daskasync.minimize`'s arguments into a :class:`RunConfig` of built, checked objects
(the solver class and its options, the problem, the stopping criteria, the barrier, the
straggler model, the starting point) and the fingerprint that a continued run must match.
Every bad value is refused here, with its argument's name, before any task reaches the
cluster.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .constraints import BOOLEAN, CALLABLE, Instance, Interval, Options, check_all
from .engine.barriers import Barrier, make_barrier
from .engine.broadcast import TRANSPORTS
from .engine.history import GradientHistory
from .fingerprint import cached_digests
from .losses import LOSSES, get_loss
from .monitor import StopCriteria
from .penalties import make_penalty
from .problem import Problem
from .schedules import make_schedule
from .solvers.base import Solver
from .solvers.registry import AUTO, choose_solver, get_solver
from .state import RunState
from .stragglers import Straggler, make_straggler

__all__ = ["CONSTRAINTS", "RunConfig", "check_support", "make_config", "solver_barrier"]

_POSITIVE = Interval("real", 0, closed="neither")
_POSITIVE_INT = Interval("int", 1)

#: what each plain argument of ``minimize`` may be (the others are built and checked by
#: their own constructors: loss, penalty, barrier, stragglers, schedule, stopping)
CONSTRAINTS: dict[str, list] = {
    "fit_intercept": [BOOLEAN],
    "batch_fraction": [Interval("real", 0, 1, closed="right"), None],
    "step_size": [_POSITIVE, Options("auto")],
    "l1_ratio": [Interval("real", 0, 1)],
    "tau": [Interval("int", 0), None],
    "window": [_POSITIVE_INT, None],
    "transport": [Options(*TRANSPORTS)],
    "straggler_c": [Interval("real", 0)],
    "warmup_tasks": [Interval("int", 0), None],
    "avg_task_time": [Interval("real", 0), None],
    "seed": [Interval("int", 0)],
    "record_every": [_POSITIVE_INT, None],
    "record_interval": [_POSITIVE, None],
    "record_objective": [BOOLEAN],
    "staleness_aware": [BOOLEAN],
    "verbose": [Interval("int", 0)],
    "callback": [CALLABLE, None],
    "init": [Instance(RunState, "a daskasync.RunState"), None],
    "history": [Instance(GradientHistory, "a daskasync.GradientHistory"), None],
    "checkpoint": [Instance((str, os.PathLike), "a path"), None],
    "checkpoint_every": [_POSITIVE_INT, None],
    "checkpoint_interval": [_POSITIVE, None],
    "solver_options": [Instance(Mapping, "a dict of option names to values"), None],
}

_STOP = ("max_updates", "max_epochs", "time_budget", "tol", "gtol", "check_every",
         "target_objective")
_SOLVER_OPTIONS = ("inner", "combine")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, checked and built (see :func:`make_config`)."""

    solver: type[Solver]
    options: Any  #: the solver's Options
    problem: Problem
    stop: StopCriteria
    barrier: Barrier
    straggler: Straggler
    schedule_name: Any  #: "constant", "invsqrt" or a callable ``t -> step``
    step_size: float | str  #: a number, or "auto" (the solver's rule)
    fraction: float
    seed: int
    theta0: np.ndarray
    history: GradientHistory | None
    init: RunState | None
    fingerprint: dict[str, Any]
    engine_kwargs: dict[str, Any]  #: window, transport, warmup_tasks, avg_task_time
    record: dict[str, Any]  #: record_every, record_interval, record_objective
    checkpoint: dict[str, Any]  #: path, every, interval
    staleness_aware: bool = False
    verbose: int = 0
    callback: Callable | None = None

    @property
    def name(self) -> str:
        return self.solver.name


def make_config(data: Any, args: Mapping[str, Any]) -> RunConfig:
    """Check ``minimize``'s arguments ``args`` against ``data`` and build the run."""
    if not all(hasattr(data, a) for a in ("parts", "n", "d", "n_partitions", "client")):
        raise TypeError(f"data: expected a daskasync.PartitionedData, got {type(data).__name__}")
    if data.client.status in ("closed", "closing"):
        raise ValueError("client: the distributed Client is closed")
    check_all(args, CONSTRAINTS)
    name = args["solver"]
    if name != AUTO:
        get_solver(name)  # an unknown name is refused before anything else
    problem = _problem(data, args)
    solver = get_solver(choose_solver(problem.penalty.has_prox) if name == AUTO else name)
    check_support(solver, problem)
    given = {k: args[k] for k in _SOLVER_OPTIONS}
    given.update(args["solver_options"] or {})
    options = solver.make_options(problem, data.n_partitions, **given)
    fraction = solver.default_fraction if args["batch_fraction"] is None else float(
        args["batch_fraction"])
    schedule_name = solver.default_schedule if args["step_schedule"] is None else args[
        "step_schedule"]
    make_schedule(schedule_name, 1.0 if args["step_size"] == "auto" else args["step_size"])
    stop_args = {k: args[k] for k in _STOP}
    if all(stop_args[k] is None for k in _STOP if k != "check_every"):
        stop_args["max_epochs"] = 10.0
    stop = StopCriteria(**stop_args)
    barrier = solver_barrier(solver, args["barrier"], beta=args["beta"], tau=args["tau"])
    straggler = make_straggler(args["stragglers"], n_partitions=data.n_partitions,
                               c=args["straggler_c"], seed=args["seed"])
    fingerprint = _fingerprint(data, problem, solver, options, fraction, schedule_name,
                               barrier, straggler, args)
    if args["init"] is not None:
        if args["theta0"] is not None or args["history"] is not None:
            raise ValueError("init: give either init or theta0/history, not both")
        # the settings now, before any task; the data's content (the digests, once computed
        # for this data object) too, else by the run before its first task (run.py)
        known = cached_digests(data)
        args["init"].check_compatible(
            fingerprint if known is None else {**fingerprint, "content": list(known)},
            content=known is not None)
    theta0, history = _start(data, problem, solver, args)
    return RunConfig(
        solver=solver, options=options, problem=problem, stop=stop, barrier=barrier,
        straggler=straggler, schedule_name=schedule_name, step_size=args["step_size"],
        fraction=fraction, seed=int(args["seed"]), theta0=theta0,
        history=history, init=args["init"], fingerprint=fingerprint,
        engine_kwargs={k: args[k] for k in ("window", "transport", "warmup_tasks",
                                            "avg_task_time")},
        record=_record(solver, data.n_partitions, args),
        checkpoint=_checkpoint(args),
        staleness_aware=bool(args["staleness_aware"]), verbose=int(args["verbose"]),
        callback=args["callback"],
    )


def _problem(data: Any, args: Mapping[str, Any]) -> Problem:
    loss = get_loss(args["loss"])
    labels = getattr(data, "label_values", None)
    if labels is not None:
        loss.check_labels(np.asarray(labels, dtype=float))
    n_outputs = 1
    if loss.multiclass:
        if labels is None:
            raise ValueError("y: the multinomial loss needs class labels (found too many values)")
        n_outputs = int(np.max(labels)) + 1
        if n_outputs < 2:
            raise ValueError("y: the multinomial loss needs at least two classes")
    lam = 1.0 / data.n if args["lam"] is None else args["lam"]
    penalty = make_penalty(args["penalty"], lam, args["l1_ratio"])
    return Problem(loss, penalty, bool(args["fit_intercept"]), int(data.n), int(data.d),
                   n_outputs)


def solver_barrier(solver: type[Solver], barrier: Any = None, *, beta: float = 0.93,
                   tau: int | None = None) -> Barrier:
    """The barrier a run of ``solver`` uses: ``"sync"`` for a synchronous solver (any
    other is refused), else :func:`~daskasync.engine.barriers.make_barrier`'s; every
    refusal names its argument (``barrier``, ``beta``, ``tau``)."""
    if solver.synchronous:
        if barrier not in (None, "sync"):
            raise ValueError(
                f"barrier: solver {solver.name!r} is synchronous; use barrier='sync' or an "
                f"asynchronous solver, got {barrier!r}"
            )
        return make_barrier("sync")
    return make_barrier(barrier, beta=beta, tau=tau)


def _start(data: Any, problem: Problem, solver: type[Solver], args: Mapping[str, Any]):
    """The starting model and gradient history (from ``init``, ``theta0``/``history``)."""
    init, theta0, history = args["init"], args["theta0"], args["history"]
    if init is not None:
        theta0, history = init.theta, init.history
        if history is not None:
            history = history.copy()
    if theta0 is None:
        theta = np.zeros(problem.shape)
    else:
        theta = np.array(theta0, dtype=np.float64)
        if theta.shape != problem.shape:
            raise ValueError(f"theta0: expected shape {problem.shape}, got {theta.shape}")
    if not np.isfinite(theta).all():
        raise ValueError("theta0: contains NaN or infinite values")
    if not solver.history:
        return theta, None
    if history is None:
        return theta, GradientHistory(data.offsets, problem.dim, problem.n_outputs)
    if (history.n, history.dim, history.n_outputs) != (problem.n, problem.dim,
                                                       problem.n_outputs):
        raise ValueError(
            "history: does not fit this data and model (samples, model size or outputs differ)"
        )
    return theta, history


def check_support(solver: type[Solver], problem: Problem) -> None:
    """The solver supports the problem's loss and penalty (as its class states)."""
    loss = problem.loss.name
    if loss in LOSSES and loss not in solver.losses:
        raise ValueError(f"loss: solver {solver.name!r} supports {', '.join(solver.losses)}, "
                         f"not {loss!r}")
    penalty = problem.penalty.name
    known = ("none", "l2", "l1", "elasticnet")
    custom_ok = penalty not in known and (not problem.penalty.has_prox or "l1" in solver.penalties)
    if penalty not in solver.penalties and not custom_ok:
        raise ValueError(
            f"penalty: solver {solver.name!r} supports {', '.join(solver.penalties)}, not "
            f"{penalty!r}; the SAGA solvers ('saga', 'asaga') handle L1 and elastic net"
        )


def _fingerprint(data: Any, problem: Problem, solver: type[Solver], options: Any,
                 fraction: float, schedule: Any, barrier: Barrier, straggler: Straggler,
                 args: Mapping[str, Any]) -> dict[str, Any]:
    """What a continued run must share with the run that saved its state: the data's shape
    (its content is added by the run, :mod:`daskasync.fingerprint`) and every setting that
    changes the iterates, each under its argument's name.

    Left out, because they do not change the iterates: the stopping criteria (a continued
    run may stop elsewhere), ``transport``, ``record_*``, ``verbose``, ``callback`` and the
    checkpoint's path and frequency. The barrier, ``tau``, the straggler model, ``window``
    and ``staleness_aware`` enter for the asynchronous solvers only: a synchronous solver
    waits for every partition, so they do not move its iterates."""
    fp: dict[str, Any] = {
        "n": int(data.n),
        "d": int(data.d),
        "nnz": int(getattr(data, "nnz", 0)),
        "rows_per_partition": np.diff(np.asarray(data.offsets)).tolist(),
        "n_outputs": problem.n_outputs,
        "solver": solver.name,
        "loss": problem.loss.name,
        "fit_intercept": problem.fit_intercept,
        "batch_fraction": fraction,
        "seed": int(args["seed"]),
        "step_size": args["step_size"] if args["step_size"] == "auto" else float(
            args["step_size"]),
        "step_schedule": _callable_name(schedule),
    }
    fp.update(_prefixed(fp, _penalty_settings(problem.penalty), "penalty."))
    fp.update(_prefixed(fp, dataclasses.asdict(options), "solver_options."))
    if not solver.synchronous:
        described = dict(barrier.describe())
        staleness = described.pop("max_staleness", None)
        described.setdefault("tau", staleness)
        fp.update(described)  # barrier, tau and the barrier's own (beta, fn)
        fp.update(
            stragglers=straggler.describe(),
            warmup_tasks=args["warmup_tasks"],
            avg_task_time=args["avg_task_time"],
            window=None if args["window"] is None else int(args["window"]),
            staleness_aware=bool(args["staleness_aware"]),
        )
    return fp


def _penalty_settings(penalty: Any) -> dict[str, Any]:
    """``penalty`` by name and, for a dataclass, each field by name (``lam``,
    ``l1_ratio``); another penalty object by its ``repr``."""
    out: dict[str, Any] = {"penalty": getattr(penalty, "name", type(penalty).__name__)}
    if dataclasses.is_dataclass(penalty):
        out.update({f.name: getattr(penalty, f.name) for f in dataclasses.fields(penalty)})
    else:
        out["penalty"] = repr(penalty)
    return out


def _prefixed(taken: Mapping[str, Any], items: Mapping[str, Any],
              prefix: str) -> dict[str, Any]:
    """``items``, a name already in ``taken`` prefixed by ``prefix``."""
    return {(f"{prefix}{k}" if k in taken else k): v for k, v in items.items()}


def _callable_name(value: Any) -> Any:
    """A schedule by name: a string as is, a function by its module and qualified name
    (the same in every process), another object by its ``repr``."""
    if isinstance(value, str):
        return value
    name = getattr(value, "__qualname__", None)
    if name is not None and not dataclasses.is_dataclass(value):
        return f"{getattr(value, '__module__', '')}.{name}"
    return repr(value)


def _record(solver: type[Solver], n_partitions: int, args: Mapping[str, Any]) -> dict:
    every, interval = args["record_every"], args["record_interval"]
    if every is None and interval is None:  # one record per pass over the data
        every = max(1, round(solver.updates_per_epoch(n_partitions, 1.0)))
    return {"record_every": every, "record_interval": interval,
            "record_objective": bool(args["record_objective"])}


def _checkpoint(args: Mapping[str, Any]) -> dict[str, Any]:
    path = args["checkpoint"]
    every, interval = args["checkpoint_every"], args["checkpoint_interval"]
    if path is None:
        if every is not None or interval is not None:
            raise ValueError("checkpoint_every/checkpoint_interval: need a checkpoint path")
        return {"path": None, "every": None, "interval": None}
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ValueError(f"checkpoint: folder {folder!r} does not exist or is not writable")
    return {"path": path, "every": every, "interval": interval}
