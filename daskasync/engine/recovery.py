"""Workers leaving and joining during a run.

:class:`Recovery` re-creates what a dead worker took with it (scattered data blocks, model
versions) so that the cancelled tasks can run again with the same ticket, version, task
index and arguments (each result is then applied once), and copies a share of the blocks to
workers that join, so that the scheduler (which runs a task where its block is) gives them
work. The decisions are in the cluster-free :class:`~.membership.Membership`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

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
        self.n_spread = 0  #: data blocks copied to workers that joined during the run
        self.n_relaunched = 0  #: tasks launched again after a worker loss cancelled them
        self.n_repairs = 0
        self._next_watch = 0.0
        self._spreading: asyncio.Task | None = None

    async def arepair(self, specs: Sequence[TaskSpec]) -> None:
        """Tasks of ``specs`` were cancelled by the cluster: re-create the blocks and model
        versions they need, and point the specs at the new copies."""
        # the scheduler's notice about the lost block can trail the task's cancellation
        for _ in range(40):
            if self.launcher.damaged(specs) or self.data.lost():
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(
                "task(s) of partition(s) "
                f"{sorted({s.partition for s in specs})} were cancelled outside daskasync"
            )
        self.n_repairs += 1
        if self.n_repairs > self.max_recoveries:
            raise RuntimeError(
                f"gave up after repairing {self.max_recoveries} worker losses "
                "(max_recoveries); the cluster keeps losing workers"
            )
        if self.data.lost():
            await self.data.arecover()
            self.launcher.set_parts(self.data.parts)
        fresh: dict[int, Any] = {}
        for s in specs:
            if gone(s.ref):
                if s.version not in fresh:
                    fresh[s.version] = await self.broadcaster._recover(s.version)
                s.ref = fresh[s.version]
        self.n_relaunched += len(specs)

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
        """Copy a share of the blocks to workers that joined."""
        try:
            sched = self.launcher.client.scheduler
            ncores = await sched.ncores_running()
            if self.membership.known is None or self.membership.known == set(ncores):
                self.membership.new_workers(ncores)  # the first look only records them
                return
            parts = list(self.launcher.parts)
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

    def stop(self) -> None:
        """Stop a copy to new workers in progress."""
        if self._spreading is not None and not self._spreading.done():
            self._spreading.cancel()
