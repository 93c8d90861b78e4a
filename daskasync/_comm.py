"""Cluster calls that must survive a worker dying under them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from distributed import Client, Future

__all__ = ["scatter_retrying"]

#: a worker dying under a transfer (distributed's CommClosedError is an OSError), or removed
#: by the scheduler between its choice and the transfer's end (a KeyError naming it)
_TRANSIENT = (KeyError, OSError, asyncio.TimeoutError)


async def scatter_retrying(
    client: Client,
    data: Sequence[Any],
    *,
    keys: Sequence[str] | None = None,
    workers: Sequence[str] | None = None,
    attempts: int = 5,
) -> list[Future]:
    """``client.scatter(data, hash=False)`` from the client's event loop, retried when the
    chosen worker dies during the transfer: later attempts let the scheduler pick among
    the live workers. ``keys`` names the futures (a suffix ``-a<k>`` marks a retry)."""
    for attempt in range(attempts):
        where = {} if workers is None else {"workers": list(workers)}
        try:
            if keys is None:
                return list(await client.scatter(list(data), hash=False, **where))
            named = {k if attempt == 0 else f"{k}-a{attempt}": v
                     for k, v in zip(keys, data, strict=True)}
            futs = await client.scatter(named, hash=False, **where)
            return [futs[k] for k in named]
        except _TRANSIENT:
            if attempt == attempts - 1:
                raise
            workers = None
            await asyncio.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")
