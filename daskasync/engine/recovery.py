"""Workers leaving and joining during a run.

:class:`Recovery` re-creates what a dead worker took with it (scattered data blocks, model
versions) so that the cancelled tasks can run again with the same ticket, version, task
index and arguments (each result is then applied once), and gives workers that hold no block
(those that joined) copies of a share of the blocks, so that the scheduler (which runs a task
where its block is) gives them work. The decisions are in the cluster-free
:class:`~.membership.Membership`; what happened is counted (:meth:`Recovery.counts`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._comm import arunning_workers
from ..constraints import Interval, check
from .launcher import Launcher, TaskSpec, gone
from .membership import Membership

logger = logging.getLogger(__name__)

__all__ = ["Recovery"]


class Recovery:
    """Repairs after worker losses, and shares of blocks for joining workers.

    Parameters
    ----------
    data : PartitionedData
    launcher : Launcher
        Whose block futures are replaced after a recovery.
    broadcaster : Broadcaster
        Re-scatters lost model versions.
    max_recoveries : int
        Worker losses repaired before giving up.
    watch_interval : float or None
        Seconds between looks at the workers (``None``: never).
    """

    def __init__(self, data: Any, launcher: Launcher, broadcaster: Any, *,
                 max_recoveries: int = 100, watch_interval: float | None = 1.0) -> None:
        self.max_recoveries = check("max_recoveries", max_recoveries, Interval("int", 0))
        check("watch_interval", watch_interval, Interval("real", 0, closed="neither"), None)
        self.data = data
        self.launcher = launcher
        self.broadcaster = broadcaster
        self.watch_interval = watch_interval
        self.membership = Membership()
        #: the running workers at the last look (about every ``watch_interval`` s), None
        #: before the first
        self.running: frozenset[str] | None = None
        self.n_spread = 0  #: data blocks copied to workers that joined during the run
        self.n_relaunched = 0  #: tasks launched again after a worker loss cancelled them
        self.n_repairs = 0
        #: the data's counters when the run started (they count over its whole life)
        self._data_base = {k: getattr(data, k, 0)
                           for k in ("n_lost", "n_recovered", "n_promoted")}
        self._next_watch = 0.0
        #: messages of tasks repaired so far (their other tasks were cancelled with them)
        self._repaired_groups: set[tuple[TaskSpec, ...]] = set()
        self._spreading: asyncio.Task | None = None
        #: ``await remake_view(spec)``: a new copy of the view a task was shipped (set by
        #: the engine; a view is the task's own, not one of the broadcaster's versions)
        self.remake_view: Callable[[TaskSpec], Awaitable[Any]] | None = None

    def home(self, homes: Sequence[str | None] | None, partition: int) -> str | None:
        """``homes[partition]`` (the worker holding its block) if it was running at the
        last look, else None (where its data goes, the scheduler picks then)."""
        home = homes[partition] if homes else None
        return home if self.running is None or home in self.running else None

    async def arepair(self, specs: Sequence[TaskSpec]) -> None:
        """Tasks of ``specs`` were cancelled by the cluster: re-create the blocks and model
        versions they need, and point the specs at the new copies."""
        # the scheduler cancels every task of a message when one of them needs a lost key,
        # so a task may be cancelled for a sibling's loss, repaired before it or after it
        groups = {s.siblings for s in specs if s.siblings}
        # the scheduler's notice about the lost block can trail the task's cancellation
        for _ in range(40):
            if self._explained(specs, groups):
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(
                "task(s) of partition(s) "
                f"{sorted({s.partition for s in specs})} were cancelled outside daskasync"
            )
        self._repaired_groups |= groups
        self.n_repairs += 1
        if self.n_repairs > self.max_recoveries:
            raise RuntimeError(
                f"gave up after repairing {self.max_recoveries} worker losses "
                "(max_recoveries); the cluster keeps losing workers"
            )
        await self.data.arecover()  # another copy, or a block re-created from the driver
        self.launcher.set_parts(self.data.parts)
        for s in specs:
            if gone(s.ref):
                if s.view and self.remake_view is not None:
                    s.ref = await self.remake_view(s)
                else:
                    s.ref = await self._version(s.version)
        self.n_relaunched += len(specs)

    def _explained(self, specs: Sequence[TaskSpec], groups: set[tuple[TaskSpec, ...]]) -> bool:
        """Whether a worker loss explains the cancellation of ``specs``: a block or model
        version they or a task launched with them needed is gone, or a block has no copy
        left, or a task launched with them was repaired already."""
        siblings = [t for g in groups for t in g]
        return (self.launcher.damaged([*specs, *siblings]) or bool(self.data.lost())
                or not groups.isdisjoint(self._repaired_groups))

    async def _version(self, version: int) -> Any:
        """A live copy of scattered model ``version``: the one placed again by an earlier
        repair (tasks cancelled one at a time each come here), or a new one."""
        b = self.broadcaster
        current = b._futures.get(version) or b._retired_futures.get(version)
        if current is not None and not gone(current):
            return current
        return await b._recover(version)

    def watch(self) -> None:
        """About every ``watch_interval`` s, look for new workers in the background."""
        client = self.launcher.client
        if self.watch_interval is None or client.status != "running":
            return
        now = time.monotonic()
        if now < self._next_watch or (self._spreading and not self._spreading.done()):
            return
        self._next_watch = now + self.watch_interval
        self._spreading = asyncio.ensure_future(self._spread())

    async def _spread(self) -> None:
        """Copy a share of the blocks to running workers that hold none."""
        try:
            ncores = await arunning_workers(self.launcher.client)
            self.running = frozenset(ncores)
            plan = self.membership.plan(ncores, await self.data.aholders())
            if plan:
                made = await self.data.aspread(plan)
                self.launcher.set_parts(self.data.parts)
                self.n_spread += made
                logger.info("copied blocks to workers that hold none: %s", plan)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - a failed copy only costs throughput
            logger.warning("could not copy blocks to new workers: %r", err)

    def counts(self) -> dict[str, int]:
        """What worker losses and joins cost this run so far.

        Returns
        -------
        dict of str to int
            ``tasks``: tasks launched again after a worker loss cancelled them;
            ``blocks_lost``: data blocks left with no copy on the cluster;
            ``blocks``: blocks re-created from the driver-side source (equal to
            ``blocks_lost`` unless the run failed to re-create one);
            ``blocks_from_copies``: lost blocks whose tasks went on with another copy
            (nothing re-created); ``model_versions``: scattered model versions placed again;
            ``blocks_copied``: copies made for workers that joined.
        """
        now = {k: getattr(self.data, k, 0) - v for k, v in self._data_base.items()}
        return {
            "tasks": self.n_relaunched,
            "blocks_lost": now["n_lost"],
            "blocks": now["n_recovered"],
            "blocks_from_copies": now["n_promoted"],
            "model_versions": self.broadcaster.n_recovered,
            "blocks_copied": self.n_spread,
        }

    def stop(self) -> None:
        """Stop a copy to new workers in progress."""
        if self._spreading is not None and not self._spreading.done():
            self._spreading.cancel()
