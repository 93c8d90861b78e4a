"""Running a solver's coroutine from synchronous code, with a guaranteed clean-up.

:func:`run_sync` runs one coroutine per run on the client's event loop (or awaits it, for an
asynchronous client). On any error or interrupt (``KeyboardInterrupt``) it cancels the run
and the engine's outstanding work before re-raising, within bounded time, so that a failed
or interrupted run leaves nothing on the cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["run_sync", "ABORT_TIMEOUT"]

#: seconds each step of the clean-up after an error or Ctrl-C may take
ABORT_TIMEOUT = 10.0


def run_sync(engine: Any, coro_fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run ``coro_fn(*args, **kwargs)`` on the client's loop; on any error or interrupt
    cancel the engine's outstanding work (:meth:`Engine.aclose`) before re-raising."""
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
            await asyncio.wait_for(engine.aclose(), ABORT_TIMEOUT)

        if client.status not in ("closed", "closing"):
            try:
                client.sync(_abort, callback_timeout=3 * ABORT_TIMEOUT)
            except Exception:  # noqa: BLE001 - the original error matters more
                logger.warning("clean-up after an interrupted run did not finish", exc_info=True)
        raise


async def _run_async_guarded(engine: Any, coro_fn: Callable, *args: Any, **kwargs: Any):
    try:
        return await coro_fn(*args, **kwargs)
    except BaseException:
        await engine.aclose()
        raise
