"""Per-worker, engine-agnostic stragglers: slow down every task a worker runs.

daskasync injects its stragglers per partition, inside its own gradient tasks. Peers (dask-glm,
dask-ml) cannot be instrumented that way, so for a fair race the benchmark slows down *workers*
instead: every task that runs on a straggler worker holds its thread an extra ``delay`` seconds
after it finishes, with ::

    delay = model.delay(worker_index, task_counter_on_that_worker, own_run_time)

i.e. the same :class:`~daskasync.stragglers.Straggler` models, with "partition" read as the
worker's index and ``avg`` as the task's own measured run time. ``Intensity(c)`` thus makes a
worker ``1 + c`` times slower, whatever engine submitted the task.

How it works
------------
A :class:`StragglerPlugin` (a ``WorkerPlugin``, distributed's public extension point for
workers) puts a :class:`~daskasync.bench.straggler_executor.StragglerThreadPoolExecutor`
wrapping the worker's thread pool in ``Worker.executors["default"]``, the documented slot a
worker's ``executor=`` argument fills; the worker looks its executor up there for every task
it starts, so the swap applies to the next task and tasks already running finish unslowed.
The callable is run in the original pool's thread, then the thread sleeps the delay, so the
pool slot is really occupied and the worker's state machine starts no other task on it, as
on a slow machine. ``teardown`` (called by ``Client.unregister_worker_plugin`` and when the
worker closes) puts the original executor back and cuts short any delay in progress. The
one behaviour of distributed this relies on that distributed does not document (tasks run
in the worker's context) is confined to :mod:`daskasync.bench.straggler_executor`, which
says what it is and how it is checked.

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
- The task's compute time as distributed records it (task stream, the scheduler's duration
  estimates) is its own time; the delay shows in when the worker reports it finished.
- Process pools are not wrapped (``setup`` raises ``TypeError``): a task's thread is held
  in the worker's own process.

Worker index: the position of the worker in the order of the names of all workers connected
at registration time (:func:`worker_indices`: LocalCluster's ``0, 1, ...`` or ``dask worker
--name``; unnamed workers last, by address), so that two launches of the same cluster slow
the same workers whatever ports they got, unless an explicit mapping is passed
(:func:`assign_indices` gives chosen workers, by name, the model's straggling indices).
Workers that join later (or restart under a new address) get the plugin from the scheduler
too, but it does nothing on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import distributed
from distributed import Client, WorkerPlugin

from ..constraints import Instance, Interval, check
from ..stragglers import Straggler
from .straggler_executor import StragglerThreadPoolExecutor, check_distributed_version

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

class StragglerPlugin(WorkerPlugin):
    """Worker plugin wrapping the default executor of the workers listed in ``indices``.

    Parameters
    ----------
    model : Straggler
        Delay model, called as ``model.delay(indices[worker.address], k, t)``.
    indices : Mapping[str, int]
        Address -> worker index of the workers to wrap; on other workers the plugin does
        nothing.
    max_records
        See :class:`~daskasync.bench.straggler_executor.StragglerThreadPoolExecutor`.

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
        max_records: int = 10_000,
    ) -> None:
        self.model = model
        self.indices = dict(indices)
        self.max_records = max_records
        self.executor: StragglerThreadPoolExecutor | None = None

    def setup(self, worker: Any) -> None:
        self.executor = None
        index = self.indices.get(worker.address)
        if index is None:
            return
        inner = worker.executors["default"]
        if isinstance(inner, ProcessPoolExecutor):
            raise TypeError(
                f"worker {worker.address}: the default executor is {type(inner).__name__}, "
                "a process pool; per-worker stragglers hold threads of the worker's process"
            )
        self.executor = StragglerThreadPoolExecutor(
            inner, self.model, index, max_records=self.max_records)
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

    See :meth:`~daskasync.bench.straggler_executor.StragglerThreadPoolExecutor.stats`
    for the fields.

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


def _has_plugin(name: str, dask_worker: Any = None) -> bool:
    return name in dask_worker.plugins


def _plugin_registered(client: Client, name: str) -> bool:
    """Whether a worker plugin ``name`` is installed on any worker connected now."""
    return any(client.run(_has_plugin, name).values())


def _distributed_version() -> str:
    return distributed.__version__


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
        """Counters per worker address (see
        :meth:`~daskasync.bench.straggler_executor.StragglerThreadPoolExecutor.stats`); after
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

    Warns
    -----
    RuntimeWarning
        A worker runs a release of distributed the mechanism was not verified on (see
        :func:`~daskasync.bench.straggler_executor.check_distributed_version`).

    Examples
    --------
    >>> import time
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
    if _plugin_registered(client, name):
        raise ValueError(f"name: a worker plugin {name!r} is already registered")
    check_distributed_version(client.run(_distributed_version, workers=targets))

    plugin = StragglerPlugin(model, chosen)
    try:
        client.register_plugin(plugin, name=name)
    except BaseException:
        if _plugin_registered(client, name):
            client.unregister_worker_plugin(name)
        raise
    return WorkerStragglers(client, model, chosen, name)
