"""Bookkeeping of the ASYNC engine: logical clock, tickets, staleness, per-partition and
per-worker state. Plain objects, no cluster: unit-testable on their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Ticket", "ResultAttributes", "PartitionState", "WorkerStats", "Coordinator"]


@dataclass(slots=True)
class Ticket:
    """What the driver knows about one submitted task."""

    partition: int
    version: int  #: model version the task computes on
    clock: int  #: logical clock (applied updates) at submission
    submit_time: float
    task_index: int  #: per-partition task counter (seeds the task's sampling)
    kind: str = "grad"
    home: str | None = None  #: worker holding the partition's data at submission


@dataclass(frozen=True, slots=True)
class ResultAttributes:
    """Attributes of a collected result (ASYNC's ``collectAll``)."""

    partition: int
    version: int
    staleness: int  #: clock at collection - clock at submission
    worker: str
    duration: float  #: task run time on the worker (seconds, including injected delay)
    compute_time: float  #: task compute time without injected delay
    submit_time: float
    collect_time: float
    task_index: int
    dropped: bool = False


@dataclass(slots=True)
class PartitionState:
    """Per-partition state that barrier predicates read."""

    partition: int
    available: bool = True  #: no task in flight
    staleness: int = 0  #: staleness of its last result
    avg_task_time: float = 0.0  #: mean task duration so far
    tasks_done: int = 0  #: results collected (applied or dropped)
    applied: int = 0  #: results applied
    dropped: int = 0  #: results dropped for staleness
    submitted: int = 0  #: tasks submitted
    worker: str | None = None  #: worker of its last result
    last_version: int = -1  #: model version of its in-flight or last task


@dataclass(slots=True)
class WorkerStats:
    """Per-worker statistics, aggregated over the partitions it computed."""

    worker: str
    tasks: int = 0
    total_time: float = 0.0
    total_staleness: int = 0
    dropped: int = 0
    max_staleness: int = 0
    last_staleness: int = 0  #: staleness of its last result
    in_flight: int = 0  #: tasks in flight on partitions whose data this worker holds

    @property
    def available(self) -> bool:
        """No task in flight on the partitions this worker holds."""
        return self.in_flight == 0

    @property
    def mean_task_time(self) -> float:
        return self.total_time / self.tasks if self.tasks else 0.0

    @property
    def mean_staleness(self) -> float:
        return self.total_staleness / self.tasks if self.tasks else 0.0

    def as_dict(self) -> dict:
        return {
            "tasks": self.tasks,
            "mean_task_time": self.mean_task_time,
            "mean_staleness": self.mean_staleness,
            "max_staleness": self.max_staleness,
            "last_staleness": self.last_staleness,
            "dropped": self.dropped,
            "in_flight": self.in_flight,
        }


@dataclass
class Coordinator:
    """Logical clock and bookkeeping.

    The clock counts applied updates. A task submitted at clock ``c`` and collected at clock
    ``c'`` has staleness ``c' - c``.

    Examples
    --------
    >>> co = Coordinator(2)
    >>> t = co.submit(0, version=0)
    >>> co.tick()   # another result was applied meanwhile
    1
    >>> co.complete(t, worker="w", duration=0.1).staleness
    1
    """

    n_partitions: int
    time_fn: Callable[[], float] = time.perf_counter
    #: worker holding each partition's data (``PartitionedData.locations``), if known
    homes: list[str | None] | None = None
    clock: int = 0
    states: list[PartitionState] = field(init=False)
    workers: dict[str, WorkerStats] = field(init=False, default_factory=dict)
    n_submitted: int = 0
    n_collected: int = 0
    n_dropped: int = 0
    _stale_sum: int = 0
    _stale_n: int = 0
    _stale_max: int = 0
    _in_flight: int = 0
    #: exponential moving average (weight 0.1) of the applied results' staleness
    mean_recent_staleness: float = 0.0
    #: how many applied results had each staleness (a histogram)
    staleness_counts: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.states = [PartitionState(p) for p in range(self.n_partitions)]
        if self.homes is None:
            self.homes = [None] * self.n_partitions
        elif len(self.homes) != self.n_partitions:
            raise ValueError("homes: need one worker address (or None) per partition")

    def _worker(self, address: str) -> WorkerStats:
        ws = self.workers.get(address)
        if ws is None:
            ws = self.workers[address] = WorkerStats(address)
        return ws

    # -- task life cycle -------------------------------------------------------------------
    def submit(self, partition: int, version: int, kind: str = "grad") -> Ticket:
        """Record a task on ``partition`` computing on model ``version``; the partition
        becomes unavailable."""
        st = self.states[partition]
        if not st.available:
            raise RuntimeError(f"partition {partition} already has a task in flight")
        st.available = False
        st.last_version = version
        home = self.homes[partition]  # type: ignore[index]
        ticket = Ticket(partition, version, self.clock, self.time_fn(), st.submitted, kind, home)
        if home is not None:
            self._worker(home).in_flight += 1
        st.submitted += 1
        self.n_submitted += 1
        self._in_flight += 1
        return ticket

    def complete(
        self,
        ticket: Ticket,
        *,
        worker: str,
        duration: float,
        compute_time: float | None = None,
        max_staleness: int | None = None,
    ) -> ResultAttributes:
        """Record that ``ticket``'s result was collected now. The result is marked dropped
        when its staleness exceeds ``max_staleness``. The partition becomes available."""
        st = self.states[ticket.partition]
        if st.available or st.submitted - 1 != ticket.task_index:
            raise RuntimeError(f"ticket {ticket} is not the task in flight on its partition")
        staleness = self.clock - ticket.clock
        dropped = max_staleness is not None and staleness > max_staleness
        st.available = True
        self._in_flight -= 1
        st.staleness = staleness
        st.tasks_done += 1
        st.avg_task_time += (duration - st.avg_task_time) / st.tasks_done
        st.worker = worker
        if ticket.home is not None:
            self.workers[ticket.home].in_flight -= 1
        self.homes[ticket.partition] = worker  # type: ignore[index]  # the data is there now
        ws = self._worker(worker)
        ws.tasks += 1
        ws.total_time += duration
        ws.total_staleness += staleness
        ws.last_staleness = staleness
        if staleness > ws.max_staleness:
            ws.max_staleness = staleness
        self.n_collected += 1
        if dropped:
            st.dropped += 1
            ws.dropped += 1
            self.n_dropped += 1
        else:
            st.applied += 1
            self._stale_sum += staleness
            self._stale_n += 1
            self.mean_recent_staleness += 0.1 * (staleness - self.mean_recent_staleness)
            self.staleness_counts[staleness] = self.staleness_counts.get(staleness, 0) + 1
            if staleness > self._stale_max:
                self._stale_max = staleness
        return ResultAttributes(
            ticket.partition,
            ticket.version,
            staleness,
            worker,
            duration,
            duration if compute_time is None else compute_time,
            ticket.submit_time,
            self.time_fn(),
            ticket.task_index,
            dropped,
        )

    def cancel(self, ticket: Ticket) -> None:
        """Forget an in-flight task (cancelled, or lost): its partition is available again."""
        st = self.states[ticket.partition]
        if not st.available and st.submitted - 1 == ticket.task_index:
            st.available = True
            self._in_flight -= 1
            if ticket.home is not None:
                self.workers[ticket.home].in_flight -= 1

    def tick(self) -> int:
        """Advance the clock by one applied update."""
        self.clock += 1
        return self.clock

    # -- queries ---------------------------------------------------------------------------
    def available(self) -> list[int]:
        """Partitions with no task in flight."""
        return [s.partition for s in self.states if s.available]

    @property
    def in_flight(self) -> int:
        """Number of tasks in flight."""
        return self._in_flight

    def restore(self, clock: int, task_counts: Any) -> None:
        """Continue a run: set the clock and each partition's task counter (the next
        task's index), so tasks draw what one uninterrupted run would have drawn."""
        counts = [int(c) for c in task_counts]
        if len(counts) != self.n_partitions or min(counts, default=0) < 0 or clock < 0:
            raise ValueError("restore: need a clock >= 0 and one task count >= 0 per partition")
        if self._in_flight or self.n_submitted:
            raise RuntimeError("restore: only before the first task")
        self.clock = int(clock)
        for st, c in zip(self.states, counts, strict=True):
            st.submitted = c

    def task_counts(self) -> list[int]:
        """Tasks submitted per partition (the next task indices)."""
        return [st.submitted for st in self.states]

    def staleness_window(self) -> tuple[float, int]:
        """Mean and max staleness of the results applied since the last call; resets."""
        n, total, mx = self._stale_n, self._stale_sum, self._stale_max
        self._stale_n = self._stale_sum = self._stale_max = 0
        return (total / n if n else 0.0), mx

    def worker_stats(self) -> dict[str, dict]:
        """Per-worker statistics as plain dictionaries."""
        return {w: s.as_dict() for w, s in sorted(self.workers.items())}
