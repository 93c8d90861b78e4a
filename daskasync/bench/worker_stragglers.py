"""Per-worker, engine-agnostic stragglers: slow down every task a worker runs.

daskasync injects its stragglers per partition, inside its own gradient tasks. Peers (dask-glm,
dask-ml) cannot be instrumented that way, so for a fair race the benchmark slows down *workers*
instead: every task that runs on a straggler worker holds its thread an extra ``delay`` seconds
after it finishes, with ::

    delay = model.delay(worker_index, task_counter_on_that_worker, own_run_time)

i.e. the same :class:`~daskasync.stragglers.Straggler` models, with "partition" read as the
worker's index and ``avg`` as the task's own measured run time. ``Intensity(c)`` thus makes a
worker ``1 + c`` times slower, whatever engine submitted the task.

How it works (distributed 2026.8)
---------------------------------
A :class:`StragglerPlugin` (a ``WorkerPlugin``) replaces ``worker.executors["default"]`` by a
:class:`StragglerThreadPoolExecutor` that wraps the original thread pool. ``Worker.execute``
looks the executor up in ``worker.executors`` for every task it starts (``worker.py`` around
line 2159), so the swap applies to the next task; tasks already running finish unslowed. The
wrapper's class name contains ``"ThreadPoolExecutor"``: ``Worker.execute`` tests exactly that
(``"ThreadPoolExecutor" in str(type(e))``, ``worker.py`` line 2189) to run tasks through
``run_in_executor_with_context`` (``utils.py`` line 1446) and ``_run_task`` (``worker.py`` line
2760), which keep ``get_worker()``, ``secede``/``rejoin`` and ``worker_client`` working. The
callable is run in the original pool's thread, then the thread sleeps the delay, so the pool
slot is really occupied and the worker's state machine starts no other task on it, as on a slow
machine. The delay is also added to the ``stop`` time of distributed's task message
(``count_as_compute``), so the scheduler's duration estimates (occupancy, work stealing) see the
slow worker as slow. ``teardown`` (called by ``Client.unregister_worker_plugin`` and on ``Worker.close``,
``worker.py`` lines 1478 and 1791) puts the original executor back and cuts short any delay in
progress.

Caveats
-------
- Tiny tasks (``getitem``, bookkeeping) get proportionally tiny delays (busy-waited below
  0.2 ms, so a timer's overshoot does not inflate them); the fixed cost per task is a few
  microseconds, a few tens for :class:`~daskasync.stragglers.Cloud` (a seeded generator per
  task). Delays of 0.2 ms and more are slept, overshooting by ~0.05-0.2 ms like daskasync's own
  in-task ``time.sleep``.
- ``k`` counts the callables the worker hands to its default executor since setup, in the order
  it starts them: with several threads the order tasks *finish* in does not matter, so the delay
  stays a pure function of ``(seed, worker index, k, t)``, but ``k`` (hence ``Cloud``'s draw)
  does depend on which tasks the scheduler sent to that worker, and in what order.
- ``t`` is wall time: it includes waiting inside the task (GIL contention, I/O, a seceded
  ``worker_client`` task's whole life).
- Not slowed: ``async def`` tasks, actors, tasks annotated with another executor, and anything
  but tasks (``client.run``, comms). The thread pool's other users (``Worker.benchmark_*``)
  would be counted.
- Only thread pools are wrapped (``setup`` raises ``TypeError`` otherwise).

Worker index: the position of the worker in the order of the names of all workers connected
at registration time (:func:`worker_indices`: LocalCluster's ``0, 1, ...`` or ``dask worker
--name``; unnamed workers last, by address), so that two launches of the same cluster slow
the same workers whatever ports they got, unless an explicit mapping is passed
(:func:`assign_indices` gives chosen workers, by name, the model's straggling indices).
Workers that join later (or restart under a new address) get the plugin from the scheduler
too, but it does nothing on them.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from distributed import Client, WorkerPlugin

from ..constraints import Instance, Interval, check
from ..stragglers import Straggler

__all__ = [
    "StragglerPlugin",
    "StragglerThreadPoolExecutor",
    "WorkerStragglers",
    "assign_indices",
    "slow_workers",
    "straggler_stats",
    "worker_indices",
    "worker_names",
    "worker_order",
]

logger = logging.getLogger(__name__)

_COUNTERS = ("tasks", "slowed", "task_s", "planned_s", "delay_s", "errors")
_TASK_MESSAGE_OPS = ("task-finished", "task-erred")
#: Delays shorter than this are busy-waited (exact, holding the GIL); longer ones are slept
#: (a timed wait overshoots by 0.05-0.2 ms here, as the in-task ``time.sleep`` does).
_SPIN_S = 2e-4


class StragglerThreadPoolExecutor(Executor):
    """A thread pool wrapper that holds each thread ``model.delay(index, k, t)`` extra seconds.

    ``k`` counts the callables submitted to this wrapper (``0, 1, ...``, in the order the worker
    starts its tasks) and ``t`` is the callable's own wall time. The delay is slept in the thread
    that ran the callable, before its future completes (delays under 0.2 ms are busy-waited
    instead, since a timed sleep would overshoot them many times over). Model errors and
    non-finite delays count as no delay (``errors``); negative delays as zero. The name contains
    ``"ThreadPoolExecutor"`` on purpose: distributed uses that test to run tasks in the thread
    with the worker's context (see the module docstring).

    Parameters
    ----------
    inner : concurrent.futures.Executor
        The wrapped thread pool (the worker's default executor).
    model : Straggler
        Delay model; "partition" is ``index`` and ``avg`` the callable's own run time.
    index : int
        This worker's index.
    count_as_compute : bool
        Add the delay to the ``stop`` time of distributed's task message, so the scheduler sees
        the task as that much longer (as it would on a slow machine) in its duration estimates.
    max_records : int
        Keep the last ``max_records`` ``(k, t, planned, held)`` tuples.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from daskasync.stragglers import Intensity
    >>> with ThreadPoolExecutor(2) as pool:
    ...     ex = StragglerThreadPoolExecutor(pool, Intensity(c=1.0), 0)
    ...     ex.submit(time.sleep, 0.01).result()
    ...     s = ex.stats()
    >>> s["tasks"], s["slowed"], s["planned_s"] == s["task_s"] >= 0.01
    (1, 1, True)
    """

    def __init__(
        self,
        inner: Executor,
        model: Straggler,
        index: int,
        *,
        count_as_compute: bool = True,
        max_records: int = 10_000,
    ) -> None:
        self.inner = inner
        self.model = model
        self.index = index
        self.count_as_compute = count_as_compute
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._next_k = 0
        self._counters: dict[str, float] = dict.fromkeys(_COUNTERS, 0)
        self._records: deque[tuple[int, float, float, float]] = deque(maxlen=max_records)

    # --- Executor interface ---------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            k = self._next_k
            self._next_k += 1
        return self.inner.submit(self._run, k, fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.release()
        self.inner.shutdown(wait=wait)

    # --- straggling -----------------------------------------------------------------------
    def release(self) -> None:
        """Cut short the delays in progress and inject none from now on (pass-through)."""
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def _run(self, k: int, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        t0 = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            self._hold(k, time.perf_counter() - t0)
            raise
        held = self._hold(k, time.perf_counter() - t0)
        if held > 0 and self.count_as_compute:
            _extend_task_message(result, held)
        return result

    def _planned(self, k: int, t: float) -> tuple[float, bool]:
        try:
            d = float(self.model.delay(self.index, k, t))
        except Exception:
            logger.exception("straggler model %r failed for task %d", self.model, k)
            return 0.0, True
        if not math.isfinite(d):
            logger.error("straggler model %r returned %r for task %d; no delay", self.model, d, k)
            return 0.0, True
        return max(d, 0.0), False

    def _hold(self, k: int, t: float) -> float:
        planned, error = (0.0, False) if self.released else self._planned(k, t)
        held = 0.0
        if planned > 0:
            t1 = time.perf_counter()
            if planned >= _SPIN_S:
                self._released.wait(planned)
            else:  # a timed wait would overshoot by ~0.1 ms: many times a tiny delay
                end = t1 + planned
                while time.perf_counter() < end:
                    pass
            held = time.perf_counter() - t1
        with self._lock:
            c = self._counters
            c["tasks"] += 1
            c["slowed"] += planned > 0
            c["task_s"] += t
            c["planned_s"] += planned
            c["delay_s"] += held
            c["errors"] += error
            self._records.append((k, t, planned, held))
        return held

    def stats(self, records: bool = False) -> dict[str, Any]:
        """Counters: ``tasks`` run, ``slowed`` (planned delay > 0), ``task_s`` (their own run
        time), ``planned_s`` (sum of the model's delays), ``delay_s`` (seconds threads were
        actually held), ``errors`` (model failures, counted as no delay); with ``records``, the
        ``(k, t, planned, held)`` tuples too."""
        with self._lock:
            out: dict[str, Any] = {"index": self.index, **self._counters}
            out["tasks"], out["slowed"], out["errors"] = (
                int(out["tasks"]), int(out["slowed"]), int(out["errors"]))
            if records:
                out["records"] = list(self._records)
        return out


def _extend_task_message(result: Any, held: float) -> None:
    """Push back the ``stop`` of distributed's internal task message (recognised by its keys;
    anything else is left untouched)."""
    if (
        isinstance(result, dict)
        and result.get("op") in _TASK_MESSAGE_OPS
        and isinstance(result.get("stop"), float)
    ):
        result["stop"] += held


class StragglerPlugin(WorkerPlugin):
    """Worker plugin wrapping the default executor of the workers listed in ``indices``.

    Parameters
    ----------
    model : Straggler
        Delay model, called as ``model.delay(indices[worker.address], k, t)``.
    indices : Mapping[str, int]
        Address -> worker index of the workers to wrap; on other workers the plugin does
        nothing.
    count_as_compute, max_records
        See :class:`StragglerThreadPoolExecutor`.

    Examples
    --------
    >>> from daskasync.stragglers import Intensity
    >>> StragglerPlugin(Intensity(), {"tcp://127.0.0.1:1234": 0}).indices
    {'tcp://127.0.0.1:1234': 0}
    """

    def __init__(
        self,
        model: Straggler,
        indices: Mapping[str, int],
        *,
        count_as_compute: bool = True,
        max_records: int = 10_000,
    ) -> None:
        self.model = model
        self.indices = dict(indices)
        self.count_as_compute = count_as_compute
        self.max_records = max_records
        self.executor: StragglerThreadPoolExecutor | None = None

    def setup(self, worker: Any) -> None:
        self.executor = None
        index = self.indices.get(worker.address)
        if index is None:
            return
        inner = worker.executors["default"]
        if "ThreadPoolExecutor" not in str(type(inner)):
            raise TypeError(
                f"worker {worker.address}: the default executor is {type(inner).__name__}, "
                "not a thread pool; per-worker stragglers need one"
            )
        self.executor = StragglerThreadPoolExecutor(
            inner, self.model, index,
            count_as_compute=self.count_as_compute, max_records=self.max_records,
        )
        worker.executors["default"] = self.executor

    def teardown(self, worker: Any) -> None:
        ex = self.executor
        if ex is None:
            return
        ex.release()
        if worker.executors.get("default") is ex:
            worker.executors["default"] = ex.inner
        # else another wrapper was installed on top of ours: stay in the chain, as a
        # pass-through.

    def stats(self, records: bool = False) -> dict[str, Any] | None:
        """The executor's counters, or ``None`` on a worker the plugin does not slow."""
        return None if self.executor is None else self.executor.stats(records)


def _worker_stats(name: str, records: bool = False, dask_worker: Any = None) -> Any:
    plugin = dask_worker.plugins.get(name)
    return plugin.stats(records) if isinstance(plugin, StragglerPlugin) else None


def straggler_stats(
    client: Client, name: str = "daskasync-worker-stragglers", *, records: bool = False
) -> dict[str, dict[str, Any]]:
    """Counters of the plugin ``name`` per worker address (workers it slows only).

    See :meth:`StragglerThreadPoolExecutor.stats` for the fields.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
    ...     with Client(cluster) as client:
    ...         straggler_stats(client)
    {}
    """
    out = client.run(_worker_stats, name, records)
    return {addr: s for addr, s in sorted(out.items()) if s is not None}


def _natural(text: str) -> tuple:
    """Sort key reading the digits of ``text`` as numbers (``w2`` before ``w10``)."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                 for t in re.split(r"(\d+)", text) if t)


def worker_names(client: Client) -> dict[str, str | None]:
    """Address -> name (as a string) of the workers connected now; ``None`` for an
    unnamed worker (one whose name is its address, distributed's default)."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    out: dict[str, str | None] = {}
    for addr, w in info.items():
        name = w.get("name")
        out[addr] = None if name is None or str(name) == addr else str(name)
    return out


def worker_order(client: Client) -> list[str]:
    """Addresses of the workers connected now, ordered by name (digits as numbers:
    LocalCluster's ``0, 1, ..., 10``, ``dask worker --name w2`` before ``w10``), the
    unnamed ones last, by address. Two launches of the same cluster with the same names
    give the same order, whatever ports the workers got."""
    names = worker_names(client)
    return sorted(names, key=lambda a: (0, _natural(names[a]), a) if names[a] is not None
                  else (1, (), a))


def worker_indices(client: Client) -> dict[str, int]:
    """Address -> index: the position in :func:`worker_order` (by name) of the workers
    connected now.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
    ...     with Client(cluster) as client:
    ...         list(worker_indices(client).values())
    [0]
    """
    return {addr: i for i, addr in enumerate(worker_order(client))}


def assign_indices(
    order: Sequence[str], names: Mapping[str, str | None], straggling: Sequence[int],
    chosen: Sequence[str],
) -> dict[str, int]:
    """Address -> index such that the workers named in ``chosen`` get the model's
    straggling indices ``straggling``, in order, and the other workers the remaining
    indices in ``order``.

    Raises
    ------
    ValueError
        A name twice, an unknown name, or not as many names as straggling indices.

    Examples
    --------
    >>> order = ["tcp://a:1", "tcp://b:2", "tcp://c:3"]
    >>> names = {"tcp://a:1": "0", "tcp://b:2": "1", "tcp://c:3": "2"}
    >>> assign_indices(order, names, [0], ["2"])
    {'tcp://c:3': 0, 'tcp://a:1': 1, 'tcp://b:2': 2}
    """
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"straggler_workers: a worker named twice in {list(chosen)}")
    by_name = {n: a for a, n in names.items() if n is not None}
    unknown = [n for n in chosen if n not in by_name]
    if unknown:
        raise ValueError(f"straggler_workers: no worker named {unknown}; the workers are "
                         f"named {sorted(by_name, key=_natural)}")
    if len(chosen) != len(straggling):
        raise ValueError(f"straggler_workers: the model has {len(straggling)} straggling "
                         f"worker(s) (indices {list(straggling)}); name as many, got "
                         f"{list(chosen)}")
    out = {by_name[n]: int(i) for n, i in zip(chosen, straggling, strict=True)}
    rest = iter(i for i in range(len(order)) if i not in set(straggling))
    out.update({a: next(rest) for a in order if a not in out})
    return out


def _plugin_registered(name: str, dask_scheduler: Any = None) -> bool:
    return name in dask_scheduler.worker_plugins


class WorkerStragglers:
    """Handle on installed per-worker stragglers (returned by :func:`slow_workers`).

    A context manager: leaving it calls :meth:`remove`.

    Attributes
    ----------
    model : Straggler
    indices : dict[str, int]
        Address -> index of the workers being slowed (those the plugin is installed on).
    name : str
        The plugin's name.
    final_stats : dict or None
        The counters taken just before removal.
    """

    def __init__(
        self, client: Client, model: Straggler, indices: dict[str, int], name: str
    ) -> None:
        self.client = client
        self.model = model
        self.indices = indices
        self.name = name
        self.final_stats: dict[str, dict[str, Any]] | None = None
        self._active = True

    @property
    def active(self) -> bool:
        return self._active

    @property
    def workers(self) -> list[str]:
        """Addresses of the workers being slowed, by index."""
        return sorted(self.indices, key=self.indices.__getitem__)

    def stats(self, records: bool = False) -> dict[str, dict[str, Any]]:
        """Counters per worker address (see :meth:`StragglerThreadPoolExecutor.stats`); after
        :meth:`remove`, the ones taken just before removal."""
        if not self._active:
            return dict(self.final_stats or {})
        return straggler_stats(self.client, self.name, records=records)

    def remove(self) -> dict[str, dict[str, Any]]:
        """Unregister the plugin (restoring the executors); returns the last counters.
        Idempotent."""
        if self._active:
            try:
                self.final_stats = self.stats()
            finally:
                self._active = False
                self.client.unregister_worker_plugin(self.name)
        return dict(self.final_stats or {})

    def __enter__(self) -> WorkerStragglers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "active" if self._active else "removed"
        return f"<WorkerStragglers {self.name!r} {state} on {len(self.indices)} worker(s)>"


def slow_workers(
    client: Client,
    model: Straggler,
    *,
    workers: Iterable[str] | None = None,
    name: str = "daskasync-worker-stragglers",
    indices: Mapping[str, int] | None = None,
    count_as_compute: bool = True,
) -> WorkerStragglers:
    """Slow down every task run on ``workers`` by ``model.delay(worker_index, k, t)`` seconds.

    ``t`` is the task's own run time and ``k`` counts the tasks started on that worker since
    registration, so the delay is a pure function of ``(seed, worker index, k, t)``. Only tasks
    run by the workers' default thread pool are slowed (not actors, ``async def`` tasks or
    tasks annotated with another executor). Very short tasks (``getitem``, bookkeeping) get
    proportionally tiny delays; the fixed cost per task is a few microseconds (a few tens for
    :class:`~daskasync.stragglers.Cloud`, which seeds a generator per task).

    Parameters
    ----------
    client : distributed.Client
        A synchronous client.
    model : Straggler
        The delay model; its "partition" is the worker index, e.g. ``Intensity(c=1.0)`` slows
        the worker of index 0 by a factor 2, ``Cloud(n_partitions=n_workers)`` as in ASYNC.
    workers : list of str, optional
        Addresses to install the plugin on (default: all workers). Which of them straggle is
        the model's choice, by index.
    name : str
        Plugin name; must not be registered already.
    indices : Mapping[str, int], optional
        Address -> worker index; default :func:`worker_indices` (all workers now, by
        name). Must cover ``workers``.
    count_as_compute : bool
        Report the delay to the scheduler as part of the task's compute time.

    Returns
    -------
    WorkerStragglers
        A context manager and handle with ``stats()`` and ``remove()``.

    Raises
    ------
    TypeError
        ``model`` is not a :class:`~daskasync.stragglers.Straggler`, ``name`` not a string,
        or an index not an int.
    ValueError
        Unknown or no worker, a negative index, an empty ``name`` or one already
        registered; nothing is registered then.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> from daskasync.stragglers import Intensity
    >>> with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
    ...                   dashboard_address=":0") as cluster, Client(cluster) as client:
    ...     with slow_workers(client, Intensity(c=1.0)) as slow:
    ...         client.submit(time.sleep, 0.02).result()
    ...     stats = slow.stats()
    >>> [(s["index"], s["tasks"], s["slowed"]) for s in stats.values()]
    [(0, 1, 1)]
    >>> s = next(iter(stats.values()))
    >>> s["planned_s"] == s["task_s"] and s["delay_s"] >= 0.02
    True
    """
    check("model", model, Instance(Straggler, "a daskasync.stragglers.Straggler"))
    check("name", name, Instance(str, "a non-empty string"))
    if not name:
        raise ValueError(f"name: must be a non-empty string, got {name!r}")
    if getattr(client, "asynchronous", False):
        raise ValueError("client: slow_workers needs a synchronous Client")
    if isinstance(workers, str):
        raise ValueError(f"workers: expected a list of addresses, got the string {workers!r}")
    connected = set(client.nthreads())
    targets = sorted(connected) if workers is None else list(workers)
    if not targets:
        raise ValueError("workers: no worker to slow down")
    unknown = [w for w in targets if w not in connected]
    if unknown:
        raise ValueError(f"workers: unknown worker address(es) {unknown}; "
                         f"connected: {sorted(connected)}")
    all_indices = worker_indices(client) if indices is None else dict(indices)
    missing = [w for w in targets if w not in all_indices]
    if missing:
        raise ValueError(f"indices: no index for worker(s) {missing}")
    chosen = {w: int(check(f"indices[{w!r}]", all_indices[w], Interval("int", 0)))
              for w in targets}
    if client.run_on_scheduler(_plugin_registered, name):
        raise ValueError(f"name: a worker plugin {name!r} is already registered")

    plugin = StragglerPlugin(model, chosen, count_as_compute=count_as_compute)
    try:
        client.register_plugin(plugin, name=name)
    except BaseException:
        if client.run_on_scheduler(_plugin_registered, name):
            client.unregister_worker_plugin(name)
        raise
    return WorkerStragglers(client, model, chosen, name)
