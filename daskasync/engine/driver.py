"""The engine: ASYNC's submit / collect on a Dask cluster.

:class:`Engine` ties the cluster-free bookkeeping (:class:`~.coordinator.Coordinator`,
:class:`~.broadcast.Broadcaster`, a barrier) to ``distributed`` futures. Its logic lives in
coroutines (``_submit``, ``_next``, ``_round``) that run on the client's event loop, and the
public methods are thin ``client.sync`` wrappers, so the same code serves Jupyter, scripts and
async tests. Solvers drive it from one coroutine per run (:func:`run_sync`), which keeps the
per-update path free of thread hops.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
from distributed import Future, as_completed
from distributed.client import FutureCancelledError, FuturesCancelledError

from ..stragglers import Straggler, make_straggler
from ..tasks import eval_kernel, objectives_kernel, run_task
from .barriers import Barrier, BarrierError, make_barrier
from .broadcast import Broadcaster
from .coordinator import Coordinator, ResultAttributes, Ticket
from .membership import Membership

logger = logging.getLogger(__name__)

__all__ = ["Engine", "TaskArgs"]

#: Per-task keyword arguments: a dict shared by every task, or ``f(partition, task_index)``.
TaskArgs = dict | Callable[[int, int], dict] | None

_run_counter = itertools.count()

_GONE = ("cancelled", "lost")


@dataclass(eq=False)
class _Spec:
    """Everything needed to launch a task (again, after a worker loss): the same
    partition, model version, task index and arguments give the same result."""

    kernel: Callable
    partition: int
    version: int
    ref: Any
    task_index: int
    kwargs: dict
    kind: str
    delay: tuple[Straggler | None, float] = (None, 0.0)
    priority: int = 0
    part: Any = None  # the block's future the task was launched with


def _gone(fut: Any) -> bool:
    return isinstance(fut, Future) and fut.status in _GONE


class Engine:
    """ASYNC's engine on a Dask cluster.

    Parameters
    ----------
    data : PartitionedData
        Row blocks persisted on the workers; tasks run on them.
    barrier : str, Barrier or callable
        Who gets work and when (see :func:`daskasync.make_barrier`).
    beta, tau : float, int
        Quorum fraction and staleness bound for the barrier.
    window : int
        Model versions that can be read back (and at most held on the cluster).
    transport : {"auto", "inline", "scatter"}
        How model versions travel (see :class:`Broadcaster`).
    stragglers : None, "intensity", "cloud", Straggler or callable
        Delay injected inside tasks, for experiments.
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
    would stay idle. About every ``watch_interval`` seconds the engine compares the running
    workers with those it has seen and copies a share of the blocks (by threads) to each
    new one with the scheduler's ``replicate``; tasks on those blocks then go to whichever
    holder is free. A worker retiring gracefully (``Client.retire_workers``) hands its
    blocks over itself.

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
        window: int = 16,
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
        self._parts = list(data.parts)  # PartitionedData.parts copies; take it once
        if self.client.status in ("closed", "closing"):
            raise ValueError("client: the distributed Client is closed")
        P = data.n_partitions
        self.n_partitions = P
        self.barrier = make_barrier(barrier, beta=beta, tau=tau)
        self.straggler = make_straggler(stragglers, n_partitions=P, c=straggler_c, seed=seed)
        if warmup_tasks is not None and (not isinstance(warmup_tasks, int) or warmup_tasks < 0):
            raise ValueError(f"warmup_tasks: must be an int >= 0, got {warmup_tasks!r}")
        self.warmup_tasks = 5 * P if warmup_tasks is None else warmup_tasks
        if avg_task_time is not None and not avg_task_time >= 0:
            raise ValueError(f"avg_task_time: must be >= 0, got {avg_task_time!r}")
        self.avg_task_time = 0.0 if avg_task_time is None else float(avg_task_time)
        self._avg_fixed = avg_task_time is not None
        self._warm_sum = 0.0
        self._warm_n = 0
        self._warm_workers: set[str] = set()
        if isinstance(max_recoveries, bool) or not isinstance(max_recoveries, int) or (
            max_recoveries < 0
        ):
            raise ValueError(f"max_recoveries: must be an int >= 0, got {max_recoveries!r}")
        self.max_recoveries = max_recoveries
        if watch_interval is not None and not (
            isinstance(watch_interval, (int, float)) and watch_interval > 0
        ):
            raise ValueError(f"watch_interval: must be > 0 or None, got {watch_interval!r}")
        self.watch_interval = watch_interval
        self.membership = Membership()
        self._next_watch = 0.0
        self._spreading: asyncio.Task | None = None
        #: data blocks copied to workers that joined during the run
        self.n_spread = 0
        #: tasks launched again after a worker loss cancelled them
        self.n_relaunched = 0
        self._n_repairs = 0
        self.seed = int(seed)
        self.name = name
        self.run_id = f"{uuid.uuid4().hex[:8]}{next(_run_counter)}"
        homes: list[str | None] = [None] * P
        if not self.client.asynchronous and hasattr(data, "locations"):
            locs = data.locations()
            homes = [locs[p][0] if locs.get(p) else None for p in range(P)]
        self.coordinator = Coordinator(P, homes=homes)
        self.broadcaster = Broadcaster(
            self.client, window=window, transport=transport, name=self.run_id
        )
        #: gradient history of history-based solvers (a GradientHistory), if any
        self.history: Any = None
        self._tickets: dict[Any, Ticket] = {}
        self._specs: dict[Any, _Spec] = {}
        self._on_version: Counter[int] = Counter()  # tasks in flight per model version
        self.broadcaster.in_use = self._on_version.__contains__
        self._ac = as_completed([], loop=self.client.loop, with_results=True, raise_errors=False)
        self._ready: deque = deque()
        self._gathering: set = set()  # futures of synchronous rounds in flight
        self._passes: set = set()  # futures of full passes (objective checks) in flight
        self._closing = False
        self._n_keys = itertools.count()
        #: dask annotations every task gets (e.g. the ``distributed.span`` of the run);
        #: captured here because tasks are submitted from the client's event loop
        self.annotations: dict[str, Any] = dict(dask.get_annotations())

    # -- versions --------------------------------------------------------------------------
    def publish(self, model: np.ndarray) -> int:
        """Publish a new model version (driver side, O(d)); returns its index."""
        return self.broadcaster.publish(model)

    @property
    def version(self) -> int:
        """Index of the latest published model version."""
        return self.broadcaster.version

    @property
    def clock(self) -> int:
        """Logical clock: applied updates so far."""
        return self.coordinator.clock

    def tick(self) -> int:
        """Count one applied update on the logical clock."""
        return self.coordinator.tick()

    # -- submission ------------------------------------------------------------------------
    def _key(self, kind: str, partition: int) -> str:
        return f"{self.name}-{kind}-p{partition}-{self.run_id}-{next(self._n_keys)}"

    def _task_delay_args(self) -> tuple[Straggler | None, float]:
        if not self.straggler.active:
            return None, 0.0
        warm = self._avg_fixed or self._warm_n >= self.warmup_tasks
        return self.straggler, (self.avg_task_time if warm else 0.0)

    def _launch(self, spec: _Spec) -> Any:
        """Submit one task (see :meth:`_launch_many`)."""
        return self._launch_many([spec])[0]

    def _launch_many(self, specs: Sequence[_Spec]) -> list:
        """Launch ``specs`` (same kernel, version, straggler delay and priority) on their
        partitions' blocks in one message to the scheduler (``Client.map``: one graph
        update instead of one per task; on a LocalCluster the scheduler shares the driver's
        event loop, so this is the driver's largest saving per task), under readable
        unique keys and with the run's dask annotations (its span)."""
        if not specs:
            return []
        first = specs[0]
        for s in specs:
            s.part = self._parts[s.partition]
        with dask.annotate(**self.annotations) if self.annotations else nullcontext():
            return self.client.map(
                run_task,
                [s.kernel for s in specs],
                [s.part for s in specs],
                [s.ref for s in specs],
                [s.partition for s in specs],
                [s.task_index for s in specs],
                [s.kwargs for s in specs],
                seed=self.seed,
                straggler=first.delay[0],
                avg_task_time=first.delay[1],
                key=[self._key(s.kind, s.partition) for s in specs],
                priority=first.priority,
                batch_size=None,
            )

    async def _repair(self, specs: Sequence[_Spec]) -> None:
        """Tasks of ``specs`` were cancelled by the cluster: re-create what a dead worker
        took with it (scattered data blocks, model versions) so they can run again."""

        def damaged() -> bool:
            return any(
                _gone(s.part) or s.part is not self._parts[s.partition] or _gone(s.ref)
                for s in specs
            )

        # the scheduler's notice about the lost block can trail the task's cancellation
        for _ in range(40):
            if damaged() or (hasattr(self.data, "lost") and self.data.lost()):
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(
                "task(s) of partition(s) "
                f"{sorted({s.partition for s in specs})} were cancelled outside daskasync"
            )
        self._n_repairs += 1
        if self._n_repairs > self.max_recoveries:
            raise RuntimeError(
                f"gave up after repairing {self.max_recoveries} worker losses "
                "(max_recoveries); the cluster keeps losing workers"
            )
        if hasattr(self.data, "lost") and self.data.lost():
            await self.data._recover()
            self._parts = list(self.data.parts)
        fresh: dict[int, Any] = {}
        for s in specs:
            if _gone(s.ref):
                if s.version not in fresh:
                    fresh[s.version] = await self.broadcaster._recover(s.version)
                s.ref = fresh[s.version]
        self.n_relaunched += len(specs)

    def _watch(self) -> None:
        """About every ``watch_interval`` s, look for new workers in the background."""
        if self.watch_interval is None or self.client.status != "running":
            return
        now = time.monotonic()
        if now < self._next_watch or (self._spreading and not self._spreading.done()):
            return
        self._next_watch = now + self.watch_interval
        self._spreading = asyncio.ensure_future(self._spread())

    async def _spread(self) -> None:
        """Copy a share of the blocks to workers that joined (see the class notes)."""
        try:
            sched = self.client.scheduler
            ncores = await sched.ncores_running()
            if self.membership.known is None or self.membership.known == set(ncores):
                self.membership.new_workers(ncores)  # the first look only records them
                return
            parts = list(self._parts)
            who_has = await sched.who_has(keys=[f.key for f in parts])
            plan = self.membership.plan(ncores, [who_has.get(f.key, ()) for f in parts])
            for worker, idx in plan.items():
                await sched.replicate(keys=[parts[p].key for p in idx], n=1, workers=[worker])
                self.n_spread += len(idx)
                logger.info("copied blocks %s to the new worker %s", idx, worker)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - a failed copy only costs throughput
            logger.warning("could not copy blocks to new workers: %r", err)

    async def _gather(self, specs: Sequence[_Spec], pool: set) -> list:
        """Launch the tasks of ``specs`` and gather their results in order, repairing
        worker losses; ``pool`` holds the futures while they are in flight."""
        futs = self._launch_many(specs)
        pool.update(futs)
        try:
            while True:
                try:
                    return await self.client.gather(futs)
                except (FutureCancelledError, FuturesCancelledError):
                    gone = [i for i, f in enumerate(futs) if f.status in _GONE]
                    if not gone or self._closing:
                        raise
                    await self._repair([specs[i] for i in gone])
                    for i in gone:
                        pool.discard(futs[i])
                        futs[i].release()
                        futs[i] = self._launch(specs[i])
                        pool.add(futs[i])
        finally:
            for f in futs:  # a traceback must not keep these tasks alive
                pool.discard(f)
                f.release()

    def _tickets_for(self, partitions: Sequence[int], version: int, kind: str, args: TaskArgs):
        """Record a ticket per partition and build its keyword arguments."""
        co = self.coordinator
        for p in partitions:
            ticket = co.submit(p, version, kind)
            yield ticket, (args(p, ticket.task_index) if callable(args) else (args or {}))

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

    async def _submit(
        self,
        kernel: Callable,
        partitions: Sequence[int] | None = None,
        args: TaskArgs = None,
        *,
        version: int = -1,
        kind: str = "grad",
    ) -> list[Ticket]:
        self._closing = False
        self._watch()
        if partitions is None:
            partitions = self.barrier.select(self.coordinator)
        if not partitions:
            return []
        version = self.broadcaster._check(version)
        ref = await self.broadcaster._ref(version, uses=len(partitions))
        delay = self._task_delay_args()
        tickets, specs = [], []
        for ticket, kw in self._tickets_for(partitions, version, kind, args):
            specs.append(_Spec(kernel, ticket.partition, version, ref, ticket.task_index, kw,
                               kind, delay))
            tickets.append(ticket)
        for fut, ticket, spec in zip(self._launch_many(specs), tickets, specs, strict=True):
            self._track(fut, ticket, spec)
        return tickets

    def _track(self, fut: Any, ticket: Ticket, spec: _Spec) -> None:
        self._tickets[fut] = ticket
        self._specs[fut] = spec
        self._on_version[spec.version] += 1
        self._ac.add(fut)

    def _untrack(self, fut: Any) -> tuple[Ticket | None, _Spec | None]:
        ticket = self._tickets.pop(fut, None)
        spec = self._specs.pop(fut, None)
        if spec is not None:
            self._on_version[spec.version] -= 1
            if self._on_version[spec.version] <= 0:
                del self._on_version[spec.version]
        return ticket, spec

    def submit(
        self,
        kernel: Callable,
        partitions: Sequence[int] | None = None,
        args: TaskArgs = None,
        *,
        version: int = -1,
    ) -> list[Ticket]:
        """Submit ``kernel(block, model, partition=, task_index=, seed=, **args)`` on
        ``partitions`` (default: those the barrier selects) with model ``version``."""
        return self.client.sync(self._submit, kernel, partitions, args, version=version)

    # -- collection ------------------------------------------------------------------------
    async def _next(self) -> tuple[Any, ResultAttributes]:
        """Next finished result (dropped ones included, marked ``attrs.dropped``)."""
        while True:
            if not self._ready:
                if not self._tickets:
                    raise BarrierError(
                        "no task is in flight: nothing to collect (the barrier selected no "
                        "partition while none was running; a predicate must select at least "
                        "one idle partition when nothing is in flight)"
                    )
                item = await self._ac.__anext__()
                self._ready.append(item)
                self._ready.extend(self._ac.next_batch(block=False))
            fut, res = self._ready.popleft()
            ticket, spec = self._untrack(fut)
            if ticket is None or spec is None:  # cancelled by us
                continue
            if fut.status in _GONE:
                # a worker died with data this task needed: the same task runs again, and
                # its ticket stays in flight (its result is applied once)
                fut.release()
                del fut, res
                try:
                    await self._repair([spec])
                except BaseException:
                    self.coordinator.cancel(ticket)
                    raise
                self._track(self._launch(spec), ticket, spec)
                continue
            if fut.status == "error":
                self.coordinator.cancel(ticket)
                fut.release()  # the traceback must not keep the erred task alive
                del fut
                _typ, exc, tb = res
                del res
                raise exc.with_traceback(tb)
            value, meta = res
            return value, self._completed(ticket, meta, self.barrier.max_staleness)

    async def _collect_all(self) -> tuple[Any, ResultAttributes]:
        while True:
            value, attrs = await self._next()
            if not attrs.dropped:
                return value, attrs

    def collect_all(self) -> tuple[Any, ResultAttributes]:
        """Next applied-worthy result and its attributes (ASYNC's ``collectAll``); results
        staler than the barrier's ``tau`` are dropped and counted, not returned."""
        return self.client.sync(self._collect_all)

    def collect(self) -> Any:
        """Next result's value (ASYNC's ``collect``)."""
        return self.collect_all()[0]

    def _batch_pending(self) -> bool:
        """Another finished result of a task in flight is waiting: the asynchronous loops
        apply it before handing out work, so that the partitions that finished together get
        the newest model in one message (an untracked leftover never holds work back)."""
        return bool(self._tickets) and self.has_ready()

    def has_ready(self) -> bool:
        """Whether a finished result is waiting to be collected."""
        return bool(self._ready) or self._ac.has_ready()

    # -- barriers (synchronous rounds) -----------------------------------------------------
    async def _round(
        self, kernel: Callable, args: TaskArgs = None, *, version: int = -1
    ) -> tuple[list[Any], list[ResultAttributes]]:
        """One synchronous round: every partition computes on ``version``; a gather barrier
        waits for all of them. Results come back in partition order."""
        if self._tickets:
            raise BarrierError("a synchronous round needs every partition free")
        self._closing = False
        self._watch()
        version = self.broadcaster._check(version)
        ref = await self.broadcaster._ref(version, uses=self.n_partitions)
        delay = self._task_delay_args()
        specs, tickets = [], []
        for ticket, kw in self._tickets_for(range(self.n_partitions), version, "grad", args):
            specs.append(_Spec(kernel, ticket.partition, version, ref, ticket.task_index, kw,
                               "grad", delay))
            tickets.append(ticket)
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
        """Run one synchronous round (every partition, gather barrier)."""
        return self.client.sync(self._round, kernel, args, version=version)

    # -- full passes (objective, gradient) -------------------------------------------------
    async def _map_partitions(self, kernel: Callable, model: Any, kind: str, **kwargs) -> list:
        specs = [
            _Spec(kernel, p, -1, model, 0, kwargs, kind, priority=10)
            for p in range(self.n_partitions)
        ]
        return [r[0] for r in await self._gather(specs, self._passes)]

    async def _evaluate(self, theta: np.ndarray, **kwargs) -> tuple[float, np.ndarray, int]:
        """Full-data loss sum and gradient sum at ``theta``."""
        out = await self._map_partitions(eval_kernel, theta, "eval", **kwargs)
        return (
            float(sum(o[0] for o in out)),
            np.sum([o[1] for o in out], axis=0),
            int(sum(o[2] for o in out)),
        )

    async def _objectives(self, thetas: np.ndarray, **kwargs) -> np.ndarray:
        """Full-data loss sums for every row of ``thetas``."""
        if len(thetas) == 0:
            return np.zeros(0)
        out = await self._map_partitions(objectives_kernel, thetas, "objective", **kwargs)
        return np.sum(out, axis=0)

    # -- clean-up --------------------------------------------------------------------------
    async def _cancel_in_flight(self) -> None:
        """Cancel the tasks in flight (their results are never applied)."""
        futs = list(self._tickets) + list(self._gathering)
        for ticket in self._tickets.values():
            self.coordinator.cancel(ticket)
        self._tickets.clear()
        self._specs.clear()
        self._on_version.clear()
        self._ready.clear()
        self._ac.clear()
        self._gathering.clear()
        if futs:
            await self.client.cancel(futs)

    async def _cancel(self) -> None:
        """Everything: tasks in flight, full passes, the copy to new workers, and the
        model versions on the cluster."""
        self._closing = True
        if self._spreading is not None and not self._spreading.done():
            self._spreading.cancel()
        await self._cancel_in_flight()
        passes = list(self._passes)
        self._passes.clear()
        if passes:
            await self.client.cancel(passes)
        self.broadcaster.release()

    def cancel(self) -> None:
        """Cancel every task in flight and release the model versions on the cluster."""
        if self.client.status not in ("closed", "closing"):
            self.client.sync(self._cancel)

    def close(self) -> None:
        """Cancel outstanding tasks and release the model versions (as :meth:`cancel`)."""
        self.cancel()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not yet collected."""
        return len(self._tickets)

    def __repr__(self) -> str:
        return (
            f"<Engine P={self.n_partitions} clock={self.clock} version={self.version} "
            f"in_flight={self.in_flight} barrier={self.barrier!r}>"
        )


#: seconds each step of the clean-up after an error or Ctrl-C may take
ABORT_TIMEOUT = 10.0


def run_sync(engine: Engine, coro_fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run ``coro_fn(*args, **kwargs)`` on the client's loop; on any error or interrupt
    (``KeyboardInterrupt``) cancel the engine's outstanding work before re-raising."""
    client = engine.client
    if client.asynchronous:
        return _run_async_guarded(engine, coro_fn, *args, **kwargs)
    holder: dict[str, asyncio.Task] = {}

    async def _main():
        holder["task"] = asyncio.current_task()  # type: ignore[assignment]
        return await coro_fn(*args, **kwargs)

    try:
        return client.sync(_main)
    except BaseException:
        async def _abort():
            task = holder.get("task")
            if task is not None and not task.done():
                task.cancel()
                # bounded: the clean-up below must run even if the run does not unwind
                await asyncio.wait({task}, timeout=ABORT_TIMEOUT)
            # bounded too: an unresponsive scheduler must not turn Ctrl-C into a hang (the
            # futures are dropped from the engine first, so the client releases them anyway)
            await asyncio.wait_for(engine._cancel(), ABORT_TIMEOUT)

        if client.status not in ("closed", "closing"):
            try:
                client.sync(_abort, callback_timeout=3 * ABORT_TIMEOUT)
            except Exception:  # noqa: BLE001 - the original error matters more
                logger.warning("clean-up after an interrupted run did not finish", exc_info=True)
        raise


async def _run_async_guarded(engine: Engine, coro_fn: Callable, *args: Any, **kwargs: Any):
    try:
        return await coro_fn(*args, **kwargs)
    except BaseException:
        await engine._cancel()
        raise

