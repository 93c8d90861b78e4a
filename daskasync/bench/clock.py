"""The benchmark's fair clock: no full-objective check inside a timed run, counted, and what
such checks cost, measured.

A daskasync run of the benchmark stops only on its time budget: no ``tol``, ``gtol`` or
``target_objective``, so the monitor launches no check pass. Its times to target come from
model snapshots whose objectives are evaluated after the run, off the clock
(``record_objective=True``). What still runs inside the clock is counted, not assumed:
:class:`PassCounter`, a scheduler plugin, logs every full-data pass task (the engine's
kinds ``eval`` and ``objective``) that the scheduler starts, and :func:`in_run_passes`
removes the passes that ``minimize`` runs after the clock stops (the final evaluation
and the deferred objectives of the snapshots). A solver whose algorithm itself needs full
objectives (a solver that evaluates its iterates as part of its algorithm,
which watch the objective alongside the run) shows them here: they are part of its cost.

:func:`measure_check_cost` runs a few updates of one synchronous solver twice, as the
benchmark runs it and with a tolerance (a check after every update, which a synchronous
round waits for), and reports their ratio: what the old way of timing cost.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from distributed import SchedulerPlugin

from ..api import minimize
from ..constraints import Interval, check
from ..data import PartitionedData
from ..stragglers import Straggler
from .specs import BenchSolver

__all__ = ["PassCounter", "count_passes", "in_run_passes", "measure_check_cost"]

#: the engine's task keys: ``<name>-<kind>-p<partition>-<run_id>-<n>``
_PASS_KEY = re.compile(r"-(eval|objective)-p(\d+)-(\w+)-(\d+)$")
#: updates of :func:`measure_check_cost` at most
CHECK_COST_UPDATES = 10
#: a tolerance no run meets (``|f_k - f_{k-1}| <= tol |f|`` only if nothing moved)
_NEVER_TOL = 1e-300


class PassCounter(SchedulerPlugin):
    """Logs ``(kind, run_id, n)`` for every task of a full-data pass (kind ``eval`` or
    ``objective`` in the engine's key) that the scheduler starts processing.

    A task started again after a worker loss is logged again. Keys of other tasks (the
    gradient tasks, the peers' objective tasks) are ignored.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish != "processing" or start == "processing" or not isinstance(key, str):
            return
        m = _PASS_KEY.search(key)
        if m:
            self.events.append((m.group(1), m.group(3), int(m.group(4))))


def _take_events(name: str, dask_scheduler: Any = None) -> list[tuple[str, str, int]]:
    """The events the plugin ``name`` logged since the last call (and forget them)."""
    plugin = dask_scheduler.plugins[name]
    events, plugin.events = plugin.events, []
    return events


class _Counting:
    """Handle of a registered :class:`PassCounter`: :meth:`take` returns and forgets its
    events."""

    def __init__(self, client: Any, name: str) -> None:
        self.client, self.name = client, name

    def take(self) -> list[tuple[str, str, int]]:
        return [tuple(e) for e in self.client.run_on_scheduler(_take_events, self.name)]


@contextmanager
def count_passes(client: Any) -> Iterator[_Counting | None]:
    """Register a :class:`PassCounter` on ``client``'s scheduler for the block; yields its
    handle, or ``None`` when the scheduler cannot take it (e.g. it cannot import
    daskasync): the passes are then not counted (``None`` in the results)."""
    name = f"daskasync-bench-passes-{uuid.uuid4().hex[:8]}"
    try:
        client.register_plugin(PassCounter(), name=name)
    except Exception:  # the scheduler cannot unpickle the plugin: not counted
        yield None
        return
    try:
        yield _Counting(client, name)
    finally:
        client.unregister_scheduler_plugin(name)


def in_run_passes(events: list[tuple[str, str, int]], n_partitions: int) -> dict[str, int]:
    """Full-data passes of one ``minimize`` call launched inside its timed run.

    ``minimize`` ends every run with one ``eval`` pass (the final objective) and, when some
    snapshot's objective is still unknown, one ``objective`` pass (the deferred
    objectives), both after the clock stops. Everything launched before that final
    evaluation (key counter ``n`` below its first task) ran inside the run. Passes are
    counted as tasks over ``n_partitions``, rounded up.

    Examples
    --------
    >>> ev = [("eval", "r", n) for n in (4, 5)] + [("eval", "r", n) for n in (9, 10)]
    >>> in_run_passes(ev + [("objective", "r", 11), ("objective", "r", 12)], 2)
    {'eval': 1, 'objective': 0}
    """
    check("n_partitions", n_partitions, Interval("int", 1))
    evals = sorted(n for kind, _r, n in events if kind == "eval")
    if not evals:
        return {"eval": 0, "objective": 0}
    cut = evals[-n_partitions] if len(evals) >= n_partitions else evals[0]
    out = {}
    for kind in ("eval", "objective"):
        tasks = sum(1 for k, _r, n in events if k == kind and n < cut)
        out[kind] = -(-tasks // n_partitions)
    return out


def _timed_updates(
    data: PartitionedData, spec: BenchSolver, counter: _Counting | None, updates: int,
    checked: bool, **kw: Any,
) -> tuple[float, int, int | None]:
    """Seconds per update of ``updates`` updates of ``spec`` (with a check after every
    update when ``checked``), the updates made, and the check passes counted."""
    if counter is not None:
        counter.take()
    extra = {"tol": _NEVER_TOL, "check_every": 1} if checked else {}
    res = minimize(data, solver=spec.name, max_updates=updates, record_every=10**9,
                   record_objective=False, **kw, **extra)
    passes = None
    if counter is not None:
        p = in_run_passes(counter.take(), data.n_partitions)
        passes = p["eval"] + p["objective"]
    return float(res.wall_time) / max(1, res.updates), int(res.updates), passes


def measure_check_cost(
    data: PartitionedData, spec: BenchSolver, *, lam: float, loss: str, seed: int,
    updates: int, counter: _Counting | None, step_size: float | None = None,
    straggler: Straggler | None = None, avg_task_time: float | None = None,
) -> dict[str, Any]:
    """Wall time per update of ``min(10, updates)`` updates of the synchronous solver
    ``spec``, run once as the benchmark runs it (no check) and once with ``tol`` set
    (checks of the full objective run alongside, a new one as soon as the last one
    finished), with the same step, seed and stragglers; ``ratio`` is checked over
    unchecked.

    Returns
    -------
    dict
        ``solver``, ``updates``, ``check_every`` (1), ``s_per_update_no_check``,
        ``s_per_update_with_checks``, ``ratio``, ``checks_no_check`` and
        ``checks_with_tol`` (passes counted inside each run; ``None`` if uncounted) and
        ``s_per_check`` (the extra seconds per counted check).
    """
    check("updates", updates, Interval("int", 1))
    n = min(CHECK_COST_UPDATES, int(updates))
    opts = spec.minimize_options()
    if step_size is not None:
        opts["step_size"] = step_size
    if straggler is not None and avg_task_time is not None:
        opts["avg_task_time"] = avg_task_time
    kw = dict(loss=loss, penalty="l2", lam=lam, seed=seed, stragglers=straggler, **opts)
    plain, n_plain, c_plain = _timed_updates(data, spec, counter, n, False, **kw)
    checked, n_checked, c_checked = _timed_updates(data, spec, counter, n, True, **kw)
    extra = (checked - plain) * n_checked  # seconds the checks added to the checked run
    return {
        "solver": spec.label,
        "updates": n,
        "check_every": 1,
        "s_per_update_no_check": plain,
        "s_per_update_with_checks": checked,
        "ratio": checked / plain if plain > 0 else None,
        "checks_no_check": c_plain,
        "checks_with_tol": c_checked,
        "s_per_check": extra / c_checked if c_checked else None,
    }
