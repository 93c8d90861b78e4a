"""``daskasync.minimize``: one call from partitioned data to a fitted linear model."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .engine.barriers import Barrier, make_barrier
from .engine.driver import Engine, run_sync
from .losses import Loss, get_loss
from .penalties import Penalty, make_penalty
from .result import FitResult
from .schedules import Schedule, make_schedule
from .solvers import SOLVERS, Monitor, Problem, StopCriteria
from .stragglers import Straggler, make_straggler
from .tasks import row_norm_kernel

__all__ = ["minimize", "lipschitz_constant"]


def _check_fraction(batch_fraction: Any) -> float:
    if isinstance(batch_fraction, bool) or not isinstance(batch_fraction, (int, float)):
        raise TypeError(f"batch_fraction: must be a number in (0, 1], got {batch_fraction!r}")
    if not 0.0 < batch_fraction <= 1.0:
        raise ValueError(f"batch_fraction: must be in (0, 1], got {batch_fraction!r}")
    return float(batch_fraction)


async def _max_row_norm(engine: Engine) -> float:
    out = await engine._map_partitions(row_norm_kernel, None, "rownorm")
    return float(max(out))


def lipschitz_constant(max_sq_row_norm: float, problem: Problem) -> float:
    """Smoothness constant of one sample's loss plus the smooth penalty:
    ``curvature * max ||[x_i, 1]||^2 + lambda``."""
    r2 = max_sq_row_norm + (1.0 if problem.fit_intercept else 0.0)
    return problem.loss.curvature * r2 + problem.penalty.smooth_strength


def minimize(
    data: Any,
    *,
    solver: str = "asgd",
    loss: str | Loss = "logistic",
    penalty: str | Penalty | None = "l2",
    lam: float | None = None,
    l1_ratio: float = 0.5,
    fit_intercept: bool = False,
    step_size: float | str = "auto",
    step_schedule: str | Schedule | None = None,
    batch_fraction: float = 0.1,
    max_updates: int | None = None,
    max_epochs: float | None = None,
    time_budget: float | None = None,
    tol: float | None = None,
    gtol: float | None = None,
    check_every: int | None = None,
    barrier: str | Barrier | Callable | None = None,
    beta: float = 0.93,
    tau: int | None = None,
    window: int = 16,
    transport: str = "auto",
    stragglers: str | Straggler | Callable | None = None,
    straggler_c: float = 1.0,
    warmup_tasks: int | None = None,
    avg_task_time: float | None = None,
    seed: int = 0,
    record_every: int | None = None,
    record_interval: float | None = None,
    record_objective: bool = True,
    theta0: np.ndarray | None = None,
) -> FitResult:
    """Fit a linear model on partitioned data with a synchronous or asynchronous solver.

    Minimizes ``mean_i loss(x_i . w + b, y_i) + penalty(w)``.

    Parameters
    ----------
    data : PartitionedData
        Row blocks on the workers (see :class:`daskasync.PartitionedData`).
    solver : {"sgd", "asgd"}
        ``"sgd"``: synchronous mini-batch SGD (a gather barrier per round);
        ``"asgd"``: asynchronous SGD, each result applied as it arrives.
    loss : {"logistic", "squared"} or Loss
        Logistic needs labels in {-1, +1}.
    penalty : {"l2", "l1", "elasticnet", "none"} or Penalty
    lam : float, optional
        Regularization strength (default ``1 / n``).
    l1_ratio : float
        Elastic-net mixing.
    fit_intercept : bool
        Fit an unpenalized intercept.
    step_size : float or "auto"
        Base step ``gamma``. ``"auto"`` uses ``1 / L`` with ``L`` the largest per-sample
        smoothness constant (one pass over the data to find the largest row norm).
    step_schedule : {"constant", "invsqrt"} or callable, optional
        ``"invsqrt"`` (default for SGD/ASGD): ``gamma / sqrt(t + 1)`` with ``t`` the number of
        synchronous-round equivalents (``k`` for SGD, ``k / P`` for ASGD, as in ASYNC). A
        callable gets ``t`` and returns the step.
    batch_fraction : float
        Fraction ``b`` of each partition's rows sampled by a task (on the worker, seeded).
    max_updates, max_epochs, time_budget, tol, gtol, check_every
        Stopping criteria (see :class:`daskasync.StopCriteria`); default ``max_epochs=10``
        when none is given.
    barrier : str, Barrier or callable, optional
        For ``"asgd"``: ``"async"`` (default), ``"sync"``, ``"quorum"``, ``"bounded"``,
        ``"ssp"``, a :class:`Barrier`, or a predicate ``(states, clock) -> bool | partitions``.
    beta, tau
        Quorum fraction; staleness bound (results staler than ``tau`` are dropped).
    window, transport
        Model history window and how versions travel (see :class:`Broadcaster`).
    stragglers, straggler_c, warmup_tasks, avg_task_time
        Straggler injection for experiments (off by default).
    seed : int
        Seeds mini-batch sampling and straggler draws.
    record_every, record_interval, record_objective
        History records every so many updates (default: every round for SGD, every ``P``
        updates for ASGD) and/or seconds; objectives of records are evaluated after the run.
    theta0 : ndarray, optional
        Starting point ``[w, b]`` (default zeros).

    Returns
    -------
    FitResult

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> import daskasync
    >>> with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cl, \
    ...         Client(cl):
    ...     data = daskasync.PartitionedData.synthetic("epsilon", n=4000, d=20, n_partitions=4)
    ...     res = daskasync.minimize(data, solver="asgd", max_epochs=2)
    >>> res.updates > 0 and res.objective < 0.6931
    True
    """
    # ---- validation: everything before any task reaches the cluster -----------------------
    if not all(hasattr(data, a) for a in ("parts", "n", "d", "n_partitions", "client")):
        raise TypeError(
            f"data: expected a daskasync.PartitionedData, got {type(data).__name__}"
        )
    if solver not in SOLVERS:
        raise ValueError(f"solver: unknown solver {solver!r}; choose one of {sorted(SOLVERS)}")
    spec = SOLVERS[solver]
    loss_ = get_loss(loss)
    labels = getattr(data, "label_values", None)
    if labels is not None:
        loss_.check_labels(np.asarray(labels, dtype=float))
    penalty_ = make_penalty(penalty, 1.0 / data.n if lam is None else lam, l1_ratio)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept: must be a bool, got {fit_intercept!r}")
    fraction = _check_fraction(batch_fraction)
    if isinstance(step_size, str):
        if step_size != "auto":
            raise ValueError(f"step_size: must be a positive number or 'auto', got {step_size!r}")
    schedule_name = spec.default_schedule if step_schedule is None else step_schedule
    if not isinstance(step_size, str):
        schedule: Schedule = make_schedule(schedule_name, step_size)
    else:
        make_schedule(schedule_name, 1.0)  # validate the name now
    if all(v is None for v in (max_updates, max_epochs, time_budget, tol, gtol)):
        max_epochs = 10.0
    stop = StopCriteria(max_updates, max_epochs, time_budget, tol, gtol, check_every)
    if spec.synchronous:
        if barrier not in (None, "sync"):
            raise ValueError(
                f"barrier: solver {solver!r} is synchronous; use barrier='sync' or an "
                f"asynchronous solver, got {barrier!r}"
            )
        barrier_ = make_barrier("sync")
    else:
        barrier_ = make_barrier(barrier, beta=beta, tau=tau)
    make_straggler(stragglers, n_partitions=data.n_partitions, c=straggler_c, seed=seed)
    problem = Problem(loss_, penalty_, bool(fit_intercept), int(data.n), int(data.d))
    if theta0 is None:
        theta = np.zeros(problem.dim)
    else:
        theta = np.array(theta0, dtype=np.float64)
        if theta.shape != (problem.dim,):
            raise ValueError(f"theta0: expected shape ({problem.dim},), got {theta.shape}")
    P = data.n_partitions
    if record_every is None and record_interval is None:
        record_every = 1 if spec.synchronous else P
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed: must be an int, got {seed!r}")

    engine = Engine(
        data,
        barrier=barrier_,
        window=window,
        transport=transport,
        stragglers=stragglers,
        straggler_c=straggler_c,
        warmup_tasks=warmup_tasks,
        avg_task_time=avg_task_time,
        seed=int(seed),
        name=solver,
    )
    settings = {
        "solver": solver,
        "loss": loss_.name,
        "penalty": repr(penalty_),
        "fit_intercept": bool(fit_intercept),
        "batch_fraction": fraction,
        "barrier": barrier_.describe(),
        "stragglers": engine.straggler.describe(),
        "seed": int(seed),
        "n_partitions": P,
    }

    async def _run() -> FitResult:
        nonlocal schedule
        if isinstance(step_size, str):
            L = lipschitz_constant(await _max_row_norm(engine), problem)
            schedule = make_schedule(schedule_name, 1.0 / L)
        settings["step_size"] = getattr(schedule, "gamma", None)
        monitor = Monitor(
            engine,
            problem,
            stop,
            record_every=record_every,
            record_interval=record_interval,
            record_objective=record_objective,
            updates_per_epoch=math.ceil((1 if spec.synchronous else P) / fraction),
        )
        final = await spec.run(engine, problem, theta, schedule, fraction, monitor)
        result = await monitor.finish(engine, final, solver=solver, settings=settings)
        await engine._cancel()
        return result

    return run_sync(engine, _run)
