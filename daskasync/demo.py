"""``daskasync demo``: a synchronous solver against an asynchronous one under injected
stragglers, on one cluster, told as a time-to-target table, the speed-ups and a verdict
computed from the numbers.

The race itself is the straggler benchmark (:func:`~daskasync.bench.runner.run_benchmark`:
the same fair clock, times to target read from snapshots evaluated after each run, the same
plot); this module chooses its defaults (:data:`DEMO_DEFAULTS`) and tells the result
(:func:`summary`, from the benchmark's ``results.json`` content alone).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .bench.report import ratio_cell as ratio_text

__all__ = ["DEMO_DEFAULTS", "TIE", "dashboard_note", "describe_start", "ratio_text",
           "run_demo", "shown", "summary", "time_table", "verdict"]

#: the embedded default problem and race: synchronous L-BFGS against asynchronous
#: aggregated-gradient L-BFGS (``solver="auto"``'s choice for smooth problems) on dense,
#: ill-conditioned epsilon-like data (``decay=0.5``: a power-law spectrum, so that L-BFGS
#: needs enough rounds to meet the stragglers), ASYNC's cloud stragglers slept inside the
#: tasks
DEMO_DEFAULTS: dict[str, Any] = {
    "synthetic": "epsilon",
    "n": 80_000,
    "d": 500,
    "synthetic_params": {"decay": 0.5},
    "partitions": 16,
    "workers": 2,
    "threads": 8,
    "solvers": ("lbfgs", "albfgs"),
    "stragglers": "cloud",
    "targets": (1e-2, 1e-4, 1e-6),
    "time_budget": 10.0,
    "output": "daskasync-demo",
}

#: speed-ups within ``[1 / TIE, TIE]`` are called a tie
TIE = 1.1


def shown(default: Any) -> str:
    """A value as a user would type it on the command line: lists comma separated, numbers
    short.

    Examples
    --------
    >>> shown([1e-2, 1e-4, 2.5e-6]), shown(12.0)
    ('0.01,1e-4,2.5e-6', '12')
    """
    if isinstance(default, (list, tuple)):
        return ",".join(shown(v) for v in default)
    if isinstance(default, float):
        text = f"{default:.6e}" if 0 < abs(default) < 1e-3 else f"{default:g}"
        mantissa, e, exponent = text.partition("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if e else mantissa
        return f"{mantissa}e{int(exponent)}" if e else mantissa
    return str(default)


def run_demo(client: Any, *, progress: bool = True, **options: Any) -> dict[str, Any]:
    """Race ``DEMO_DEFAULTS["solvers"]`` (or ``solvers=``) on ``client``'s cluster.

    Parameters
    ----------
    client : distributed.Client
        The cluster to race on.
    progress : bool
        Print the benchmark's progress lines.
    **options
        Arguments of :func:`~daskasync.bench.runner.run_benchmark` overriding
        :data:`DEMO_DEFAULTS` (``workers`` and ``threads`` are the cluster's business and
        are ignored here). The driver-overhead measurement and the cost of objective checks
        are skipped (``overhead_updates=0``, ``check_cost=False``). ``synthetic_params``
        defaults to ``DEMO_DEFAULTS``'s only for the epsilon-like family.

    Returns
    -------
    dict
        The content of ``results.json`` (written, with ``results.md`` and
        ``suboptimality.png``, into ``output`` unless it is ``None``).
    """
    from .bench.runner import run_benchmark

    kw = {k: v for k, v in {**DEMO_DEFAULTS, **options}.items()
          if k not in ("workers", "threads")}
    if "synthetic_params" not in options and (kw.get("data") or kw["synthetic"] != "epsilon"):
        kw["synthetic_params"] = None  # decay is the default epsilon-like problem's
    return run_benchmark(client, overhead_updates=0, check_cost=False, progress=progress,
                         **kw)


def _is_sync(entry: Mapping[str, Any]) -> bool:
    from .solvers import SOLVERS

    return entry["kind"] == "peer" or bool(SOLVERS[entry["solver"]].synchronous)



def time_table(results: Mapping[str, Any]) -> list[str]:
    """Lines of the table: seconds to each target per solver, then each asynchronous
    solver's speed-up against the fastest synchronous solver at that target."""
    from .bench.report import format_time

    targets = results["targets"]
    rows = [["seconds to target"] + [f"{t:g}" for t in targets]]
    for name, entry in results["solvers"].items():
        kind = "synchronous" if _is_sync(entry) else "asynchronous"
        rows.append([f"{name} ({kind})"]
                    + [format_time(entry["time_to_target_s"][str(t)]) for t in targets])
    for name, by_t in (results.get("ratios_to_best_sync") or {}).items():
        rows.append([f"speed-up of {name}"] + [ratio_text(by_t[str(t)]) for t in targets])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def _sentence(name: str, t: str, cell: Mapping[str, Any], results: Mapping[str, Any]) -> str:
    """The verdict for one asynchronous solver at the target ``t`` (``cell``: its entry of
    ``ratios_to_best_sync``)."""
    solvers, stragglers = results["solvers"], results["stragglers"]["model"]
    t_async = solvers[name]["time_to_target_s"][t]
    best = cell["best_sync"]
    t_sync = None if best is None else solvers[best]["time_to_target_s"][t]
    where = "without stragglers" if stragglers == "none" else f"under {stragglers} stragglers"
    r = cell.get("ratio")
    if r is not None and r >= TIE:
        return (f"{name} reached {float(t):g} {r:.1f}x sooner than {best} ({t_async:.1f} s "
                f"against {t_sync:.1f} s): {where}, not waiting for the slow partitions paid.")
    if r is not None and r <= 1 / TIE:
        return (f"{best} reached {float(t):g} {1 / r:.1f}x sooner than {name} ({t_sync:.1f} s "
                f"against {t_async:.1f} s): {where}, the asynchronous solver did not pay "
                "on this run.")
    if r is not None:
        return (f"{name} and {best} reached {float(t):g} within 10% of each other "
                f"({t_async:.1f} s and {t_sync:.1f} s): {where}, a tie.")
    if "lower_bound" in cell:
        return (f"only {name} reached {float(t):g} ({t_async:.1f} s), at least "
                f"{cell['lower_bound']:.1f}x sooner than any synchronous solver, none of "
                f"which got there in its {results['time_budget_s']:g} s run ({where}).")
    return (f"only {best} reached {float(t):g} ({t_sync:.1f} s); {name} did not get there in "
            f"its {results['time_budget_s']:g} s run ({where}): the asynchronous solver did "
            "not pay on this run.")


def verdict(results: Mapping[str, Any]) -> list[str]:
    """One sentence per asynchronous solver, computed from the numbers: who reached the
    smallest target that any of the two reached, how much sooner, and whether it paid.
    Without an asynchronous or a synchronous solver, or when nobody reached any target,
    the sentence says so."""
    targets = [str(t) for t in results["targets"]]
    pairs = results.get("ratios_to_best_sync") or {}
    if not pairs:
        return ["nothing to compare: give at least one synchronous and one asynchronous "
                "solver (e.g. --solvers lbfgs albfgs)."]
    out = []
    for name, by_t in pairs.items():
        reached = [t for t in targets if ratio_text(by_t[t]) != "—"]
        if not reached:
            out.append(f"neither {name} nor a synchronous solver reached {targets[0]} in "
                       f"{results['time_budget_s']:g} s: give a larger --time-budget or a "
                       "smaller problem.")
            continue
        out.append(_sentence(name, reached[-1], by_t[reached[-1]], results))
    return out


def _partitions(results: Mapping[str, Any]) -> int:
    return int(results["cluster"]["partitions"])


def _next_commands(results: Mapping[str, Any]) -> list[str]:
    ds = results["dataset"]
    stragglers = results["stragglers"]["model"]
    other = "none" if stragglers != "none" else "cloud"
    why = ("the same race on a healthy cluster" if other == "none"
           else "the same race under ASYNC's cloud stragglers")
    solvers = [*results["solvers"]]
    more = " ".join(dict.fromkeys([*solvers, "saga", "asaga", "sklearn-lbfgs"]))
    targets = shown(list(results["targets"]))
    source = str(ds.get("source", "synthetic:"))
    data = (f"--data {source}" if not source.startswith("synthetic:") else
            f"--synthetic {source.partition(':')[2] or 'epsilon'} --n {2 * ds['n']} "
            f"--d {2 * ds['d']}" + "".join(f" --synthetic-param {k}={v:g}"
                                            for k, v in (ds.get("params") or {}).items()))
    return [
        f"  daskasync demo --stragglers {other}    # {why}",
        f"  daskasync bench {data} --partitions {_partitions(results)} --solvers {more} "
        f"--stragglers {stragglers} --targets {targets} --time-budget 60    # more "
        "solvers, scikit-learn included (see daskasync bench --help)",
    ]


def summary(results: Mapping[str, Any], *, output: str | os.PathLike[str] | None,
            dashboard: str | None) -> str:
    """What the demo prints at the end: the problem, the table, the verdict, where the
    plot is, the dashboard link and the next commands to try."""
    ds, st = results["dataset"], results["stragglers"]
    lines = ["", f"{ds['name']}: {ds['n']} rows x {ds['d']} columns in {_partitions(results)} "
             f"partitions; stragglers: {st['model']} ({st['form']} form); "
             f"{results['time_budget_s']:g} s per solver.", ""]
    lines += time_table(results)
    lines += ["", "verdict: " + " ".join(verdict(results))]
    if output is not None:
        lines.append(f"plot: {Path(output).resolve() / 'suboptimality.png'} "
                     "(tables: results.md, everything: results.json)")
    if dashboard:
        lines.append(f"dashboard: {dashboard} (open it while a demo runs)")
    lines += ["next:", *_next_commands(results)]
    return "\n".join(lines)


def dashboard_note(link: str | None) -> str:
    """The line that gives the dashboard's address (or says why there is none)."""
    if not link:
        return "dashboard: none (the cluster serves no dashboard)"
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return f"dashboard: {link} (its plots need bokeh: pip install 'bokeh>=3.1')"
    return f"dashboard: {link} (watch the tasks while the solvers race)"


def describe_start(solvers: Sequence[str], stragglers: str, budget: float) -> str:
    """The line printed before the race."""
    return (f"racing {' against '.join(solvers)} under {stragglers} stragglers, "
            f"{budget:g} s each (every solver runs its whole budget; times to target are "
            "read from snapshots evaluated afterwards)")
