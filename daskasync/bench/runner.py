"""The straggler benchmark: daskasync's solvers against each other and against peers, on one
cluster, under the same stragglers, in one call (``daskasync bench`` on the command line).

One call, on each of ``launches`` clusters (:func:`~daskasync.bench.launch.run_launch`),

1. loads the data (a LIBSVM file, or a synthetic generator) into ``partitions`` blocks;
2. computes ``f*`` once per dataset and ``lam`` with a tight single-process solve, cached on
   disk;
3. measures the driver overhead (the engine's loop against a like-for-like loop and bare
   ``as_completed`` loops, :func:`~daskasync.bench.overhead.measure_overhead`);
4. for every solver, optionally tunes its step on a short prefix (the same grid and the
   same seconds for every solver), then runs it ``len(seeds) * repeats`` times under the
   chosen stragglers; a daskasync run lasts its time budget with no objective check on
   its clock, its times to target read from snapshots evaluated afterwards
   (:mod:`~daskasync.bench.clock`, which also measures, once, what checks would cost);

then takes medians over every run of every launch, compares each asynchronous solver with
the synchronous one of its family and with the best synchronous solver at each target
(:mod:`~daskasync.bench.compare`), and writes ``results.json``, ``results.md`` (tables)
and ``suboptimality.png`` into ``output``.

Stragglers come in two forms. ``"partition"`` is ASYNC's: the delay is slept inside
daskasync's gradient tasks, scaled by the average task time that a warm-up run of the same
solver measures before the clock (:func:`~daskasync.bench.runs.calibrate_task_time`), so that the delays act from
the first task of every timed run; peers cannot get it. ``"worker"`` is engine-agnostic:
the executor of a straggling worker holds the thread, after every task, for a delay
proportional to the task's own run time
(:func:`daskasync.bench.worker_stragglers.slow_workers`), so daskasync and the peers race
under exactly the same stragglers. Workers are indexed by name, so every launch of the same
command slows the same workers; ``straggler_workers`` names the straggling ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from ..constraints import CALLABLE, Instance, Interval, check, check_all, iter_checked
from .compare import best_sync, pair_ratios, ratios_to_best_sync
from .launch import OVERHEAD_FIELDS, run_launch
from .metrics import _median_or_none
from .report import format_time, results_document, write_outputs
from .specs import (
    STRAGGLER_CONSTRAINTS,
    BenchSettings,
    BenchSolver,
    parse_solver,
    straggler_model,
)

__all__ = ["CONSTRAINTS", "SEED", "TARGET", "TUNE_GRID", "TUNE_MULTIPLE", "WORKER_NAME",
           "run_benchmark"]

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
#: each of ``straggler_workers``: a worker's name as the scheduler knows it, as a string
#: (LocalCluster's ``"0"``, ``"1"``, ...; ``dask worker --name``)
WORKER_NAME = Instance(str, "a worker name (a string)")
#: what :func:`run_benchmark`'s plain arguments may be (the command line's options use the
#: same); the solvers are parsed by :func:`~daskasync.bench.specs.parse_solver`, the
#: synthetic family's parameters checked by ``PartitionedData.synthetic``
CONSTRAINTS: dict[str, list] = {
    "partitions": [Interval("int", 1)],
    "time_budget": [_POSITIVE],
    "repeats": [Interval("int", 1)],
    "launches": [Interval("int", 1)],
    "lam": [_POSITIVE, None],
    "tune_seconds": [_POSITIVE],
    "overhead_updates": [Interval("int", 0)],
    "cluster_factory": [CALLABLE, None],
    **STRAGGLER_CONSTRAINTS,
}


def _check_targets(targets: Iterable[float]) -> list[float]:
    out = [float(t) for t in iter_checked("targets", targets, TARGET)]
    if not out:
        raise ValueError("targets: give at least one target")
    return sorted(out, reverse=True)


def _check_stragglers(
    stragglers: str, form: str, c: float, workers: Sequence[str] | None
) -> tuple[str, ...] | None:
    """The straggler arguments; ``workers`` (names) only name straggling workers of an
    active worker-form model."""
    check_all({"stragglers": stragglers, "straggler_form": form, "straggler_c": c},
              STRAGGLER_CONSTRAINTS)
    if workers is None:
        return None
    if isinstance(workers, str):
        raise ValueError(f"straggler_workers: expected a list of names, got {workers!r}")
    names = tuple(iter_checked("straggler_workers", workers, WORKER_NAME))
    if not names:
        raise ValueError("straggler_workers: give at least one name, or None")
    if form != "worker" or stragglers == "none":
        raise ValueError("straggler_workers: only with straggler_form='worker' and "
                         f"stragglers 'intensity' or 'cloud', got {form!r} and {stragglers!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"straggler_workers: a worker named twice in {list(names)}")
    return names


def _check_arguments(
    *, solvers: Sequence[str], data: str | None, synthetic: str, n: int, d: int,
    synthetic_params: Mapping[str, float] | None, partitions: int, stragglers: str,
    straggler_c: float, straggler_form: str, straggler_workers: Sequence[str] | None,
    targets: Sequence[float], time_budget: float, seeds: Sequence[int], repeats: int,
    launches: int, lam: float | None, loss: str, tune: bool, tune_seconds: float,
    tune_grid: Sequence[float],
) -> BenchSettings:
    """:func:`run_benchmark`'s arguments, checked before any work (the worker-form model
    is made again on each cluster, over its workers)."""
    specs = [parse_solver(s) for s in solvers]
    if not specs:
        raise ValueError("solvers: give at least one solver")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"solvers: listed twice: {sorted({x for x in labels if labels.count(x) > 1})}")
    targets = _check_targets(targets)
    check_all({"partitions": partitions, "time_budget": time_budget, "repeats": repeats,
               "launches": launches, "lam": lam,
               **({"tune_seconds": tune_seconds} if tune else {})}, CONSTRAINTS)
    chosen = _check_stragglers(stragglers, straggler_form, straggler_c, straggler_workers)
    seeds = [int(s) for s in iter_checked("seeds", seeds, SEED)]
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    if tune:
        tune_seconds = float(tune_seconds)
        tune_grid = [float(m) for m in iter_checked("tune_grid", tune_grid, TUNE_MULTIPLE)]
        if not tune_grid:
            raise ValueError("tune_grid: give at least one multiple")
    model = straggler_model(stragglers, form=straggler_form, n_units=int(partitions),
                            c=straggler_c)
    if data is not None and not os.path.exists(data):
        raise ValueError(f"data: no such file {data!r}")
    if data is not None and synthetic_params:
        # (bad family parameters are refused by PartitionedData.synthetic before any task)
        raise ValueError("synthetic_params: only for synthetic data, not with data=")
    return BenchSettings(
        specs=specs, data=data, synthetic=synthetic, n=n, d=d,
        synthetic_params=synthetic_params, partitions=int(partitions), stragglers=stragglers,
        straggler_c=straggler_c, straggler_form=straggler_form, model=model,
        targets=targets, time_budget=float(time_budget), seeds=seeds, repeats=int(repeats),
        lam=None if lam is None else float(lam), loss=loss, tune=tune,
        tune_seconds=tune_seconds, tune_grid=tune_grid, straggler_workers=chosen,
        launches=int(launches),
    )


def _check_cluster(client: Any, cluster_factory: Any, launches: int) -> None:
    """Exactly one of ``client`` and ``cluster_factory``; several launches need the
    factory."""
    check("cluster_factory", cluster_factory, *CONSTRAINTS["cluster_factory"])
    if (client is None) == (cluster_factory is None):
        raise ValueError("client, cluster_factory: give one of them (a client on a running "
                         "cluster, or a factory that starts one per launch)")
    if client is not None and launches > 1:
        raise ValueError(
            f"launches: {launches} launches need a fresh cluster each: pass "
            "cluster_factory= (a callable returning a context manager that starts a "
            "cluster and yields a Client on it) instead of a client, or launches=1")


# --------------------------------------------------------------------------- #
# results over the launches
# --------------------------------------------------------------------------- #
def _solver_entry(
    spec: BenchSolver, s: BenchSettings, per_launch: list[dict[str, Any]]
) -> dict[str, Any]:
    """A solver's entry of ``results.json``: medians over all its runs (every seed,
    repeat and launch), its first run's trace, every run (``launch`` says on which
    cluster) and what each launch calibrated, tuned and injected."""
    runs = [{**r, "launch": i} for i, one in enumerate(per_launch) for r in one["runs"]]
    first, one = runs[0], per_launch[0]
    checks = [r.get("in_run_checks") for r in runs]
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
        "step_tuning": one["tuning"] if one["tuning"] is not None else "default",
        "stopping_checks_requested": any(r.get("stopping_checks_requested") for r in runs),
        "in_run_checks": None if None in checks else int(sum(checks)),
        "trace": first["trace"],
        "runs": [{k: v for k, v in r.items() if k != "trace"} for r in runs],
        "peer_stragglers": (
            "none (partition-form stragglers exist only inside daskasync's tasks)"
            if spec.kind == "peer" and s.task_stragglers is not None else None
        ),
    }
    if one["injected"] is not None:
        entry["injected_delay"] = one["injected"]
    if one["avg"] is not None:
        entry["avg_task_time_s"] = one["avg"]
    if len(per_launch) > 1:
        entry["per_launch"] = [{"step_tuning": x["tuning"], "injected_delay": x["injected"],
                                "avg_task_time_s": x["avg"]} for x in per_launch]
    return entry


def _median_overhead(launched: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The overhead fields, medians over the launches that measured them (each launch's
    too when there are several)."""
    got = [x["overhead"] for x in launched if x["overhead"] is not None]
    if not got:
        return None
    out: dict[str, Any] = {k: float(np.median([o[k] for o in got])) for k in OVERHEAD_FIELDS}
    if len(got) > 1:
        out["launches"] = got
    return out


def _launches_info(launched: list[dict[str, Any]]) -> dict[str, Any]:
    """What differed between the launches: schedulers, whether ``f*`` came from the
    cache, and the worker indices (worker form)."""
    return {"count": len(launched),
            "schedulers": [x["scheduler"] for x in launched],
            "f_star_cached": [bool(x["f_info"]["cached"]) for x in launched],
            "worker_indices": [x["worker_indices"] for x in launched]}


def _print_ratios(res: Mapping[str, Any], say: Callable[[str], None]) -> None:
    for name, by_t in res["ratios_to_best_sync"].items():
        for t, cell in by_t.items():
            r = (f"{cell['ratio']:.2f}x" if cell["ratio"] is not None else
                 f"> {cell['lower_bound']:.2f}x" if "lower_bound" in cell else
                 f"< {cell['upper_bound']:.2f}x" if "upper_bound" in cell else "—")
            say(f"  {name} vs best synchronous at {t}: {r} ({cell['best_sync'] or 'none'})")


def _printer(progress: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    return say


# --------------------------------------------------------------------------- #
# the benchmark
# --------------------------------------------------------------------------- #
def run_benchmark(
    client: Any = None,
    *,
    cluster_factory: Callable[[], AbstractContextManager[Any]] | None = None,
    launches: int = 1,
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
    straggler_workers: Sequence[str] | None = None,
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
    check_cost: bool = True,
    workers_info: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the straggler benchmark on ``client``'s cluster, or on ``launches`` clusters
    that ``cluster_factory`` starts one after the other; see the module description.

    Parameters
    ----------
    client : distributed.Client, optional
        A client on a running cluster (one launch). Give it or ``cluster_factory``.
    cluster_factory : callable, optional
        Called with no argument once per launch; returns a context manager that starts a
        fresh cluster and yields a ``Client`` on it, and closes both on exit (for example
        ``lambda: daskasync.clusters.cluster_client(None, 2, 4)``, what ``daskasync
        bench`` passes without ``--scheduler``).
    launches : int
        Clusters to run every solver on, one after the other (each with the same data,
        made again from the same seed, and the same ``f*``, from the cache); medians
        are over ``len(seeds) * repeats * launches`` runs. More than 1 needs
        ``cluster_factory`` (``ValueError`` with a client).
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
        daskasync solvers (keys of :data:`daskasync.solvers.SOLVERS`, each optionally with
        ``[key=value,...]`` options of :func:`daskasync.minimize`, e.g.
        ``asaga[barrier=bounded,tau=8]``) and peers (keys of
        ``daskasync.bench.peers.PEERS``, with ``[key=value]`` peer options).
    stragglers : {"none", "intensity", "cloud"}
    straggler_c : float
        Intensity ``c``.
    straggler_form : {"partition", "worker"}
        Inside daskasync's tasks (peers run without), or on the workers' executors
        (everyone runs under them; workers ordered by name, so that every launch slows
        the same ones).
    straggler_workers : sequence of str, optional
        Worker form only: the names of the workers that straggle (``intensity``: each
        sleeps ``c`` times its task time; ``cloud``: as many names as the model has
        stragglers, given its normal ones first). Default: the model's choice by index.
    targets : sequence of float
        Relative suboptimalities ``(f - f*) / f*`` to time.
    time_budget : float
        Seconds per run. A daskasync run lasts its budget, with no check of the objective
        on its clock (see :mod:`daskasync.bench.clock`); a peer stops at the smallest
        target too (its objective is evaluated with its clock stopped).
    seeds, repeats
        Every solver runs once per seed, ``repeats`` times (per launch); times to target
        are medians over these runs (a run that never reached counts as infinitely slow).
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
        Updates of the overhead measurement, per launch (0 skips it).
    check_cost : bool
        Measure, on the first launch, what full-objective checks would cost the first
        synchronous daskasync solver (``fair_clock`` in the results; ``None`` when
        skipped).
    workers_info : mapping, optional
        ``"workers"`` and ``"threads_per_worker"`` to report (default: as found).

    Returns
    -------
    dict
        The content of ``results.json``.
    """
    from ..engine.driver import Engine  # noqa: F401 - fail early if the package is broken

    check_all({"overhead_updates": overhead_updates, "launches": launches}, CONSTRAINTS)
    _check_cluster(client, cluster_factory, launches)
    s = _check_arguments(
        solvers=solvers, data=data, synthetic=synthetic, n=n, d=d,
        synthetic_params=synthetic_params, partitions=partitions, stragglers=stragglers,
        straggler_c=straggler_c, straggler_form=straggler_form,
        straggler_workers=straggler_workers, targets=targets, time_budget=time_budget,
        seeds=seeds, repeats=repeats, launches=launches, lam=lam, loss=loss, tune=tune,
        tune_seconds=tune_seconds, tune_grid=tune_grid,
    )
    say = _printer(progress)
    cache = cache_dir if cache_dir is not None else Path.home() / ".cache" / "daskasync"
    launched = []
    for i in range(s.launches):
        with (nullcontext(client) if client is not None else cluster_factory()) as c:
            launched.append(run_launch(c, s, index=i, cache_dir=cache,
                                       overhead_updates=overhead_updates, say=say,
                                       check_cost=check_cost))
    first = launched[0]
    results = {spec.label: _solver_entry(spec, s, [x["solvers"][spec.label] for x in launched])
               for spec in s.specs}
    for spec in s.specs:
        tt = ", ".join(f"{t:g}: {format_time(results[spec.label]['time_to_target_s'][str(t)])}"
                       for t in s.targets)
        say(f"  {spec.label}: time to target (s) {tt}; "
            f"final {results[spec.label]['final_rel_subopt']:.2e}")
    ratios, bounds = pair_ratios(s.specs, results, s.targets)
    out_json = results_document(
        first["settings"], dataset=first["dataset"],
        cluster={"workers": first["workers"], "threads_per_worker": first["threads_per_worker"],
                 **dict(workers_info or {}), "partitions": first["dataset"]["partitions"],
                 "scheduler": first["scheduler"]},
        lam=first["lam"], f_star=first["f_star"], f_info=first["f_info"], solvers=results,
        ratios=ratios, bounds=bounds, overhead=_median_overhead(launched),
        best_sync=best_sync(s.specs, results, s.targets),
        to_best_sync=ratios_to_best_sync(s.specs, results, s.targets),
        fair_clock=first["check_cost"], launches=_launches_info(launched),
        worker_indices=first["worker_indices"],
    )
    _print_ratios(out_json, say)
    if output is not None:
        write_outputs(out_json, output, say)
    return out_json
