"""The benchmark's outputs: ``results.json`` (:func:`results_document`), ``results.md``
(:func:`markdown_table`) and ``suboptimality.png`` (:func:`plot_traces`), written by
:func:`write_outputs`."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .specs import BenchSettings

__all__ = ["CLOCK_NOTE", "markdown_table", "plot_traces", "ratio_cell", "results_document",
           "write_outputs"]

#: how ``results.json`` says its runs were timed
CLOCK_NOTE = (
    "daskasync runs stop on their time budget only (no tol, gtol or target_objective): no "
    "objective check was requested on their clock; times to target are read from model "
    "snapshots (every budget/200 s or finer) whose objectives are evaluated after the run. "
    "in_run_checks counts the full-data passes that ran on the clock all the same (a "
    "solver's own); peers evaluate their objective with their clock "
    "stopped."
)


def format_time(v: float | None) -> str:
    """Seconds to a target as the table shows them (``—``: never reached)."""
    return "—" if v is None else f"{v:.2f}"


def _solver_rows(results: Mapping[str, Any]) -> list[str]:
    targets = results["targets"]
    head = (["solver"] + [f"time to {t:g} (s)" for t in targets]
            + ["final rel. subopt.", "updates", "mean staleness", "dropped", "step",
               "in-run checks"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results["solvers"].items():
        step = r.get("step_size")
        checks = r.get("in_run_checks", "—")
        row = [name] + [format_time(r["time_to_target_s"][str(t)]) for t in targets] + [
            f"{r['final_rel_subopt']:.2e}", str(r["updates"]), f"{r['mean_staleness']:.2f}",
            str(r["dropped"]), "—" if step is None else f"{step:.3g}",
            "not counted" if checks is None else str(checks),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _pair_rows(results: Mapping[str, Any]) -> list[str]:
    targets = results["targets"]
    if not results.get("ratios"):
        return []
    lines = ["", "| speed-up (sync time / async time) | " +
             " | ".join(f"at {t:g}" for t in targets) + " |", "|---|" + "---|" * len(targets)]
    bounds = results.get("ratio_lower_bounds") or {}
    for pair, by_t in results["ratios"].items():
        low = bounds.get(pair, {})
        cells = [f"{by_t[str(t)]:.2f}x" if by_t[str(t)] is not None
                 else f"> {low[str(t)]:.2f}x" if str(t) in low else "—" for t in targets]
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    if bounds:
        lines += ["", "`> r`: the synchronous solver did not reach the target in its whole "
                  "run; `r` is that run's length over the asynchronous time."]
    return lines


def ratio_cell(cell: Mapping[str, Any]) -> str:
    """A speed-up cell of ``ratios_to_best_sync`` as text: ``2.61x``, ``> 1.90x`` (only the
    asynchronous solver got there), ``< 0.40x`` (only the synchronous one did), ``—``."""
    if cell.get("ratio") is not None:
        return f"{cell['ratio']:.2f}x"
    if "lower_bound" in cell:
        return f"> {cell['lower_bound']:.2f}x"
    if "upper_bound" in cell:
        return f"< {cell['upper_bound']:.2f}x"
    return "—"


def _best_sync_rows(results: Mapping[str, Any]) -> list[str]:
    targets, best = results["targets"], results.get("best_sync") or {}
    if not best:
        return []
    lines = ["", "| against the best synchronous solver | " +
             " | ".join(f"at {t:g}" for t in targets) + " |", "|---|" + "---|" * len(targets)]
    names = [best[str(t)]["solver"] or "none reached" for t in targets]
    times = [format_time(best[str(t)]["time_to_target_s"]) for t in targets]
    lines.append("| best synchronous solver | " + " | ".join(
        f"{n} ({tt} s)" if tt != "—" else n for n, tt in zip(names, times, strict=True)) + " |")
    for name, by_t in (results.get("ratios_to_best_sync") or {}).items():
        lines.append(f"| {name} (best sync time / its time) | " +
                     " | ".join(ratio_cell(by_t[str(t)]) for t in targets) + " |")
    lines += ["", "Synchronous solvers: daskasync's synchronous ones and every peer. `> r`: "
              "no synchronous solver got there in its runs (`r`: the shortest one's length "
              "over the asynchronous time); `< r`: the asynchronous solver did not (`r`: the "
              "best synchronous time over its shortest run)."]
    return lines


def _notes(results: Mapping[str, Any]) -> list[str]:
    lines = []
    o = results.get("overhead") or {}
    if o:
        line = (f"Driver: {o['driver_updates_per_s']:.0f} updates/s; bare `as_completed` "
                f"loop: {o['raw_as_completed_per_s']:.0f}/s "
                f"(ratio {o['driver_updates_per_s'] / o['raw_as_completed_per_s']:.2f})")
        if "driver_ratio" in o:
            line += (f"; like-for-like loop (event loop, batched, on the blocks): "
                     f"{o['like_for_like_per_s']:.0f}/s (driver_ratio {o['driver_ratio']:.2f})")
        lines += ["", line + "."]
    fc = results.get("fair_clock")
    if fc:
        ratio = "—" if fc["ratio"] is None else f"{fc['ratio']:.2f}"
        lines += ["", f"Fair clock: no objective check requested on any run's clock (the "
                  f"in-run checks column counts the passes that ran all the same). What "
                  f"checks would cost: {fc['solver']}, {fc['updates']} updates, "
                  f"{fc['s_per_update_no_check']:.4f} s per update without a check, "
                  f"{fc['s_per_update_with_checks']:.4f} s with one after every update "
                  f"(ratio {ratio}; {fc['checks_with_tol']} checks counted)."]
    launches = results.get("launches") or {}
    if launches.get("count", 1) > 1:
        lines += ["", f"Medians over {launches['count']} cluster launches x "
                  f"{len(results['seeds'])} seed(s) x {results['repeats']} repeat(s)."]
    return lines


def markdown_table(results: Mapping[str, Any]) -> str:
    """The results as markdown: one row per solver, the pairs' speed-ups, the speed-ups
    against the best synchronous solver at each target (named), and notes on the driver
    overhead, the fair clock and the launches (each part only when ``results`` has it)."""
    lines = (_solver_rows(results) + _pair_rows(results) + _best_sync_rows(results)
             + _notes(results))
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


def results_document(
    settings: BenchSettings, *, dataset: Mapping[str, Any], cluster: Mapping[str, Any],
    lam: float, f_star: float, f_info: Mapping[str, Any], solvers: Mapping[str, Any],
    ratios: Mapping[str, Any], bounds: Mapping[str, Any],
    overhead: Mapping[str, Any] | None, best_sync: Mapping[str, Any],
    to_best_sync: Mapping[str, Any], fair_clock: Mapping[str, Any] | None,
    launches: Mapping[str, Any], worker_indices: Mapping[str, int] | None,
) -> dict[str, Any]:
    """The content of ``results.json``: the problem (``dataset``: its ``name``, ``n``,
    ``d``, ``nnz``), the cluster (``workers``, ``threads_per_worker``, ``partitions``,
    ``scheduler``), the settings, each solver's entry, the speed-up ratios (pairs and
    against the best synchronous solver, ``best_sync`` per target) and their bounds, the
    fair clock (what checks cost, or ``None``), the launches, the driver overhead and the
    machine."""
    s = settings
    return {
        "dataset": {"name": dataset["name"], "n": dataset["n"], "d": dataset["d"],
                    "nnz": dataset["nnz"], "source": s.data or f"synthetic:{s.synthetic}",
                    **({"params": dict(s.synthetic_params)} if s.synthetic_params else {})},
        "cluster": dict(cluster),
        "stragglers": {"model": s.stragglers, "form": s.straggler_form,
                       **({"c": s.straggler_c} if s.stragglers == "intensity" else {}),
                       "detail": s.model.describe(),
                       **({"workers_by_name": dict(worker_indices)}
                          if worker_indices is not None else {}),
                       **({"straggler_workers": list(s.straggler_workers)}
                          if s.straggler_workers else {})},
        "loss": s.loss,
        "lam": lam,
        "f_star": f_star,
        "f_star_info": f_info,
        "targets": s.targets,
        "time_budget_s": s.time_budget,
        "seeds": s.seeds,
        "repeats": s.repeats,
        "launches": dict(launches),
        "step_tuning": ({"grid": list(s.tune_grid), "seconds_per_candidate": s.tune_seconds}
                        if s.tune else "principled defaults"),
        "clock": CLOCK_NOTE,
        "solvers": solvers,
        "ratios": ratios,
        "ratio_lower_bounds": bounds,
        "best_sync": best_sync,
        "ratios_to_best_sync": to_best_sync,
        "fair_clock": fair_clock,
        "overhead": overhead,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }


def write_outputs(results: Mapping[str, Any], output: str | os.PathLike[str],
                  say: Callable[[str], None]) -> None:
    """Write ``results.json``, ``results.md`` and ``suboptimality.png`` into the folder
    ``output`` (created if needed)."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown_table(results))
    plot_traces(results, out / "suboptimality.png")
    say(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'suboptimality.png'}")
