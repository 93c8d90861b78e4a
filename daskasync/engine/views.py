"""Shipping each task its model version on the positions it reads only.

A task on a sparse block reads the model on its block's columns only. Where a block has
few of the ``d`` columns, the engine sends each of its tasks a
:class:`~daskasync.views.ColumnView` of the version (``O(columns of the block)`` bytes)
instead of the whole version (``O(d)``, shared by the tasks of a worker): scattered to the
block's worker, owned by the task, released with its result, and scattered again if its
worker dies before the task ran.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._comm import scatter_retrying
from ..views import restrict
from .launcher import TaskSpec

__all__ = ["ViewShipper"]


class ViewShipper:
    """Per-partition views of model versions (see the module description).

    Parameters
    ----------
    client : distributed.Client
    broadcaster : Broadcaster
        Holds the versions the views are cut from (a task's version stays readable while
        the task is in flight).
    coordinator : Coordinator
        Knows each partition's home worker.
    recovery : Recovery
        Knows the running workers; asks for a view again after a worker loss.
    launcher : Launcher
        Releases a task's view after the next launch.
    """

    def __init__(self, client: Any, broadcaster: Any, coordinator: Any, recovery: Any,
                 launcher: Any) -> None:
        self.client = client
        self.broadcaster = broadcaster
        self.coordinator = coordinator
        self.recovery = recovery
        self.launcher = launcher
        #: per partition, the positions of a version its tasks read (None: the whole)
        self.index: list[np.ndarray | None] | None = None
        self._n_sent = itertools.count()
        recovery.remake_view = self.aremake

    def restrict(self, index: Sequence[np.ndarray | None] | None) -> None:
        """Ship the tasks of partition ``p`` the versions on positions ``index[p]`` of
        their last axis only (``None``: the whole version, shared by the tasks on it;
        ``index=None``: every partition). The kernel must read nothing else: a task then
        gets and computes the same values for ``O(len(index[p]))`` bytes."""
        P = self.coordinator.n_partitions
        if index is not None and len(index) != P:
            raise ValueError(f"index: one entry per partition ({P}), got {len(index)}")
        self.index = None if index is None else list(index)

    def has(self, partition: int) -> bool:
        """Whether the tasks of ``partition`` get views."""
        return self.index is not None and self.index[partition] is not None

    @property
    def n_partitions(self) -> int:
        """Partitions whose tasks get views."""
        return 0 if self.index is None else sum(i is not None for i in self.index)

    async def aviews(self, version: int, partitions: Sequence[int]) -> dict[int, Any]:
        """A view of ``version`` for each of ``partitions``, scattered to its block's worker
        (one scatter per worker, all at once): partition -> future. Each is a task's own,
        under a key of its own."""
        assert self.index is not None
        arr = self.broadcaster.shipped(version)
        by_home: dict[str | None, list[int]] = {}
        for p in partitions:  # None: the scheduler picks a worker
            by_home.setdefault(self.recovery.home(self.coordinator.homes, p), []).append(p)
        key = self.broadcaster.key(version)
        sent = await asyncio.gather(*(
            scatter_retrying(
                self.client, [restrict(arr, self.index[p]) for p in group],
                keys=[f"{key}-p{p}-n{next(self._n_sent)}" for p in group],
                workers=None if home is None else [home])
            for home, group in by_home.items()))
        return {p: fut for group, futs in zip(by_home.values(), sent, strict=True)
                for p, fut in zip(group, futs, strict=True)}

    async def aremake(self, spec: TaskSpec) -> Any:
        """Scatter again the view of a task whose copy was lost with its worker."""
        return (await self.aviews(spec.version, [spec.partition]))[spec.partition]

    def release(self, spec: TaskSpec | None) -> None:
        """A task's view is not needed once its result is taken (or it is cancelled)."""
        if spec is not None and spec.view:
            self.launcher.release_later(spec.ref)
            spec.view = False
