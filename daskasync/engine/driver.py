"""The engine: ASYNC's submit / collect on a Dask cluster.

:class:`Engine` ties the cluster-free bookkeeping (:class:`~.coordinator.Coordinator`,
:class:`~.broadcast.Broadcaster`, a barrier) to ``distributed`` futures. Its contract with
the solvers is a set of public coroutines (``asubmit``, ``anext_result``, ``around``,
``aevaluate``, ``aobjectives``, ``amap_partitions``, ``arow_stats``, ``acancel_in_flight``,
``aclose``) that run on the client's event loop, each with a synchronous twin (``submit``,
``next_result``, ``round``, ...) that is a thin ``client.sync`` wrapper, as in
``distributed.Client``; so the same code serves Jupyter, scripts and async tests. Solvers
drive it from one coroutine per run (:func:`~.sync.run_sync`), which keeps the per-update
path free of thread hops.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from distributed import CancelledError, as_completed

from .._comm import agather, agather_done, cancel_quietly, drain, scatter_retrying
from ..constraints import Interval, check
from ..problem import RowStats
from ..stragglers import Straggler, make_straggler
from ..tasks import eval_kernel, objectives_kernel, row_norm_stats_kernel
from .barriers import Barrier, BarrierError, make_barrier
from .broadcast import Broadcaster
from .coordinator import Coordinator, ResultAttributes, Ticket
from .launcher import Launcher, TaskSpec, gone
from .recovery import Recovery
from .views import ViewShipper

logger = logging.getLogger(__name__)

__all__ = ["Engine", "TaskArgs"]

#: Per-task keyword arguments: a dict shared by every task, or ``f(partition, task_index)``.
TaskArgs = dict | Callable[[int, int], dict] | None

_run_counter = itertools.count()

#: seconds :meth:`Engine.acancel_in_flight` waits for results already on their way
DRAIN_TIMEOUT = 5.0


class Engine:
    """ASYNC's engine on a Dask cluster.

    Parameters
    ----------
    data : PartitionedData
        Row blocks persisted on the workers; tasks run on them.
    barrier : str, Barrier or callable
        Who gets work and when (see :func:`daskasync.make_barrier`; a :class:`Barrier`
        is used as given).
    beta, tau : float, int
        Quorum fraction and staleness bound of a barrier given by name.
    window : int or None
        Model versions readable back (``None``: :func:`.broadcast.default_window`).
    transport : {"auto", "inline", "scatter"}
        How model versions travel (see :class:`Broadcaster`).
    stragglers : None, "intensity", "cloud", Straggler or callable
        Delay injected inside tasks, for experiments (a :class:`Straggler` is used as
        given).
    straggler_c : float
        Intensity ``c`` for ``stragglers="intensity"``.
    warmup_tasks : int, optional
        Tasks whose mean compute time defines ``avg_task_time`` for the straggler delays
        (default ``5 * P``); no delay is injected before.
    avg_task_time : float, optional
        Fix the average task time instead of measuring it.
    seed : int
        Seeds task sampling and straggler draws.
    name : str
        Prefix of task keys (``<name>-grad-p3-...``), visible in the dashboard.
    max_recoveries : int
        Worker losses the engine repairs before giving up (see Notes).
    watch_interval : float or None
        Seconds between looks at the workers (``None``: never); a worker that joined
        receives a copy of its share of the data blocks (see Notes).

    Notes
    -----
    **Worker loss.** A task running on a worker that dies is re-run elsewhere by the
    scheduler. When the dead worker held the only copy of a scattered data block or model
    version, the scheduler cancels the tasks that need it; the engine then re-creates the
    block (:meth:`PartitionedData.recover`) and the version (from its driver-side window)
    and launches the same task again, with the same ticket, version, task index and
    arguments. A result is therefore applied exactly once, as if nothing had happened.

    **Workers joining.** The scheduler runs a task where its block is, so a new worker
    would stay idle. About every ``watch_interval`` seconds the engine gives each running
    worker that holds no block its own copies of a share of the blocks (by threads, under
    new keys: see :meth:`PartitionedData.aspread`); tasks on those blocks then run there,
    and the previous copies stay as spares, so such a block survives the loss of either
    worker without being re-created. A worker retiring gracefully
    (``Client.retire_workers``) hands its blocks over itself.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> import numpy as np, daskasync
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cl, Client(cl):
    ...     data = daskasync.PartitionedData.from_arrays(np.eye(4), np.ones(4), n_partitions=2)
    ...     eng = daskasync.Engine(data)
    ...     v = eng.publish(np.ones(4))
    ...     _ = eng.submit(lambda block, w, **kw: float(block[0] @ w @ np.ones(2)))
    ...     sorted(eng.collect() for _ in range(2))
    [2.0, 2.0]
    """

    def __init__(
        self,
        data: Any,
        *,
        barrier: str | Barrier | Callable | None = "async",
        beta: float = 0.93,
        tau: int | None = None,
        window: int | None = None,
        transport: str = "auto",
        stragglers: str | Straggler | Callable | None = None,
        straggler_c: float = 1.0,
        warmup_tasks: int | None = None,
        avg_task_time: float | None = None,
        seed: int = 0,
        name: str = "daskasync",
        max_recoveries: int = 100,
        watch_interval: float | None = 1.0,
    ) -> None:
        self.data = data
        self.client = data.client
        if self.client.status in ("closed", "closing"):
            raise ValueError("client: the distributed Client is closed")
        P = data.n_partitions
        self.n_partitions = P
        self.barrier = make_barrier(barrier, beta=beta, tau=tau)
        self.straggler = make_straggler(stragglers, n_partitions=P, c=straggler_c, seed=seed)
        check("warmup_tasks", warmup_tasks, Interval("int", 0), None)
        check("avg_task_time", avg_task_time, Interval("real", 0), None)
        self.warmup_tasks = 5 * P if warmup_tasks is None else int(warmup_tasks)
        self.avg_task_time = 0.0 if avg_task_time is None else float(avg_task_time)
        self._avg_fixed = avg_task_time is not None
        self._warm_sum, self._warm_n = 0.0, 0
        self._warm_workers: set[str] = set()
        self.seed = int(seed)
        self.name = name
        self.run_id = f"{uuid.uuid4().hex[:8]}{next(_run_counter)}"
        homes: list[str | None] = [None] * P
        if not self.client.asynchronous:
            locs = data.locations()
            homes = [locs[p][0] if locs.get(p) else None for p in range(P)]
        self.coordinator = Coordinator(P, homes=homes)
        self.broadcaster = Broadcaster(self.client, window=window, transport=transport,
                                       name=self.run_id)
        self.launcher = Launcher(self.client, data.parts, seed=self.seed, name=name,
                                 run_id=self.run_id)
        self.broadcaster.release_future = self.launcher.release_later
        self.recovery = Recovery(data, self.launcher, self.broadcaster,
                                 max_recoveries=max_recoveries, watch_interval=watch_interval)
        #: the views of versions shipped to tasks (:meth:`ViewShipper.restrict`)
        self.views = ViewShipper(self.client, self.broadcaster, self.coordinator,
                                 self.recovery, self.launcher)
        self._tickets: dict[Any, Ticket] = {}
        self._specs: dict[Any, TaskSpec] = {}
        self._on_version: Counter[int] = Counter()  # tasks in flight per model version
        self.broadcaster.in_use = self._on_version.__contains__
        # results are fetched by the engine, a batch at a time (agather_done): distributed's
        # own fetch (with_results=True) logs an error when a worker dies under it
        self._ac = as_completed([], loop=self.client.loop)
        self._ready: deque = deque()
        self._gathering: set = set()  # futures of synchronous rounds in flight
        self._passes: set = set()  # futures of full passes (objective checks) in flight
        self._closing = False

    # -- properties ------------------------------------------------------------------------
    @property
    def annotations(self) -> dict[str, Any]:
        """Dask annotations every task gets (e.g. the run's ``distributed.span``);
        captured when the engine is made, because tasks are submitted from the client's
        event loop."""
        return self.launcher.annotations

    @annotations.setter
    def annotations(self, value: dict[str, Any]) -> None:
        self.launcher.annotations = dict(value)

    @property
    def version(self) -> int:
        """Index of the latest published model version."""
        return self.broadcaster.version

    @property
    def clock(self) -> int:
        """Logical clock: applied updates so far."""
        return self.coordinator.clock

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not yet collected."""
        return len(self._tickets)

    @property
    def n_relaunched(self) -> int:
        """Tasks launched again after a worker loss cancelled them."""
        return self.recovery.n_relaunched

    @property
    def n_spread(self) -> int:
        """Data blocks copied to workers that joined during the run."""
        return self.recovery.n_spread

    @property
    def membership(self) -> Any:
        return self.recovery.membership

    # -- versions --------------------------------------------------------------------------
    def publish(self, model: np.ndarray | tuple[np.ndarray, ...]) -> int:
        """Publish a new model version (driver side, O(d)); returns its index. A tuple of
        same-shaped arrays is published stacked."""
        return self.broadcaster.publish(model)

    def tick(self) -> int:
        """Count one applied update on the logical clock."""
        return self.coordinator.tick()

    # -- submission ------------------------------------------------------------------------
    def _task_delay_args(self) -> tuple[Straggler | None, float]:
        if not self.straggler.active:
            return None, 0.0
        warm = self._avg_fixed or self._warm_n >= self.warmup_tasks
        return self.straggler, (self.avg_task_time if warm else 0.0)

    async def _specs_for(
        self, kernel: Callable, partitions: Sequence[int], args: TaskArgs, version: int,
        kind: str,
    ) -> tuple[list[Ticket], list[TaskSpec]]:
        """A ticket and a launchable spec per partition, all on model ``version`` (or views)."""
        version = self.broadcaster._check(version)
        viewed = {p for p in partitions if kind == "grad" and self.views.has(p)}
        ref = None
        if len(viewed) < len(partitions):
            # a scattered version goes to its tasks' blocks (running at the last look)
            homes = self.coordinator.homes
            where = sorted({h for p in partitions
                            if p not in viewed and (h := self.recovery.home(homes, p))})
            ref = await self.broadcaster._ref(version, uses=len(partitions) - len(viewed),
                                              workers=where)
        views = await self.views.aviews(version, sorted(viewed)) if viewed else {}
        delay = self._task_delay_args()
        tickets, specs = [], []
        for p in partitions:
            ticket = self.coordinator.submit(p, version, kind)
            kw = args(p, ticket.task_index) if callable(args) else (args or {})
            specs.append(TaskSpec(kernel, p, version, views.get(p, ref), ticket.task_index, kw,
                                  kind, delay, view=p in views))
            tickets.append(ticket)
        return tickets, specs

    async def asubmit(
        self,
        kernel: Callable,
        partitions: Sequence[int] | None = None,
        args: TaskArgs = None,
        *,
        version: int = -1,
        kind: str = "grad",
    ) -> list[Ticket]:
        """Submit ``kernel(block, model, partition=, task_index=, seed=, **args)`` on
        ``partitions`` (default: those the barrier selects) with model ``version``, in one
        message to the scheduler; returns their tickets (empty if the barrier selected
        none). Collect the results with :meth:`anext_result`."""
        self._closing = False
        self.recovery.watch()
        if partitions is None:
            partitions = self.barrier.select(self.coordinator)
        if not partitions:
            return []
        tickets, specs = await self._specs_for(kernel, partitions, args, version, kind)
        for fut, ticket, spec in zip(self.launcher.launch(specs), tickets, specs, strict=True):
            self._track(fut, ticket, spec)
        return tickets

    def submit(
        self,
        kernel: Callable,
        partitions: Sequence[int] | None = None,
        args: TaskArgs = None,
        *,
        version: int = -1,
    ) -> list[Ticket]:
        """Synchronous :meth:`asubmit`."""
        return self.client.sync(self.asubmit, kernel, partitions, args, version=version)

    def _track(self, fut: Any, ticket: Ticket, spec: TaskSpec) -> None:
        self._tickets[fut] = ticket
        self._specs[fut] = spec
        self._on_version[spec.version] += 1
        self._ac.add(fut)

    def _untrack(self, fut: Any) -> tuple[Ticket | None, TaskSpec | None]:
        ticket = self._tickets.pop(fut, None)
        spec = self._specs.pop(fut, None)
        if spec is not None:
            self._on_version[spec.version] -= 1
            if self._on_version[spec.version] <= 0:
                del self._on_version[spec.version]
        return ticket, spec

    # -- collection ------------------------------------------------------------------------
    async def anext_result(
        self, timeout: float | None = None
    ) -> tuple[Any, ResultAttributes] | None:
        """Next finished result and its attributes, dropped ones included (marked
        ``attrs.dropped``: staler than the barrier's ``tau``). A task cancelled by a worker
        loss is repaired and launched again under the same ticket, so each result comes
        back once. With ``timeout`` (seconds), ``None`` when no result finished in time
        (nothing is lost: a later call returns it). Raises :class:`BarrierError` when
        nothing is in flight, and re-raises a task's error."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        while True:
            if not self._ready:
                if not self._tickets:
                    raise BarrierError(
                        "no task is in flight: nothing to collect (the barrier selected no "
                        "partition while none was running; a predicate must select at least "
                        "one idle partition when nothing is in flight)"
                    )
                if deadline is None:
                    item = await self._ac.__anext__()
                else:
                    try:  # as_completed takes nothing from its queue until it returns it
                        item = await asyncio.wait_for(
                            self._ac.__anext__(), max(0.0, deadline - loop.time())
                        )
                    except asyncio.TimeoutError:
                        return None
                batch = [item, *self._ac.next_batch(block=False)]
                results = await agather_done(self.client, batch)
                self._ready.extend(zip(batch, results, strict=True))
            fut, res = self._ready.popleft()
            ticket, spec = self._untrack(fut)
            if ticket is None or spec is None:  # cancelled by us
                continue
            if res is None:
                if fut.status == "error":  # raise the task's error (gather raises it at once)
                    self.coordinator.cancel(ticket)
                    try:
                        await self.client.gather([fut])
                    finally:
                        fut.release()  # the traceback must not keep the erred task alive
                        del fut
                    continue  # not reached: gather raised the task's error
                if fut.status == "cancelled" or self.launcher.damaged([spec]):
                    # a worker died with data this task needed: the same task runs again,
                    # and its ticket stays in flight (its result is applied once)
                    fut.release()
                    del fut
                    await self._relaunch(ticket, spec)
                else:  # its result was lost with its worker, its inputs alive: Dask
                    self._track(fut, ticket, spec)  # computes it again
                continue
            self.launcher.release_later(fut)  # after the next launch: see release_later
            self.views.release(spec)
            return res[0], self._completed(ticket, res[1], self.barrier.max_staleness)

    async def _relaunch(self, ticket: Ticket, spec: TaskSpec) -> None:
        try:
            await self.recovery.arepair([spec])
        except BaseException:
            self.coordinator.cancel(ticket)
            raise
        self._track(self.launcher.launch([spec])[0], ticket, spec)

    def next_result(self) -> tuple[Any, ResultAttributes]:
        """Synchronous :meth:`anext_result`."""
        return self.client.sync(self.anext_result)

    async def acollect_all(self) -> tuple[Any, ResultAttributes]:
        """Next result worth applying and its attributes (ASYNC's ``collectAll``): results
        staler than the barrier's ``tau`` are dropped and counted, not returned."""
        while True:
            value, attrs = await self.anext_result()
            if not attrs.dropped:
                return value, attrs

    def collect_all(self) -> tuple[Any, ResultAttributes]:
        """Synchronous :meth:`acollect_all`."""
        return self.client.sync(self.acollect_all)

    def collect(self) -> Any:
        """Next result's value (ASYNC's ``collect``)."""
        return self.collect_all()[0]

    def _completed(self, ticket: Ticket, meta: tuple, max_staleness: int | None = None):
        """Bookkeeping of a collected result: attributes, and the warm-up average."""
        worker, _start, compute, total = meta
        attrs = self.coordinator.complete(
            ticket, worker=worker, duration=total, compute_time=compute,
            max_staleness=max_staleness,
        )
        if worker not in self._warm_workers:
            # a worker's first task pays one-time costs (loading compiled kernels): it
            # would inflate the average that straggler delays are scaled by
            self._warm_workers.add(worker)
        elif not self._avg_fixed and self._warm_n < self.warmup_tasks:
            self._warm_n += 1
            self._warm_sum += compute
            self.avg_task_time = self._warm_sum / self._warm_n
        return attrs

    def has_ready(self) -> bool:
        """Whether a finished result is waiting to be collected."""
        return bool(self._ready) or self._ac.has_ready()

    def batch_pending(self) -> bool:
        """Another finished result of a task in flight is waiting. Asynchronous loops apply
        it before handing out work, so that the partitions that finished together get the
        newest model in one message (an untracked leftover never holds work back)."""
        return bool(self._tickets) and self.has_ready()

    # -- barriers (synchronous rounds) -----------------------------------------------------
    async def around(
        self, kernel: Callable, args: TaskArgs = None, *, version: int = -1
    ) -> tuple[list[Any], list[ResultAttributes]]:
        """One synchronous round: every partition computes on ``version``; a gather barrier
        waits for all of them. Results come back in partition order."""
        if self._tickets:
            raise BarrierError("a synchronous round needs every partition free")
        self._closing = False
        self.recovery.watch()
        tickets, specs = await self._specs_for(
            kernel, range(self.n_partitions), args, version, "grad"
        )
        try:
            results = await self._gather(specs, self._gathering)
        except BaseException:
            for ticket in tickets:
                self.coordinator.cancel(ticket)
            raise
        values = [value for value, _meta in results]
        attrs = [self._completed(t, meta) for t, (_v, meta) in zip(tickets, results, strict=True)]
        return values, attrs

    def round(self, kernel: Callable, args: TaskArgs = None, *, version: int = -1):
        """Synchronous :meth:`around`."""
        return self.client.sync(self.around, kernel, args, version=version)

    async def _gather(self, specs: Sequence[TaskSpec], pool: set) -> list:
        """Launch the tasks of ``specs`` and gather their results in order, repairing
        worker losses; ``pool`` holds the futures while they are in flight."""
        futs = self.launcher.launch(specs)
        pool.update(futs)
        try:
            while True:
                try:
                    return await agather(self.client, futs)
                except CancelledError:
                    lost = [i for i, f in enumerate(futs) if gone(f)]
                    if not lost or self._closing:
                        raise
                    await self.recovery.arepair([specs[i] for i in lost])
                    for i in lost:
                        pool.discard(futs[i])
                        futs[i].release()
                        futs[i] = self.launcher.launch([specs[i]])[0]
                        pool.add(futs[i])
        finally:  # released after the next launch (a traceback must not keep them alive)
            pool.difference_update(futs)
            self.launcher.release_later(*futs)
            for spec in specs:
                self.views.release(spec)

    # -- full passes (objective, gradient, row norms) --------------------------------------
    async def amap_partitions(self, kernel: Callable, model: Any, kind: str, **kwargs) -> list:
        """``kernel(block, model, **kwargs)`` on every partition (high priority, outside
        the logical clock); results in partition order. A model larger than the
        broadcaster's inline limit is placed on the cluster once and shared by the tasks,
        not copied into each."""
        shared = None
        if isinstance(model, np.ndarray) and model.nbytes > self.broadcaster.inline_max_bytes:
            [shared] = await scatter_retrying(self.client, [model])
        try:
            specs = [
                TaskSpec(kernel, p, -1, model if shared is None else shared, 0, kwargs, kind,
                         priority=10)
                for p in range(self.n_partitions)
            ]
            return [r[0] for r in await self._gather(specs, self._passes)]
        finally:
            if shared is not None:
                shared.release()

    def map_partitions(self, kernel: Callable, model: Any, kind: str, **kwargs) -> list:
        """Synchronous :meth:`amap_partitions`."""
        return self.client.sync(self.amap_partitions, kernel, model, kind, **kwargs)

    async def aevaluate(self, theta: np.ndarray, **kwargs) -> tuple[float, np.ndarray, int]:
        """Full-data loss sum, gradient sum and row count at ``theta`` (``kwargs``: the
        problem's ``loss`` and ``fit_intercept``)."""
        out = await self.amap_partitions(eval_kernel, theta, "eval", **kwargs)
        return (
            float(sum(o[0] for o in out)),
            np.sum([o[1] for o in out], axis=0),
            int(sum(o[2] for o in out)),
        )

    def evaluate(self, theta: np.ndarray, **kwargs) -> tuple[float, np.ndarray, int]:
        """Synchronous :meth:`aevaluate`."""
        return self.client.sync(self.aevaluate, theta, **kwargs)

    async def aobjectives(self, thetas: np.ndarray, **kwargs) -> np.ndarray:
        """Full-data loss sums for every row of ``thetas`` (one pass over the data)."""
        if len(thetas) == 0:
            return np.zeros(0)
        out = await self.amap_partitions(objectives_kernel, thetas, "objective", **kwargs)
        return np.sum(out, axis=0)

    def objectives(self, thetas: np.ndarray, **kwargs) -> np.ndarray:
        """Synchronous :meth:`aobjectives`."""
        return self.client.sync(self.aobjectives, thetas, **kwargs)

    async def arow_stats(self) -> RowStats:
        """Largest and mean squared row norm of the data (one task per partition)."""
        out = await self.amap_partitions(row_norm_stats_kernel, None, "rownorm")
        rows = max(1, sum(o[2] for o in out))
        return RowStats(float(max(o[0] for o in out)), sum(o[1] for o in out) / rows)

    # -- clean-up --------------------------------------------------------------------------
    async def acancel_in_flight(self) -> None:
        """Cancel the tasks in flight (their results are never applied).

        Only unfinished tasks are cancelled: the result of a finished one may be being
        fetched (by a round's gather), and releasing a key under a pending fetch makes the
        scheduler log an error; finished results of asynchronous tasks are dropped and
        their futures released (explicitly: a traceback being raised may still refer to
        them until the garbage collector runs); the tracker is drained for at most
        ``DRAIN_TIMEOUT`` s."""
        futs = list(self._tickets) + list(self._gathering)
        dropped = [f for f in self._tickets if f.done()]  # the ready ones among them
        for ticket in self._tickets.values():
            self.coordinator.cancel(ticket)
        for spec in self._specs.values():
            self.views.release(spec)
        self._tickets.clear()
        self._specs.clear()
        self._on_version.clear()
        self._ready.clear()
        self._gathering.clear()
        await cancel_quietly(self.client, futs)
        try:
            await asyncio.wait_for(drain(self._ac), DRAIN_TIMEOUT)
        except asyncio.TimeoutError:
            pass
        self._ac.clear()
        for f in dropped:
            f.release()

    def cancel_in_flight(self) -> None:
        """Synchronous :meth:`acancel_in_flight`."""
        self.client.sync(self.acancel_in_flight)

    async def aclose(self) -> None:
        """Cancel everything: tasks in flight, full passes, the copy to new workers, and
        release the model versions on the cluster."""
        self._closing = True
        self.recovery.stop()
        await self.acancel_in_flight()
        passes = list(self._passes)
        self._passes.clear()
        await cancel_quietly(self.client, passes)  # finished ones: their gather releases them
        self.launcher.flush_releases()
        self.broadcaster.release()

    def close(self) -> None:
        """Synchronous :meth:`aclose` (nothing to do once the client is closed)."""
        if self.client.status not in ("closed", "closing"):
            self.client.sync(self.aclose)

    def cancel(self) -> None:
        """Same as :meth:`close`."""
        self.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Engine P={self.n_partitions} clock={self.clock} version={self.version} "
            f"in_flight={self.in_flight} barrier={self.barrier!r}>"
        )
