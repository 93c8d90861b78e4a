"""One launch of the straggler benchmark: on one cluster, load the data, get ``f*``, measure
the driver overhead, then run every solver (:func:`run_launch`). The benchmark
(:func:`~daskasync.bench.runner.run_benchmark`) runs one launch per cluster it is given or
starts, and takes medians over all their runs."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np

from ..data import PartitionedData
from .clock import count_passes, measure_check_cost
from .compare import is_synchronous
from .metrics import time_to_target
from .overhead import measure_overhead
from .problem import compute_f_star, load_benchmark_data
from .runs import calibrate_task_time, run_daskasync, run_peer_solver, tune_step
from .specs import BenchSettings, BenchSolver, straggler_model, straggling_units
from .worker_stragglers import (
    assign_indices,
    slow_workers,
    worker_indices,
    worker_names,
    worker_order,
)

__all__ = ["launch_settings", "run_launch"]

#: the ``measure_overhead`` fields ``results.json`` keeps
OVERHEAD_FIELDS = ("driver_updates_per_s", "like_for_like_per_s", "driver_ratio",
                   "raw_as_completed_per_s", "raw_as_completed_no_fetch_per_s")


def launch_settings(
    client: Any, s: BenchSettings
) -> tuple[BenchSettings, dict[str, int] | None]:
    """The settings on ``client``'s cluster: the worker-form straggler model over its
    workers, and the index of each worker (address -> index: the named
    ``straggler_workers`` get the model's straggling indices, the others follow by name;
    ``None`` for partition stragglers)."""
    if s.straggler_form != "worker":
        return s, None
    order = worker_order(client)
    chosen = s.straggler_workers
    model = straggler_model(
        s.stragglers, form="worker", n_units=len(order), c=s.straggler_c,
        n_straggling=len(chosen) if chosen and s.stragglers == "intensity" else None,
    )
    if chosen:
        indices = assign_indices(order, worker_names(client), straggling_units(model), chosen)
    else:
        indices = worker_indices(client)
    return dataclasses.replace(s, model=model), indices


def _overhead(client: Any, updates: int, say: Callable[[str], None]) -> dict[str, Any] | None:
    """The driver overhead (:func:`~daskasync.bench.overhead.measure_overhead`), unless
    ``updates`` is 0."""
    if not updates:
        return None
    o = measure_overhead(client, n_updates=int(updates), repeats=3)
    say(f"overhead: engine {o['driver_updates_per_s']:.0f} updates/s, like-for-like loop "
        f"{o['like_for_like_per_s']:.0f}/s (driver_ratio {o['driver_ratio']:.2f}), bare "
        f"as_completed loop {o['raw_as_completed_per_s']:.0f}/s")
    return {k: o[k] for k in OVERHEAD_FIELDS}


def _timed_run(
    pdata: PartitionedData, spec: BenchSolver, s: BenchSettings, *, lam: float,
    f_star: float, seed: int, step: float | None, avg: float | None, counter: Any,
) -> dict[str, Any]:
    """One timed run of ``spec`` with its times to each target."""
    if spec.kind == "daskasync":
        out = run_daskasync(
            pdata, spec, lam=lam, loss=s.loss, f_star=f_star, budget=s.time_budget,
            seed=seed, straggler=s.task_stragglers, step_size=step, avg_task_time=avg,
            counter=counter,
        )
    else:
        out = run_peer_solver(pdata, spec, lam=lam, loss=s.loss, f_star=f_star,
                              budget=s.time_budget, target=s.targets[-1], seed=seed)
    out["seed"] = seed
    out["time_to_target_s"] = {str(t): time_to_target(out["trace"], t) for t in s.targets}
    return out


def _bench_solver(
    client: Any, pdata: PartitionedData, spec: BenchSolver, s: BenchSettings, *,
    lam: float, f_star: float, indices: dict[str, int] | None, counter: Any,
    check_cost: bool, say: Callable[[str], None],
) -> dict[str, Any]:
    """Calibrate the partition stragglers' scale and tune the step (daskasync's solvers,
    if asked), then run ``spec`` once per seed, ``repeats`` times, under the stragglers;
    with ``check_cost``, then measure what full-objective checks cost it
    (:func:`~daskasync.bench.clock.measure_check_cost`)."""
    say(f"{spec.label} ...")
    daskasync_solver = spec.kind == "daskasync"
    slow = slow_workers(client, s.model, indices=indices) if s.worker_stragglers else None
    with (slow if slow is not None else nullcontext()) as handle:
        tuning = step = avg = cost = None
        if s.task_stragglers is not None and daskasync_solver:
            avg = calibrate_task_time(pdata, spec, lam=lam, loss=s.loss, seed=s.seeds[0])
        if s.tune and daskasync_solver and "step_size" not in spec.options:
            tuning = tune_step(pdata, spec, lam=lam, loss=s.loss, f_star=f_star,
                               seconds=s.tune_seconds, grid=s.tune_grid, seed=s.seeds[0],
                               straggler=s.task_stragglers, avg_task_time=avg)
            step = tuning["chosen_step_size"]
        runs = [_timed_run(pdata, spec, s, lam=lam, f_star=f_star, seed=seed, step=step,
                           avg=avg, counter=counter)
                for seed in s.seeds for _ in range(s.repeats)]
        if check_cost:
            cost = measure_check_cost(
                pdata, spec, lam=lam, loss=s.loss, seed=s.seeds[0], counter=counter,
                updates=max(1, int(np.median([r["updates"] for r in runs]))),
                step_size=step, straggler=s.task_stragglers, avg_task_time=avg,
            )
        injected = handle.stats() if handle is not None else None
    return {"runs": runs, "tuning": tuning, "injected": injected, "avg": avg,
            "check_cost": cost}


def run_launch(
    client: Any, s: BenchSettings, *, index: int, cache_dir: str | os.PathLike[str],
    overhead_updates: int, say: Callable[[str], None], check_cost: bool = True,
) -> dict[str, Any]:
    """One launch on ``client``'s cluster: the data, ``f*`` (from the cache after the
    first launch), the overhead, then every solver's runs; on launch 0 and with
    ``check_cost``, what checks cost the first synchronous daskasync solver.

    Returns
    -------
    dict
        ``settings`` (on this cluster), ``worker_indices`` (name -> index, worker form),
        ``dataset``, ``lam``, ``f_star``, ``f_info``, ``overhead``, ``check_cost`` and
        ``solvers`` (label -> runs, tuning, injected delays, calibrated task time), and the
        cluster's ``scheduler`` address, ``workers`` and ``threads_per_worker``.
    """
    s, indices = launch_settings(client, s)
    names = worker_names(client)
    info = client.scheduler_info(n_workers=-1)["workers"]
    pdata = load_benchmark_data(client, data=s.data, synthetic=s.synthetic, n=s.n, d=s.d,
                                partitions=s.partitions, synthetic_params=s.synthetic_params)
    try:
        lam = float(s.lam) if s.lam is not None else 1.0 / pdata.n
        f_star, f_info = compute_f_star(pdata, loss=s.loss, lam=lam, cache_dir=cache_dir)
        say(f"launch {index}: {pdata.name}: n={pdata.n} d={pdata.d} nnz={pdata.nnz}, "
            f"lam={lam:.3g}, f*={f_star:.10g} ({'read from' if f_info['cached'] else 'saved to'} "
            f"the cache {cache_dir})")
        overhead = _overhead(client, overhead_updates, say)
        first_sync = next((x.label for x in s.specs
                           if x.kind == "daskasync" and is_synchronous(x)), None)
        with count_passes(client) as counter:
            solvers = {
                spec.label: _bench_solver(
                    client, pdata, spec, s, lam=lam, f_star=f_star, indices=indices,
                    counter=counter,
                    check_cost=check_cost and index == 0 and spec.label == first_sync,
                    say=say)
                for spec in s.specs
            }
        dataset = {"name": pdata.name, "n": pdata.n, "d": pdata.d, "nnz": pdata.nnz,
                   "partitions": pdata.n_partitions}
    finally:
        pdata.release()
    cost = next((v["check_cost"] for v in solvers.values() if v["check_cost"]), None)
    return {
        "settings": s,
        "worker_indices": (None if indices is None else
                           {names[a] or a: i for a, i in sorted(indices.items(),
                                                                key=lambda x: x[1])}),
        "dataset": dataset, "lam": lam, "f_star": f_star, "f_info": f_info,
        "overhead": overhead, "check_cost": cost, "solvers": solvers,
        "scheduler": client.scheduler.address, "workers": len(info),
        "threads_per_worker": sorted({w["nthreads"] for w in info.values()}),
    }
