"""The benchmark's speed-ups: every asynchronous daskasync solver against the synchronous
solver of its family (:func:`pair_ratios`, the pairs of
:data:`~daskasync.bench.specs.SYNC_ASYNC_PAIRS`) and against the fastest synchronous
solver of the run at each target (:func:`ratios_to_best_sync`: daskasync's synchronous
solvers and every peer, all synchronous).

A speed-up is ``sync time / async time`` to a target (medians over the runs). When only
the asynchronous solver got there, it is at least the synchronous runs' length over the
asynchronous time (a lower bound, ``> r``); when only the synchronous one did, at most
its time over the asynchronous runs' length (an upper bound, ``< r``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..solvers import SOLVERS
from .specs import SYNC_ASYNC_PAIRS, BenchSolver

__all__ = ["best_sync", "is_synchronous", "pair_ratios", "ratios_to_best_sync"]


def is_synchronous(spec: BenchSolver) -> bool:
    """Peers are synchronous; a daskasync solver is what its registry class says.

    Examples
    --------
    >>> from daskasync.bench.specs import parse_solver
    >>> [is_synchronous(parse_solver(s)) for s in ("sgd", "asaga", "sklearn-saga")]
    [True, False, True]
    """
    return spec.kind == "peer" or bool(SOLVERS[spec.name].synchronous)


def _run_length(entry: Mapping[str, Any]) -> float:
    """The shortest of a solver's runs (seconds on its clock): how long it was given at
    least to reach a target it never reached."""
    runs = entry.get("runs") or []
    lengths = [r["wall_time_s"] for r in runs if r.get("wall_time_s") is not None]
    if lengths:
        return float(min(lengths))
    trace = entry.get("trace") or []
    return float(trace[-1][0]) if trace else 0.0


def pair_ratios(
    specs: Sequence[BenchSolver], results: Mapping[str, Any], targets: Sequence[float]
) -> tuple[dict[str, dict[str, float | None]], dict[str, dict[str, float]]]:
    """Speed-ups (sync time / async time to each target) of every synchronous/asynchronous
    pair of :data:`~daskasync.bench.specs.SYNC_ASYNC_PAIRS` that ran, and lower bounds where
    only the asynchronous solver got there (the synchronous run's length over the
    asynchronous time)."""
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
                trace_b = results[b.label]["trace"]
                ran = trace_b[-1][0] if trace_b else 0.0
                low = {str(t): ran / ta[str(t)] for t in targets
                       if tb[str(t)] is None and ta[str(t)]}
                if low:
                    bounds[pair] = low
    return ratios, bounds


def best_sync(
    specs: Sequence[BenchSolver], results: Mapping[str, Any], targets: Sequence[float]
) -> dict[str, dict[str, Any]]:
    """For each target, the synchronous solver with the shortest median time to it
    (``solver`` ``None`` when none got there; the first listed wins a tie).

    Examples
    --------
    >>> from daskasync.bench.specs import parse_solver
    >>> specs = [parse_solver(s) for s in ("sgd", "asgd", "sklearn-saga")]
    >>> res = {"sgd": {"time_to_target_s": {"0.1": 3.0}},
    ...        "asgd": {"time_to_target_s": {"0.1": 1.0}},
    ...        "sklearn-saga": {"time_to_target_s": {"0.1": 2.0}}}
    >>> best_sync(specs, res, [0.1])
    {'0.1': {'solver': 'sklearn-saga', 'time_to_target_s': 2.0}}
    """
    out: dict[str, dict[str, Any]] = {}
    sync = [s for s in specs if is_synchronous(s)]
    for t in targets:
        times = [(results[s.label]["time_to_target_s"][str(t)], i, s.label)
                 for i, s in enumerate(sync)]
        reached = sorted((v, i, name) for v, i, name in times if v is not None)
        out[str(t)] = ({"solver": reached[0][2], "time_to_target_s": reached[0][0]}
                       if reached else {"solver": None, "time_to_target_s": None})
    return out


def ratios_to_best_sync(
    specs: Sequence[BenchSolver], results: Mapping[str, Any], targets: Sequence[float]
) -> dict[str, dict[str, dict[str, Any]]]:
    """For every asynchronous daskasync solver and target: ``{"ratio": best sync time /
    async time, "best_sync": name}``, with ``ratio`` ``None`` and a ``lower_bound``
    (smallest synchronous run length over the async time) when no synchronous solver got
    there, or an ``upper_bound`` (best sync time over the async runs' length) when only
    the synchronous one did; neither when neither got there (nor when the asynchronous
    solver was there at time 0). Empty without a synchronous solver in the run."""
    sync = [s for s in specs if is_synchronous(s)]
    if not sync:
        return {}
    best = best_sync(specs, results, targets)
    shortest_sync = min(_run_length(results[s.label]) for s in sync)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for a in (s for s in specs if not is_synchronous(s)):
        ta = results[a.label]["time_to_target_s"]
        row: dict[str, dict[str, Any]] = {}
        for t in targets:
            b, t_async = best[str(t)], ta[str(t)]
            cell: dict[str, Any] = {"ratio": None, "best_sync": b["solver"]}
            if b["solver"] is not None and t_async:
                cell["ratio"] = b["time_to_target_s"] / t_async
            elif b["solver"] is None and t_async:
                cell["lower_bound"] = shortest_sync / t_async
            elif t_async is None and b["solver"] is not None and _run_length(results[a.label]):
                cell["upper_bound"] = b["time_to_target_s"] / _run_length(results[a.label])
            row[str(t)] = cell
        out[a.label] = row
    return out
