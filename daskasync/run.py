"""Running a checked configuration: build the engine, the solver and the monitor, run the
solver's loop on the client's event loop, save checkpoints, and assemble the result.

This is the second half of :func:`daskasync.minimize` (the first is
:func:`daskasync.config.make_config`). A failed or interrupted run cancels its tasks and
releases its model versions before the error propagates (:func:`~daskasync.engine.run_sync`).
"""

from __future__ import annotations

import math
from typing import Any

import dask
import numpy as np
from distributed import span

from ._blas import one_blas_thread
from .config import RunConfig
from .engine.driver import Engine
from .engine.sync import run_sync
from .fingerprint import adata_digests
from .monitor import Monitor
from .progress import ProgressBar
from .result import FitResult
from .schedules import Schedule, make_schedule
from .solvers.base import RunContext, Solver
from .state import RunState

__all__ = ["execute"]


def execute(data: Any, config: RunConfig) -> FitResult:
    """Run ``config`` on ``data`` and return its :class:`FitResult`."""
    engine = Engine(data, barrier=config.barrier, stragglers=config.straggler,
                    seed=config.seed, name=config.name, **config.engine_kwargs)
    init = config.init
    if init is not None:
        solver = config.solver.from_state(config.problem, config.options, init.solver_state)
        engine.coordinator.restore(init.updates, init.task_counts)
    else:
        solver = config.solver(config.problem, config.options)
    # one distributed span per run: the dashboard groups its tasks (and their timings);
    # one BLAS thread in this process meanwhile (see daskasync._blas)
    with span(f"daskasync-{config.name}") as span_id, one_blas_thread():
        engine.annotations = dict(dask.get_annotations())
        return run_sync(engine, _run, engine, config, solver, span_id)


async def _schedule(engine: Engine, config: RunConfig, solver: Solver) -> Schedule:
    """The step schedule: the given step, the continued run's, or the solver's rule."""
    if config.step_size != "auto":
        return make_schedule(config.schedule_name, config.step_size)
    if config.init is not None:
        return make_schedule(config.schedule_name, config.init.step_size)
    stats = await engine.arow_stats()
    gamma = solver.auto_step(stats, engine.n_partitions, config.barrier,
                             config.staleness_aware)
    return make_schedule(config.schedule_name, gamma)


def _settings(config: RunConfig, engine: Engine, solver: Solver, schedule: Schedule,
              span_id: str) -> dict[str, Any]:
    problem = config.problem
    return {
        "solver": config.name,
        "loss": problem.loss.name,
        "penalty": repr(problem.penalty),
        "fit_intercept": problem.fit_intercept,
        "batch_fraction": config.fraction,
        "barrier": config.barrier.describe(),
        "stragglers": engine.straggler.describe(),
        "seed": config.seed,
        "n_partitions": engine.n_partitions,
        "staleness_aware": config.staleness_aware,
        **solver.describe(),
        "step_size": getattr(schedule, "gamma", None),
        "span_id": span_id,
    }


def _monitor(engine: Engine, config: RunConfig) -> Monitor:
    init, P = config.init, engine.n_partitions
    per_epoch = config.solver.updates_per_epoch(P, config.fraction)
    bar = None
    if config.verbose:
        total = config.stop.max_updates
        if total is None and config.stop.max_epochs is not None:
            total = math.ceil(config.stop.max_epochs * per_epoch - 1e-9)
        bar = ProgressBar(config.name, total, initial=init.updates if init else 0)
    return Monitor(
        engine, config.problem, config.stop, **config.record,
        updates_per_epoch=math.ceil(per_epoch),
        updates=init.updates if init else 0,
        rows=init.rows if init else 0,
        elapsed=init.elapsed if init else 0.0,
        progress=bar,
        callback=config.callback,
    )


async def _fingerprint(engine: Engine, config: RunConfig) -> dict[str, Any]:
    """The run's complete fingerprint (the settings and the data's content, computed on the
    workers once per data object); a continued run's state must agree with it, checked
    here before any solver task."""
    fingerprint = {**config.fingerprint, "content": await adata_digests(engine)}
    if config.init is not None:
        config.init.check_compatible(fingerprint)
    return fingerprint


def _state(engine: Engine, config: RunConfig, solver: Solver, monitor: Monitor,
           schedule: Schedule, model: np.ndarray, fingerprint: dict[str, Any]) -> RunState:
    """The run's state now: enough to continue it exactly."""
    return RunState(
        theta=model.copy(),
        updates=monitor.updates,
        rows=monitor.rows,
        task_counts=np.array(engine.coordinator.task_counts(), dtype=np.int64),
        step_size=float(getattr(schedule, "gamma", float("nan"))),
        fingerprint=fingerprint,
        history=config.history,
        elapsed=monitor.elapsed,
        solver_state=solver.state,
    )


async def _run(engine: Engine, config: RunConfig, solver: Solver, span_id: str) -> FitResult:
    fingerprint = await _fingerprint(engine, config)
    schedule = await _schedule(engine, config, solver)
    settings = _settings(config, engine, solver, schedule, span_id)
    monitor = _monitor(engine, config)
    ckpt = config.checkpoint

    def make_state(model: np.ndarray) -> RunState:
        return _state(engine, config, solver, monitor, schedule, model, fingerprint)

    if ckpt["path"] is not None:
        every = ckpt["every"]
        if every is None and ckpt["interval"] is None:
            every = monitor.check_every  # about once per epoch
        monitor.set_checkpoint(lambda model: make_state(model).save(ckpt["path"]), every,
                               ckpt["interval"])
    ctx = RunContext(engine, config.problem, monitor, schedule, config.fraction,
                     config.staleness_aware, config.history)
    try:
        final = await solver.run(ctx, config.theta0.copy())
        await engine.acancel_in_flight()
        state = make_state(final)
        if ckpt["path"] is not None:
            state.save(ckpt["path"])
        settings["avg_task_time"] = engine.avg_task_time
        settings["model_views"] = engine.views.n_partitions
        settings["solver_state"] = {k: v for k, v in solver.state.to_dict().items()
                                    if not isinstance(v, np.ndarray)}
        result = await monitor.finish(engine, final, solver=config.name, settings=settings,
                                      state=state)
        result.recovered = engine.recovery.counts()
    finally:
        if monitor.progress is not None:
            monitor.progress.close()
    await engine.aclose()
    return result
