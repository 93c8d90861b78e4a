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
solver measures before the clock (:func:`calibrate_task_time`), so that the delays act from
the first task of every timed run; peers cannot get it. ``"worker"`` is engine-agnostic:
the executor of a straggling worker holds the thread, after every task, for a delay
proportional to the task's own run time
(:func:`daskasync.bench.worker_stragglers.slow_workers`), so daskasync and the peers race
under exactly the same stragglers.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..api import minimize
from ..data import PartitionedData
from ..stragglers import Cloud, Intensity, NoStragglers, Straggler
from .metrics import _median_or_none, relative_suboptimality, time_to_target

__all__ = [
    "DASKASYNC_SOLVERS",
    "SolverSpec",
    "parse_solver",
    "straggler_model",
    "compute_f_star",
    "calibrate_task_time",
    "time_to_target",
    "run_benchmark",
]

#: daskasync's solvers the benchmark knows (peers come from ``daskasync.bench.peers.PEERS``)
DASKASYNC_SOLVERS = ("sgd", "asgd", "saga", "asaga")
#: ``minimize`` options a solver spec may set, e.g. ``asaga[barrier=bounded,tau=8]``
SOLVER_OPTIONS = (
    "barrier", "tau", "beta", "batch_fraction", "step_size", "inner", "combine", "momentum",
    "staleness_aware", "step_schedule", "window",
)
STRAGGLER_MODELS = ("none", "intensity", "cloud")
STRAGGLER_FORMS = ("partition", "worker")
TUNE_GRID = (0.25, 1.0, 4.0, 16.0, 64.0, 256.0)

_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[(.*)\])?\s*$")


@dataclass(frozen=True)
class SolverSpec:
    """One solver of a benchmark: its label, what runs, and its options."""

    label: str
    name: str
    kind: str  # "daskasync" or "peer"
    options: Mapping[str, Any]


def _value(text: str) -> Any:
    text = text.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_solver(spec: str) -> SolverSpec:
    """Parse ``"name"`` or ``"name[key=value,...]"``.

    Examples
    --------
    >>> parse_solver("asaga[barrier=bounded,tau=8]")
    SolverSpec(label='asaga[barrier=bounded,tau=8]', name='asaga', kind='daskasync', options={'barrier': 'bounded', 'tau': 8})
    >>> parse_solver("dask-glm-lbfgs").kind
    'peer'
    """
    from .peers import PEERS

    if not isinstance(spec, str):
        raise TypeError(f"solvers: each solver must be a string, got {spec!r}")
    m = _SPEC.match(spec)
    if not m:
        raise ValueError(f"solvers: cannot parse {spec!r}; use name or name[key=value,...]")
    name, body = m.group(1), m.group(2)
    if name in DASKASYNC_SOLVERS:
        kind = "daskasync"
    elif name in PEERS:
        kind = "peer"
    else:
        raise ValueError(
            f"solvers: unknown solver {name!r}; daskasync solvers are "
            f"{', '.join(DASKASYNC_SOLVERS)} and peers are {', '.join(sorted(PEERS))}"
        )
    options: dict[str, Any] = {}
    for item in filter(None, (body or "").split(",")):
        if "=" not in item:
            raise ValueError(f"solvers: option {item!r} of {spec!r} is not key=value")
        key, val = item.split("=", 1)
        key = key.strip()
        if kind == "daskasync" and key not in SOLVER_OPTIONS:
            raise ValueError(
                f"solvers: option {key!r} of {spec!r} is not one of {', '.join(SOLVER_OPTIONS)}"
            )
        options[key] = _value(val)
    return SolverSpec(spec.strip(), name, kind, options)


def straggler_model(
    model: str, *, form: str, n_units: int, c: float = 1.0, seed: int = 0
) -> Straggler:
    """The delay model over ``n_units`` partitions (``form="partition"``) or workers
    (``form="worker"``): ``"none"``, ``"intensity"`` (unit 0 sleeps ``c`` times its task
    time) or ``"cloud"`` (ASYNC's long tail: 25% of the units straggle).

    Examples
    --------
    >>> straggler_model("cloud", form="partition", n_units=32).describe()["long_tail"]
    [24, 28]
    >>> straggler_model("intensity", form="worker", n_units=2, c=0.5).delay(0, 1, 2.0)
    1.0
    """
    if model not in STRAGGLER_MODELS:
        raise ValueError(f"stragglers: must be one of {STRAGGLER_MODELS}, got {model!r}")
    if form not in STRAGGLER_FORMS:
        raise ValueError(f"straggler_form: must be one of {STRAGGLER_FORMS}, got {form!r}")
    if not (isinstance(c, (int, float)) and not isinstance(c, bool) and c >= 0):
        raise ValueError(f"straggler_c: must be a number >= 0, got {c!r}")
    if model == "none":
        return NoStragglers(seed=seed)
    if model == "intensity":
        return Intensity(c=float(c), seed=seed)
    return Cloud(n_partitions=n_units, seed=seed)


# --------------------------------------------------------------------------- #
# f* (cached)
# --------------------------------------------------------------------------- #
def compute_f_star(
    data: PartitionedData, *, loss: str, lam: float, cache_dir: str | os.PathLike[str] | None
) -> tuple[float, dict[str, Any]]:
    """``f*`` of ``mean loss + lam/2 ||w||^2`` on ``data`` by a tight L-BFGS + Newton solve
    on the driver (:func:`daskasync.reference.reference_solution`), cached in ``cache_dir``
    under a hash of the data, the loss and ``lam``."""
    import dask.base

    from ..penalties import L2
    from ..reference import reference_solution

    X, y = data.gather()
    token = dask.base.tokenize(X, y, loss, float(lam), "f_star-v1")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"f_star-{token}.json"
        if path.exists():
            cached = json.loads(path.read_text())
            return float(cached["f_star"]), {**cached, "cached": True}
    t0 = time.perf_counter()
    _theta, f = reference_solution(X, y, loss, L2(lam))
    info = {"f_star": f, "seconds": time.perf_counter() - t0, "token": token,
            "method": "L-BFGS then trust-region Newton (daskasync.reference_solution)"}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, path)
    return float(f), {**info, "cached": False}


# --------------------------------------------------------------------------- #
# one run of a solver
# --------------------------------------------------------------------------- #
def calibrate_task_time(
    data: PartitionedData, spec: SolverSpec, *, lam: float, loss: str, seed: int
) -> float:
    """Mean compute time of ``spec``'s gradient tasks, measured before the clock.

    ASYNC scales its delays by the average task time of a warm-up. Measured inside a timed
    run, the warm-up's tasks would run without delays, and a synchronous run that reaches the
    target in a few rounds would never meet a straggler. The warm-up is therefore a separate
    run without stragglers: ``5 P`` tasks (5 rounds for a synchronous solver), after which
    every timed run of the solver sleeps its delays from its first task."""
    from ..solvers import SOLVERS

    P = data.n_partitions
    updates = 5 if SOLVERS[spec.name].synchronous else 5 * P  # the engine's 5 P warm-up tasks
    res = minimize(
        data, solver=spec.name, loss=loss, penalty="l2", lam=lam, max_updates=updates,
        seed=seed, record_objective=False, record_every=10**9, **dict(spec.options),
    )
    return float(res.settings["avg_task_time"])


def _run_daskasync(
    data: PartitionedData, spec: SolverSpec, *, lam: float, loss: str, f_star: float,
    budget: float, target: float | None, seed: int, straggler: Straggler | None,
    step_size: float | None = None, avg_task_time: float | None = None,
) -> dict[str, Any]:
    opts = dict(spec.options)
    if step_size is not None:
        opts["step_size"] = step_size
    if straggler is not None and avg_task_time is not None:
        opts["avg_task_time"] = avg_task_time
    res = minimize(
        data, solver=spec.name, loss=loss, penalty="l2", lam=lam, time_budget=budget,
        record_interval=max(budget / 200.0, 0.05), seed=seed,
        stragglers=straggler, target_objective=(
            None if target is None else f_star + target * abs(f_star)
        ),
        **opts,
    )
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
    }


def _run_peer(
    data: PartitionedData, spec: SolverSpec, *, lam: float, loss: str, f_star: float,
    budget: float, target: float | None, seed: int,
) -> dict[str, Any]:
    from .peers import run_peer

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
    }


def _tune(
    data: PartitionedData, spec: SolverSpec, *, lam: float, loss: str, f_star: float,
    seconds: float, grid: Sequence[float], seed: int, straggler: Straggler | None,
    avg_task_time: float | None = None,
) -> dict[str, Any]:
    """Run ``spec`` for ``seconds`` with each multiple of its default step; keep the best
    final objective (diverging candidates lose)."""
    base = _run_daskasync(data, spec, lam=lam, loss=loss, f_star=f_star, budget=seconds,
                          target=None, seed=seed, straggler=straggler,
                          avg_task_time=avg_task_time)
    default = base["step_size"]
    tried: list[dict[str, Any]] = []
    for mult in grid:
        if mult == 1.0:
            out = base
        else:
            try:
                out = _run_daskasync(
                    data, spec, lam=lam, loss=loss, f_star=f_star, budget=seconds,
                    target=None, seed=seed, straggler=straggler, step_size=default * mult,
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


# --------------------------------------------------------------------------- #
# outputs
# --------------------------------------------------------------------------- #
def _fmt_time(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def markdown_table(results: Mapping[str, Any]) -> str:
    """The results as a markdown table (one row per solver) plus the speed-up ratios."""
    targets = results["targets"]
    head = (["solver"] + [f"time to {t:g} (s)" for t in targets]
            + ["final rel. subopt.", "updates", "mean staleness", "dropped", "step"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results["solvers"].items():
        step = r.get("step_size")
        row = [name] + [_fmt_time(r["time_to_target_s"][str(t)]) for t in targets] + [
            f"{r['final_rel_subopt']:.2e}", str(r["updates"]), f"{r['mean_staleness']:.2f}",
            str(r["dropped"]), "—" if step is None else f"{step:.3g}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    if results.get("ratios"):
        lines += ["", "| speed-up (sync time / async time) | " +
                  " | ".join(f"at {t:g}" for t in targets) + " |",
                  "|---|" + "---|" * len(targets)]
        bounds = results.get("ratio_lower_bounds") or {}
        for pair, by_t in results["ratios"].items():
            low = bounds.get(pair, {})
            cells = [f"{by_t[str(t)]:.2f}x" if by_t[str(t)] is not None
                     else f"> {low[str(t)]:.2f}x" if str(t) in low else "—" for t in targets]
            lines.append(f"| {pair} | " + " | ".join(cells) + " |")
        if bounds:
            lines += ["", "`> r`: the synchronous solver did not reach the target in its whole "
                      "run; `r` is that run's length over the asynchronous time."]
    o = results.get("overhead") or {}
    if o:
        lines += ["", f"Driver: {o['driver_updates_per_s']:.0f} updates/s; bare "
                  f"`as_completed` loop: {o['raw_as_completed_per_s']:.0f}/s "
                  f"(ratio {o['driver_updates_per_s'] / o['raw_as_completed_per_s']:.2f})."]
    return "\n".join(lines) + "\n"


def plot_traces(results: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Relative suboptimality (log) against wall time, one line per solver."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in results["solvers"].items():
        tr = np.array(r["trace"], dtype=float).reshape(-1, 2)
        keep = tr[:, 1] > 0
        if keep.any():
            ax.semilogy(tr[keep, 0], tr[keep, 1], label=name,
                        linestyle="-" if r["kind"] == "daskasync" else "--")
    for t in results["targets"]:
        ax.axhline(t, color="0.8", linewidth=0.8, zorder=0)
    ds, st = results["dataset"], results["stragglers"]
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("(f - f*) / f*")
    ax.set_title(f"{ds['name']} (n={ds['n']}, d={ds['d']}), stragglers: {st['model']} "
                 f"({st['form']})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- #
# the benchmark
# --------------------------------------------------------------------------- #
def _check_targets(targets: Iterable[float]) -> list[float]:
    out = []
    for t in targets:
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t < 1:
            raise ValueError(f"targets: each target must be in (0, 1), got {t!r}")
        out.append(float(t))
    if not out:
        raise ValueError("targets: give at least one target")
    return sorted(out, reverse=True)


def _positive(value: Any, name: str, kind: type = float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    if kind is int and int(value) != value:
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    return kind(value)


def load_benchmark_data(
    client: Any, *, data: str | None, synthetic: str, n: int, d: int, partitions: int,
    seed: int = 0, synthetic_params: Mapping[str, float] | None = None,
) -> PartitionedData:
    """A LIBSVM file (binary labels mapped to -1/+1) or a synthetic dataset (family
    parameters ``synthetic_params``, e.g. ``{"decay": 0.5}``), in ``partitions`` blocks."""
    if data is not None:
        from ..datasets import load_libsvm

        X, y = load_libsvm(data)
        labels = np.unique(y)
        if len(labels) != 2:
            raise ValueError(f"data: the benchmark needs binary labels, {data} has {labels}")
        y = np.where(y == labels[1], 1.0, -1.0)
        return PartitionedData.from_arrays(
            X, y, n_partitions=partitions, client=client, name=os.path.basename(data),
            random_state=seed,
        )
    return PartitionedData.synthetic(synthetic, n=n, d=d, n_partitions=partitions, seed=seed,
                                     client=client, **dict(synthetic_params or {}))


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
    from .overhead import measure_overhead
    from .worker_stragglers import slow_workers

    specs = [parse_solver(s) for s in solvers]
    if not specs:
        raise ValueError("solvers: give at least one solver")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"solvers: listed twice: {sorted({x for x in labels if labels.count(x) > 1})}")
    targets = _check_targets(targets)
    time_budget = _positive(time_budget, "time_budget")
    repeats = _positive(repeats, "repeats", int)
    partitions = _positive(partitions, "partitions", int)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    if lam is not None:
        lam = _positive(lam, "lam")
    if tune:
        tune_seconds = _positive(tune_seconds, "tune_seconds")
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    n_units = partitions if straggler_form == "partition" else len(workers)
    model = straggler_model(stragglers, form=straggler_form, n_units=n_units, c=straggler_c)
    if data is not None and not os.path.exists(data):
        raise ValueError(f"data: no such file {data!r}")
    if data is not None and synthetic_params:
        # (bad family parameters are refused by PartitionedData.synthetic before any task)
        raise ValueError("synthetic_params: only for synthetic data, not with data=")

    def say(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    pdata = load_benchmark_data(client, data=data, synthetic=synthetic, n=n, d=d,
                                partitions=partitions, synthetic_params=synthetic_params)
    try:
        lam_ = float(lam) if lam is not None else 1.0 / pdata.n
        cache = cache_dir if cache_dir is not None else Path.home() / ".cache" / "daskasync"
        f_star, f_info = compute_f_star(pdata, loss=loss, lam=lam_, cache_dir=cache)
        say(f"{pdata.name}: n={pdata.n} d={pdata.d} nnz={pdata.nnz}, lam={lam_:.3g}, "
            f"f*={f_star:.10g} ({'cached' if f_info['cached'] else 'computed'})")
        overhead = None
        if overhead_updates:
            o = measure_overhead(client, n_updates=int(overhead_updates), repeats=3)
            overhead = {k: o[k] for k in ("driver_updates_per_s", "raw_as_completed_per_s",
                                          "raw_as_completed_no_fetch_per_s")}
            say(f"overhead: engine {o['driver_updates_per_s']:.0f} updates/s, bare loop "
                f"{o['raw_as_completed_per_s']:.0f}/s")

        in_tasks = model if (straggler_form == "partition" and model.active) else None
        on_workers = straggler_form == "worker" and model.active
        results: dict[str, Any] = {}
        for spec in specs:
            say(f"{spec.label} ...")
            with (slow_workers(client, model) if on_workers else nullcontext()) as handle:
                tuning = None
                step = None
                avg = None
                if in_tasks is not None and spec.kind == "daskasync":
                    avg = calibrate_task_time(pdata, spec, lam=lam_, loss=loss, seed=seeds[0])
                if tune and spec.kind == "daskasync" and "step_size" not in spec.options:
                    tuning = _tune(pdata, spec, lam=lam_, loss=loss, f_star=f_star,
                                   seconds=tune_seconds, grid=tune_grid, seed=seeds[0],
                                   straggler=in_tasks, avg_task_time=avg)
                    step = tuning["chosen_step_size"]
                runs = []
                for seed in seeds:
                    for _ in range(repeats):
                        if spec.kind == "daskasync":
                            out = _run_daskasync(
                                pdata, spec, lam=lam_, loss=loss, f_star=f_star,
                                budget=time_budget, target=targets[-1], seed=seed,
                                straggler=in_tasks, step_size=step, avg_task_time=avg,
                            )
                        else:
                            out = _run_peer(pdata, spec, lam=lam_, loss=loss, f_star=f_star,
                                            budget=time_budget, target=targets[-1], seed=seed)
                        out["seed"] = seed
                        out["time_to_target_s"] = {
                            str(t): time_to_target(out["trace"], t) for t in targets
                        }
                        runs.append(out)
                injected = handle.stats() if handle is not None else None
            first = runs[0]
            entry = {
                "kind": spec.kind,
                "solver": spec.name,
                "options": dict(spec.options),
                "time_to_target_s": {
                    str(t): _median_or_none([r["time_to_target_s"][str(t)] for r in runs])
                    for t in targets
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
                    if spec.kind == "peer" and in_tasks is not None else None
                ),
            }
            if injected is not None:
                entry["injected_delay"] = injected
            if avg is not None:
                entry["avg_task_time_s"] = avg
            results[spec.label] = entry
            tt = ", ".join(f"{t:g}: {_fmt_time(entry['time_to_target_s'][str(t)])}"
                           for t in targets)
            say(f"  {spec.label}: time to target (s) {tt}; final {entry['final_rel_subopt']:.2e}")

        ratios: dict[str, dict[str, float | None]] = {}
        bounds: dict[str, dict[str, float]] = {}
        for sync, asyn in (("sgd", "asgd"), ("saga", "asaga")):
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
        threads = workers_info or {
            "workers": len(workers),
            "threads_per_worker": sorted({
                w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values()
            }),
        }
        out_json = {
            "dataset": {"name": pdata.name, "n": pdata.n, "d": pdata.d, "nnz": pdata.nnz,
                        "source": data or f"synthetic:{synthetic}",
                        **({"params": dict(synthetic_params)} if synthetic_params else {})},
            "cluster": {"workers": threads["workers"],
                        "threads_per_worker": threads["threads_per_worker"],
                        "partitions": pdata.n_partitions, "scheduler": client.scheduler.address},
            "stragglers": {"model": stragglers, "form": straggler_form,
                           **({"c": straggler_c} if stragglers == "intensity" else {}),
                           "detail": model.describe()},
            "loss": loss,
            "lam": lam_,
            "f_star": f_star,
            "f_star_info": f_info,
            "targets": targets,
            "time_budget_s": time_budget,
            "seeds": seeds,
            "repeats": repeats,
            "step_tuning": ({"grid": list(tune_grid), "seconds_per_candidate": tune_seconds}
                            if tune else "principled defaults"),
            "solvers": results,
            "ratios": ratios,
            "ratio_lower_bounds": bounds,
            "overhead": overhead,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
        }
    finally:
        pdata.release()
    if output is not None:
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(out_json, indent=1))
        (out / "results.md").write_text(markdown_table(out_json))
        plot_traces(out_json, out / "suboptimality.png")
        say(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'suboptimality.png'}")
    return out_json
