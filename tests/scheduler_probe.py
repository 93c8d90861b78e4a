"""What the scheduler has seen, read on the scheduler itself through public APIs: a
:class:`distributed.SchedulerPlugin` that records every key a graph or a transition
brought, and the scheduler's transition counter. Works with clusters whose scheduler runs
in the test process (LocalCluster)."""

from __future__ import annotations

import time
from typing import Any

from distributed import Client, SchedulerPlugin

_NAME = "daskasync-test-seen-keys"


class SeenKeys(SchedulerPlugin):
    """Every key that reached the scheduler (in a graph or in any transition)."""

    name = _NAME

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._seen: set[str] = set()

    def _add(self, key: Any) -> None:
        k = str(key)
        if k not in self._seen:
            self._seen.add(k)
            self.keys.append(k)

    def update_graph(self, scheduler: Any, *, keys: Any = (), tasks: Any = (), **kw: Any) -> None:
        for k in (*tasks, *keys):
            self._add(k)

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        self._add(key)


def install(client: Client) -> None:
    """Register the plugin on ``client``'s scheduler (once)."""
    has = client.run_on_scheduler(lambda dask_scheduler: _NAME in dask_scheduler.plugins)
    if not has:
        client.register_plugin(SeenKeys())


def seen(client: Client, settle: float = 0.2, timeout: float = 10.0) -> tuple[int, int]:
    """``(keys ever seen, transitions ever made)`` on ``client``'s scheduler, read once the
    transition counter has not moved for ``settle`` seconds (the releases of earlier work
    also count as transitions). Scattered data enters without a transition but leaves with
    one, so a call that scatters and then fails moves the counter too."""

    def _read(dask_scheduler: Any) -> tuple[int, int]:
        plugin = dask_scheduler.plugins[_NAME]
        return len(plugin.keys), int(dask_scheduler.transition_counter)

    deadline = time.monotonic() + timeout
    last = tuple(client.run_on_scheduler(_read))
    while True:
        time.sleep(settle)
        now = tuple(client.run_on_scheduler(_read))
        if now == last or time.monotonic() > deadline:
            return now
        last = now


def keys_since(client: Client, start: int) -> list[str]:
    """Keys first seen after the first ``start`` ones."""
    return list(client.run_on_scheduler(
        lambda dask_scheduler: dask_scheduler.plugins[_NAME].keys[start:]))
