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

from ..data import PartitionedData
from .specs import BenchSettings

__all__ = ["markdown_table", "plot_traces", "results_document", "write_outputs"]


def format_time(v: float | None) -> str:
    """Seconds to a target as the table shows them (``—``: never reached)."""
    return "—" if v is None else f"{v:.2f}"


def markdown_table(results: Mapping[str, Any]) -> str:
    """The results as a markdown table (one row per solver) plus the speed-up ratios."""
    targets = results["targets"]
    head = (["solver"] + [f"time to {t:g} (s)" for t in targets]
            + ["final rel. subopt.", "updates", "mean staleness", "dropped", "step"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results["solvers"].items():
        step = r.get("step_size")
        row = [name] + [format_time(r["time_to_target_s"][str(t)]) for t in targets] + [
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


def results_document(
    settings: BenchSettings, *, data: PartitionedData, client: Any,
    threads: Mapping[str, Any], lam: float, f_star: float, f_info: Mapping[str, Any],
    solvers: Mapping[str, Any], ratios: Mapping[str, Any], bounds: Mapping[str, Any],
    overhead: Mapping[str, float] | None,
) -> dict[str, Any]:
    """The content of ``results.json``: the problem, the cluster (``threads``: its
    ``"workers"`` and ``"threads_per_worker"``), the settings, each solver's entry, the
    speed-up ratios and their lower bounds, the driver overhead and the machine."""
    s = settings
    return {
        "dataset": {"name": data.name, "n": data.n, "d": data.d, "nnz": data.nnz,
                    "source": s.data or f"synthetic:{s.synthetic}",
                    **({"params": dict(s.synthetic_params)} if s.synthetic_params else {})},
        "cluster": {"workers": threads["workers"],
                    "threads_per_worker": threads["threads_per_worker"],
                    "partitions": data.n_partitions, "scheduler": client.scheduler.address},
        "stragglers": {"model": s.stragglers, "form": s.straggler_form,
                       **({"c": s.straggler_c} if s.stragglers == "intensity" else {}),
                       "detail": s.model.describe()},
        "loss": s.loss,
        "lam": lam,
        "f_star": f_star,
        "f_star_info": f_info,
        "targets": s.targets,
        "time_budget_s": s.time_budget,
        "seeds": s.seeds,
        "repeats": s.repeats,
        "step_tuning": ({"grid": list(s.tune_grid), "seconds_per_candidate": s.tune_seconds}
                        if s.tune else "principled defaults"),
        "solvers": solvers,
        "ratios": ratios,
        "ratio_lower_bounds": bounds,
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
