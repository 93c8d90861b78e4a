"""One run of a benchmark's solver, as a trace of relative suboptimality against wall time:
daskasync's (:func:`run_daskasync`, with the warm-up that scales partition stragglers,
:func:`calibrate_task_time`, and the step search :func:`tune_step`) or a peer's
(:func:`run_peer_solver`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..api import minimize
from ..data import PartitionedData
from ..problem import relative_suboptimality
from ..solvers import SOLVERS
from ..stragglers import Straggler
from .clock import in_run_passes
from .peers import run_peer
from .specs import BenchSolver

__all__ = ["calibrate_task_time", "run_daskasync", "run_peer_solver", "tune_step"]


def calibrate_task_time(
    data: PartitionedData, spec: BenchSolver, *, lam: float, loss: str, seed: int
) -> float:
    """Mean compute time of ``spec``'s gradient tasks, measured before the clock.

    ASYNC scales its delays by the average task time of a warm-up. Measured inside a timed
    run, the warm-up's tasks would run without delays, and a synchronous run that reaches the
    target in a few rounds would never meet a straggler. The warm-up is therefore a separate
    run without stragglers: ``5 P`` tasks (5 rounds for a synchronous solver), after which
    every timed run of the solver sleeps its delays from its first task."""
    P = data.n_partitions
    updates = 5 if SOLVERS[spec.name].synchronous else 5 * P  # the engine's 5 P warm-up tasks
    res = minimize(
        data, solver=spec.name, loss=loss, penalty="l2", lam=lam, max_updates=updates,
        seed=seed, record_objective=False, record_every=10**9, **spec.minimize_options(),
    )
    return float(res.settings["avg_task_time"])


def run_daskasync(
    data: PartitionedData, spec: BenchSolver, *, lam: float, loss: str, f_star: float,
    budget: float, seed: int, straggler: Straggler | None, step_size: float | None = None,
    avg_task_time: float | None = None, counter: Any = None,
) -> dict[str, Any]:
    """One timed run of a daskasync solver for ``budget`` seconds: its trace
    ``[[t, rel. subopt.], ...]`` and what it did.

    The run stops on its time budget only (no ``tol``, ``gtol`` or ``target_objective``:
    the monitor launches no check); the model is recorded every ``budget / 200`` seconds
    (and at the solver's default records), and the objectives of these snapshots are
    evaluated after the run, off the clock, so a time to target is the time of the first
    snapshot at or below it. ``in_run_checks`` counts the full-data passes that ran
    inside the clock all the same (a solver's own;
    :func:`~daskasync.bench.clock.in_run_passes`), ``None`` without a ``counter``
    (:func:`~daskasync.bench.clock.count_passes`)."""
    opts = spec.minimize_options()
    if step_size is not None:
        opts["step_size"] = step_size
    if straggler is not None and avg_task_time is not None:
        opts["avg_task_time"] = avg_task_time
    if counter is not None:
        counter.take()
    res = minimize(
        data, solver=spec.name, loss=loss, penalty="l2", lam=lam, time_budget=budget,
        record_interval=budget / 200.0, record_objective=True, seed=seed,
        stragglers=straggler, **opts,
    )
    passes = in_run_passes(counter.take(), data.n_partitions) if counter is not None else None
    # the history ends with a record of the final model
    trace = [[r.time, relative_suboptimality(r.objective, f_star)] for r in res.history]
    return {
        "trace": trace,
        "final_rel_subopt": relative_suboptimality(res.objective, f_star),
        "updates": int(res.updates),
        "mean_staleness": float(res.mean_staleness),
        "dropped": int(res.dropped),
        "step_size": res.settings.get("step_size"),
        "epochs": float(res.epochs),
        "stop_reason": res.stop_reason,
        "wall_time_s": float(res.wall_time),
        "stopping_checks_requested": False,
        "in_run_checks": None if passes is None else passes["eval"] + passes["objective"],
        "in_run_passes": passes,
    }


def run_peer_solver(
    data: PartitionedData, spec: BenchSolver, *, lam: float, loss: str, f_star: float,
    budget: float, target: float | None, seed: int,
) -> dict[str, Any]:
    """One run of a peer (:func:`daskasync.bench.peers.run_peer`), in the same form as
    :func:`run_daskasync`'s."""
    run = run_peer(
        spec.name, data, lam=lam, loss=loss, time_budget=budget, f_star=f_star,
        target=target, seed=seed, options=dict(spec.options) or None,
    )
    rel = run.relative_suboptimality(f_star)
    trace = [[float(t), float(r)] for t, r in zip(run.times, rel, strict=True)]
    return {
        "trace": trace,
        "final_rel_subopt": float(rel[-1]) if len(rel) else float("nan"),
        "updates": int(run.iterations),
        "mean_staleness": 0.0,  # synchronous: every iteration reads the current model
        "dropped": 0,
        "step_size": run.step_size,
        "stop_reason": run.info.get("stopped"),
        "wall_time_s": float(run.times[-1]) if run.times else 0.0,
        "trace_method": run.info.get("trace"),
        # the peers evaluate their objective after the run (dask-glm lbfgs), between
        # restarts or between passes, off the clock
        "stopping_checks_requested": False,
        "in_run_checks": 0,
    }


def tune_step(
    data: PartitionedData, spec: BenchSolver, *, lam: float, loss: str, f_star: float,
    seconds: float, grid: Sequence[float], seed: int, straggler: Straggler | None,
    avg_task_time: float | None = None,
) -> dict[str, Any]:
    """Run ``spec`` for ``seconds`` with each multiple of its default step; keep the best
    final objective (diverging candidates lose)."""
    base = run_daskasync(data, spec, lam=lam, loss=loss, f_star=f_star, budget=seconds,
                         seed=seed, straggler=straggler,
                         avg_task_time=avg_task_time)
    default = base["step_size"]
    tried: list[dict[str, Any]] = []
    for mult in grid:
        if mult == 1.0:
            out = base
        else:
            try:
                out = run_daskasync(
                    data, spec, lam=lam, loss=loss, f_star=f_star, budget=seconds,
                    seed=seed, straggler=straggler, step_size=default * mult,
                    avg_task_time=avg_task_time,
                )
            except FloatingPointError:
                out = {"final_rel_subopt": math.inf}
        score = out["final_rel_subopt"]
        tried.append({"multiplier": mult, "step_size": default * mult,
                      "rel_subopt": score if math.isfinite(score) else None})
    best = min(tried, key=lambda c: math.inf if c["rel_subopt"] is None else c["rel_subopt"])
    return {"default_step_size": default, "seconds_per_candidate": seconds,
            "candidates": tried, "chosen_step_size": best["step_size"]}
