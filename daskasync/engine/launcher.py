"""Launching tasks on the partitions' blocks: what a task is (:class:`TaskSpec`, enough to
launch it again after a worker loss) and how a group of them reaches the scheduler
(:class:`Launcher`: one ``Client.map`` message, unique readable keys, the run's
annotations)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import dask
from distributed import Future

from ..stragglers import Straggler
from ..tasks import run_task

__all__ = ["TaskSpec", "Launcher", "gone"]

_GONE = ("cancelled", "lost")


def gone(fut: Any) -> bool:
    """Whether ``fut`` is a future the cluster lost or cancelled (e.g. its only holder
    died): a task depending on it cannot run until it is re-created."""
    return isinstance(fut, Future) and fut.status in _GONE


@dataclass(eq=False)
class TaskSpec:
    """Everything needed to launch a task (again, after a worker loss): the same
    partition, model version, task index and arguments give the same result."""

    kernel: Callable
    partition: int
    version: int
    ref: Any  #: the model (inline array, future of a scattered version or of a view)
    task_index: int
    kwargs: dict
    kind: str
    delay: tuple[Straggler | None, float] = (None, 0.0)
    priority: int = 0
    part: Any = None  #: the block's future the task was launched with
    #: ``ref`` is this task's own view of its version (:class:`~daskasync.views.ColumnView`)
    view: bool = False
    #: the specs launched in the same message (this one included): the scheduler cancels
    #: a whole message when one of its tasks needs a lost key
    siblings: tuple[TaskSpec, ...] = field(default=(), repr=False)


class Launcher:
    """Sends groups of :class:`TaskSpec` to the scheduler.

    Parameters
    ----------
    client : distributed.Client
    parts : list of Future
        The partitions' blocks (replaced by :meth:`set_parts` after a recovery).
    seed : int
        Passed to every task (seeds its sampling and its straggler draw).
    name, run_id : str
        Key prefix and run token: keys read ``<name>-<kind>-p<partition>-<run_id>-<n>``.
    """

    def __init__(self, client: Any, parts: Sequence[Any], *, seed: int, name: str,
                 run_id: str) -> None:
        self.client = client
        self.parts = list(parts)
        self.seed = int(seed)
        self.name = name
        self.run_id = run_id
        self._n_keys = itertools.count()
        #: dask annotations every task gets (e.g. the ``distributed.span`` of the run)
        self.annotations: dict[str, Any] = dict(dask.get_annotations())
        self._to_release: list[Any] = []

    def release_later(self, *futures: Any) -> None:
        """Release ``futures`` right after the next :meth:`launch` (or
        :meth:`flush_releases`). The client batches its messages to the scheduler, one
        send per window (10 ms for a client in the distributed releases supported): a
        release sent just before a launch would hold the launch back until the window
        ends, so the launch goes first."""
        self._to_release.extend(futures)

    def flush_releases(self) -> None:
        """Release now what :meth:`release_later` holds."""
        held, self._to_release = self._to_release, []
        for f in held:
            f.release()

    def set_parts(self, parts: Sequence[Any]) -> None:
        self.parts = list(parts)

    def key(self, kind: str, partition: int) -> str:
        return f"{self.name}-{kind}-p{partition}-{self.run_id}-{next(self._n_keys)}"

    def launch(self, specs: Sequence[TaskSpec]) -> list:
        """Launch ``specs`` (same kernel, version, straggler delay and priority) on their
        partitions' blocks in one message to the scheduler (``Client.map``: one graph
        update instead of one per task; on a LocalCluster the scheduler shares the driver's
        event loop, so one message per group is the driver's largest saving per task),
        under unique keys and with the run's dask annotations (its span)."""
        if not specs:
            return []
        first = specs[0]
        group = tuple(specs)
        for s in specs:
            s.part = self.parts[s.partition]
            s.siblings = group
        with dask.annotate(**self.annotations) if self.annotations else nullcontext():
            futures = self.client.map(
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
                key=[self.key(s.kind, s.partition) for s in specs],
                # the keys are given (unique per task): ``pure=True`` would only hash
                # every argument (a whole-partition SAGA task's 200 KB of history scalars)
                # for a token that names nothing, about 1 ms of driver time per launch
                pure=False,
                priority=first.priority,
                batch_size=None,
            )
        self.flush_releases()
        return futures

    def damaged(self, specs: Sequence[TaskSpec]) -> bool:
        """Whether a block or model version one of ``specs`` was launched with is gone
        (or its block was replaced since)."""
        return any(
            gone(s.part) or s.part is not self.parts[s.partition] or gone(s.ref)
            for s in specs
        )
