"""The straggler benchmark: daskasync's solvers against each other and against peers, on one
cluster, under the same stragglers, in one call (``daskasync bench`` on the command line).

One call

1. loads the data (a LIBSVM file, or a synthetic generator) into ``partitions`` blocks;
2. computes ``f*`` once per dataset and ``lam`` with a tight single-process solve, cached on
   disk;
3. measures the driver overhead (the engine's loop against a bare ``as_completed`` loop);
4. for every solver, optionally tunes its step on a short prefix (the same grid and the
   same seconds for every solver), then runs it ``len(seeds) * repeats`` times under the
   chosen stragglers, each run until every target is reached or the time budget is spent;
5. writes ``results.json``, ``results.md`` (a table) and ``suboptimality.png`` into
   ``output``.

Stragglers come in two forms. ``"partition"`` is ASYNC's: the delay is slept inside
daskasync's gradient tasks, scaled by the average task time that a warm-up run of the same
solver measures before the clock (:func:`~daskasync.bench.runs.calibrate_task_time`), so that the delays act from
the first task of every timed run; peers cannot get it. ``"worker"`` is engine-agnostic:
the executor of a straggling worker holds the thread, after every task, for a delay
proportional to the task's own run time
(:func:`daskasync.bench.worker_stragglers.slow_workers`), so daskasync and the peers race
under exactly the same stragglers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..constraints import Interval, check_all, iter_checked
from ..data import PartitionedData
from .metrics import _median_or_none, time_to_target
from .overhead import measure_overhead
from .problem import compute_f_star, load_benchmark_data
from .report import format_time, results_document, write_outputs
from .runs import calibrate_task_time, run_daskasync, run_peer_solver, tune_step
from .specs import (
    STRAGGLER_CONSTRAINTS,
    SYNC_ASYNC_PAIRS,
    BenchSettings,
    BenchSolver,
    parse_solver,
    straggler_model,
)
from .worker_stragglers import slow_workers

__all__ = ["CONSTRAINTS", "SEED", "TARGET", "TUNE_GRID", "TUNE_MULTIPLE", "run_benchmark"]

#: multiples of each solver's default step that ``tune=True`` tries
TUNE_GRID = (0.25, 1.0, 4.0, 16.0, 64.0, 256.0)


# --------------------------------------------------------------------------- #
# arguments
# --------------------------------------------------------------------------- #
_POSITIVE = Interval("real", 0, closed="neither")
#: each of ``targets`` (a relative suboptimality), of ``seeds`` and of ``tune_grid``
TARGET = Interval("real", 0, 1, closed="neither")
SEED = Interval("int", 0)
TUNE_MULTIPLE = _POSITIVE
#: what :func:`run_benchmark`'s plain arguments may be (the command line's options use the
#: same); the solvers are parsed by :func:`~daskasync.bench.specs.parse_solver`, the
#: synthetic family's parameters checked by ``PartitionedData.synthetic``
CONSTRAINTS: dict[str, list] = {
    "partitions": [Interval("int", 1)],
    "time_budget": [_POSITIVE],
    "repeats": [Interval("int", 1)],
    "lam": [_POSITIVE, None],
    "tune_seconds": [_POSITIVE],
    "overhead_updates": [Interval("int", 0)],
    **STRAGGLER_CONSTRAINTS,
}


def _check_targets(targets: Iterable[float]) -> list[float]:
    out = [float(t) for t in iter_checked("targets", targets, TARGET)]
    if not out:
        raise ValueError("targets: give at least one target")
    return sorted(out, reverse=True)


def _check_arguments(
    client: Any, *, solvers: Sequence[str], data: str | None, synthetic: str, n: int, d: int,
    synthetic_params: Mapping[str, float] | None, partitions: int, stragglers: str,
    straggler_c: float, straggler_form: str, targets: Sequence[float], time_budget: float,
    seeds: Sequence[int], repeats: int, lam: float | None, loss: str, tune: bool,
    tune_seconds: float, tune_grid: Sequence[float],
) -> tuple[BenchSettings, list[str]]:
    """:func:`run_benchmark`'s arguments, checked before any work, and the addresses of the
    cluster's workers."""
    specs = [parse_solver(s) for s in solvers]
    if not specs:
        raise ValueError("solvers: give at least one solver")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"solvers: listed twice: {sorted({x for x in labels if labels.count(x) > 1})}")
    targets = _check_targets(targets)
    check_all({"partitions": partitions, "time_budget": time_budget, "repeats": repeats,
               "lam": lam, **({"tune_seconds": tune_seconds} if tune else {})}, CONSTRAINTS)
    seeds = [int(s) for s in iter_checked("seeds", seeds, SEED)]
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    time_budget, repeats, partitions = float(time_budget), int(repeats), int(partitions)
    lam = None if lam is None else float(lam)
    if tune:
        tune_seconds = float(tune_seconds)
        tune_grid = [float(m) for m in iter_checked("tune_grid", tune_grid, TUNE_MULTIPLE)]
        if not tune_grid:
            raise ValueError("tune_grid: give at least one multiple")
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    n_units = partitions if straggler_form == "partition" else len(workers)
    model = straggler_model(stragglers, form=straggler_form, n_units=n_units, c=straggler_c)
    if data is not None and not os.path.exists(data):
        raise ValueError(f"data: no such file {data!r}")
    if data is not None and synthetic_params:
        # (bad family parameters are refused by PartitionedData.synthetic before any task)
        raise ValueError("synthetic_params: only for synthetic data, not with data=")
    settings = BenchSettings(
        specs=specs, data=data, synthetic=synthetic, n=n, d=d,
        synthetic_params=synthetic_params, partitions=partitions, stragglers=stragglers,
        straggler_c=straggler_c, straggler_form=straggler_form, model=model,
        targets=targets, time_budget=time_budget, seeds=seeds, repeats=repeats, lam=lam,
        loss=loss, tune=tune, tune_seconds=tune_seconds, tune_grid=tune_grid,
    )
    return settings, workers


# --------------------------------------------------------------------------- #
# the runs
# --------------------------------------------------------------------------- #
def _overhead(client: Any, updates: int, say: Callable[[str], None]) -> dict[str, float] | None:
    """The driver overhead (:func:`~daskasync.bench.overhead.measure_overhead`), unless
    ``updates`` is 0."""
    if not updates:
        return None
    o = measure_overhead(client, n_updates=int(updates), repeats=3)
    say(f"overhead: engine {o['driver_updates_per_s']:.0f} updates/s, bare loop "
        f"{o['raw_as_completed_per_s']:.0f}/s")
    return {k: o[k] for k in ("driver_updates_per_s", "raw_as_completed_per_s",
                              "raw_as_completed_no_fetch_per_s")}


def _timed_run(
    pdata: PartitionedData, spec: BenchSolver, s: BenchSettings, *, lam: float,
    f_star: float, seed: int, step: float | None, avg: float | None,
) -> dict[str, Any]:
    """One timed run of ``spec`` with its times to each target."""
    if spec.kind == "daskasync":
        out = run_daskasync(
            pdata, spec, lam=lam, loss=s.loss, f_star=f_star, budget=s.time_budget,
            target=s.targets[-1], seed=seed, straggler=s.task_stragglers, step_size=step,
            avg_task_time=avg,
        )
    else:
        out = run_peer_solver(pdata, spec, lam=lam, loss=s.loss, f_star=f_star,
                              budget=s.time_budget, target=s.targets[-1], seed=seed)
    out["seed"] = seed
    out["time_to_target_s"] = {str(t): time_to_target(out["trace"], t) for t in s.targets}
    return out


def _solver_entry(
    spec: BenchSolver, s: BenchSettings, runs: list[dict[str, Any]], *,
    tuning: dict[str, Any] | None, injected: Any, avg: float | None,
) -> dict[str, Any]:
    """A solver's entry of ``results.json``: medians over its runs, its first run's trace."""
    first = runs[0]
    entry = {
        "kind": spec.kind,
        "solver": spec.name,
        "options": dict(spec.options),
        "time_to_target_s": {
            str(t): _median_or_none([r["time_to_target_s"][str(t)] for r in runs])
            for t in s.targets
        },
        "final_rel_subopt": float(np.median([r["final_rel_subopt"] for r in runs])),
        "updates": int(np.median([r["updates"] for r in runs])),
        "mean_staleness": float(np.mean([r["mean_staleness"] for r in runs])),
        "dropped": int(sum(r["dropped"] for r in runs)),
        "step_size": first["step_size"],
        "step_tuning": tuning if tuning is not None else "default",
        "trace": first["trace"],
        "runs": [{k: v for k, v in r.items() if k != "trace"} for r in runs],
        "peer_stragglers": (
            "none (partition-form stragglers exist only inside daskasync's tasks)"
            if spec.kind == "peer" and s.task_stragglers is not None else None
        ),
    }
    if injected is not None:
        entry["injected_delay"] = injected
    if avg is not None:
        entry["avg_task_time_s"] = avg
    return entry


def _bench_solver(
    client: Any, pdata: PartitionedData, spec: BenchSolver, s: BenchSettings, *,
    lam: float, f_star: float, say: Callable[[str], None],
) -> dict[str, Any]:
    """Calibrate the partition stragglers' scale and tune the step (daskasync's solvers,
    if asked), then run ``spec`` once per seed, ``repeats`` times, under the stragglers."""
    say(f"{spec.label} ...")
    daskasync_solver = spec.kind == "daskasync"
    with (slow_workers(client, s.model) if s.worker_stragglers else nullcontext()) as handle:
        tuning = None
        step = None
        avg = None
        if s.task_stragglers is not None and daskasync_solver:
            avg = calibrate_task_time(pdata, spec, lam=lam, loss=s.loss, seed=s.seeds[0])
        if s.tune and daskasync_solver and "step_size" not in spec.options:
            tuning = tune_step(pdata, spec, lam=lam, loss=s.loss, f_star=f_star,
                               seconds=s.tune_seconds, grid=s.tune_grid, seed=s.seeds[0],
                               straggler=s.task_stragglers, avg_task_time=avg)
            step = tuning["chosen_step_size"]
        runs = [_timed_run(pdata, spec, s, lam=lam, f_star=f_star, seed=seed, step=step,
                           avg=avg)
                for seed in s.seeds for _ in range(s.repeats)]
        injected = handle.stats() if handle is not None else None
    entry = _solver_entry(spec, s, runs, tuning=tuning, injected=injected, avg=avg)
    tt = ", ".join(f"{t:g}: {format_time(entry['time_to_target_s'][str(t)])}"
                   for t in s.targets)
    say(f"  {spec.label}: time to target (s) {tt}; final {entry['final_rel_subopt']:.2e}")
    return entry


def _ratios(
    specs: Sequence[BenchSolver], results: Mapping[str, Any], targets: Sequence[float]
) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, float]]]:
    """Speed-ups (sync time / async time to each target) of every synchronous/asynchronous
    pair of :data:`~daskasync.bench.specs.SYNC_ASYNC_PAIRS` that ran, and lower bounds where
    only the asynchronous solver got there."""
    ratios: dict[str, dict[str, float | None]] = {}
    bounds: dict[str, dict[str, float]] = {}
    for sync, asyn in SYNC_ASYNC_PAIRS:
        for a in (x for x in specs if x.name == asyn):
            for b in (x for x in specs if x.name == sync):
                ta, tb = results[a.label]["time_to_target_s"], results[b.label]["time_to_target_s"]
                pair = f"{b.label} / {a.label}"
                ratios[pair] = {
                    str(t): (tb[str(t)] / ta[str(t)]
                             if tb[str(t)] is not None and ta[str(t)] else None)
                    for t in targets
                }
                # the async solver got there and the sync one did not in its whole run:
                # the speed-up is at least the sync run's length over the async time
                trace_b = results[b.label]["trace"]
                ran = trace_b[-1][0] if trace_b else 0.0
                low = {str(t): ran / ta[str(t)] for t in targets
                       if tb[str(t)] is None and ta[str(t)]}
                if low:
                    bounds[pair] = low
    return ratios, bounds


def _threads(client: Any, workers: Sequence[str]) -> dict[str, Any]:
    """The cluster's size as ``results.json`` reports it."""
    return {
        "workers": len(workers),
        "threads_per_worker": sorted({
            w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values()
        }),
    }


def _printer(progress: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    return say


# --------------------------------------------------------------------------- #
# the benchmark
# --------------------------------------------------------------------------- #
def run_benchmark(
    client: Any,
    *,
    data: str | None = None,
    synthetic: str = "epsilon",
    n: int = 100_000,
    d: int = 100,
    synthetic_params: Mapping[str, float] | None = None,
    partitions: int = 32,
    solvers: Sequence[str] = ("sgd", "asgd", "saga", "asaga"),
    stragglers: str = "none",
    straggler_c: float = 1.0,
    straggler_form: str = "partition",
    targets: Sequence[float] = (1e-2, 1e-4),
    time_budget: float = 60.0,
    seeds: Sequence[int] = (0,),
    repeats: int = 1,
    lam: float | None = None,
    loss: str = "logistic",
    tune: bool = False,
    tune_seconds: float = 5.0,
    tune_grid: Sequence[float] = TUNE_GRID,
    output: str | os.PathLike[str] | None = "bench-results",
    cache_dir: str | os.PathLike[str] | None = None,
    overhead_updates: int = 1000,
    workers_info: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the straggler benchmark on ``client``'s cluster; see the module description.

    Parameters
    ----------
    client : distributed.Client
    data : str, optional
        LIBSVM file (binary labels); default: a synthetic dataset.
    synthetic, n, d : str, int, int
        Synthetic family (``"epsilon"`` dense or ``"rcv1"`` sparse) and size.
    synthetic_params : mapping, optional
        The family's parameters (:func:`daskasync.datasets.synthetic_rows`), e.g.
        ``{"decay": 0.5}`` for an ill-conditioned epsilon-like problem.
    partitions : int
        Row blocks ``P``.
    solvers : sequence of str
        daskasync solvers (``sgd``, ``asgd``, ``saga``, ``asaga``, each optionally with
        ``[key=value,...]`` options of :func:`daskasync.minimize`, e.g.
        ``asaga[barrier=bounded,tau=8]``) and peers (keys of
        ``daskasync.bench.peers.PEERS``, with ``[key=value]`` peer options).
    stragglers : {"none", "intensity", "cloud"}
    straggler_c : float
        Intensity ``c``.
    straggler_form : {"partition", "worker"}
        Inside daskasync's tasks (peers run without), or on the workers' executors
        (everyone runs under them).
    targets : sequence of float
        Relative suboptimalities ``(f - f*) / f*`` to time.
    time_budget : float
        Seconds per run; a run also stops when it reaches the smallest target.
    seeds, repeats
        Every solver runs once per seed, ``repeats`` times; times to target are medians
        over these runs (a run that never reached counts as infinitely slow).
    lam : float, optional
        L2 strength (default ``1 / n``).
    loss : {"logistic", "squared"}
    tune : bool
        Tune the step of daskasync's solvers: ``tune_seconds`` per multiple in
        ``tune_grid`` of the default step, best final objective wins. Without it every
        solver uses its principled default (``1 / L`` based for daskasync, each peer's own).
    output : path, optional
        Folder for ``results.json``, ``results.md`` and ``suboptimality.png``.
    cache_dir : path, optional
        Where ``f*`` is cached (default ``~/.cache/daskasync``).
    overhead_updates : int
        Updates of the overhead measurement (0 skips it).

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    from ..engine.driver import Engine  # noqa: F401 - fail early if the package is broken

    check_all({"overhead_updates": overhead_updates}, CONSTRAINTS)
    s, workers = _check_arguments(
        client, solvers=solvers, data=data, synthetic=synthetic, n=n, d=d,
        synthetic_params=synthetic_params, partitions=partitions, stragglers=stragglers,
        straggler_c=straggler_c, straggler_form=straggler_form, targets=targets,
        time_budget=time_budget, seeds=seeds, repeats=repeats, lam=lam, loss=loss, tune=tune,
        tune_seconds=tune_seconds, tune_grid=tune_grid,
    )
    say = _printer(progress)
    pdata = load_benchmark_data(client, data=s.data, synthetic=s.synthetic, n=s.n, d=s.d,
                                partitions=s.partitions, synthetic_params=s.synthetic_params)
    try:
        lam_ = float(s.lam) if s.lam is not None else 1.0 / pdata.n
        cache = cache_dir if cache_dir is not None else Path.home() / ".cache" / "daskasync"
        f_star, f_info = compute_f_star(pdata, loss=s.loss, lam=lam_, cache_dir=cache)
        say(f"{pdata.name}: n={pdata.n} d={pdata.d} nnz={pdata.nnz}, lam={lam_:.3g}, "
            f"f*={f_star:.10g} ({'cached' if f_info['cached'] else 'computed'})")
        overhead = _overhead(client, overhead_updates, say)
        results = {spec.label: _bench_solver(client, pdata, spec, s, lam=lam_, f_star=f_star,
                                             say=say)
                   for spec in s.specs}
        ratios, bounds = _ratios(s.specs, results, s.targets)
        out_json = results_document(
            s, data=pdata, client=client, threads=workers_info or _threads(client, workers),
            lam=lam_, f_star=f_star, f_info=f_info, solvers=results, ratios=ratios,
            bounds=bounds, overhead=overhead,
        )
    finally:
        pdata.release()
    if output is not None:
        write_outputs(out_json, output, say)
    return out_json
