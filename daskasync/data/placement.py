"""Placing blocks on workers that may die at any moment, and copying blocks between
workers.

:func:`aplace` scatters driver-side blocks to the workers it chooses among those running
*now*, and places again, on the workers running then, any group whose worker died or left
before, during or right after the transfer (the scheduler then answers with a ``KeyError``
naming the worker, the transfer with a closed comm, a paused worker with a timeout).
:func:`acopy` gives a worker its own copy of a block under a new key, computed from the block
on the worker that holds it, so that distributed's Active Memory Manager, which trims extra
replicas of one key, keeps both.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from distributed import Client, Future, as_completed

from .._comm import arunning_workers, awho_has, landing

logger = logging.getLogger(__name__)

__all__ = ["aplace", "acopy", "round_robin", "least_loaded", "PlacementError"]

#: what a transfer raises when its worker died, left or stopped answering under it: the
#: scheduler's ``KeyError`` (the worker's address was no longer in its table), a closed
#: comm (distributed's ``CommClosedError`` is an ``OSError``), a connection or scheduler
#: timeout (``TimeoutError`` is an ``OSError`` too)
WORKER_GONE = (KeyError, OSError, asyncio.TimeoutError)

#: attempts of :func:`aplace`, and the pause before attempt ``k`` (``BACKOFF * k`` s)
ATTEMPTS = 8
BACKOFF = 0.25

#: ``choose(indices, ncores) -> {worker: indices}``: where blocks go, among running workers
Chooser = Callable[[Sequence[int], Mapping[str, int]], dict[str, list[int]]]


class PlacementError(RuntimeError):
    """Blocks could not be placed: no worker is left, or workers kept leaving."""


def round_robin(indices: Sequence[int], ncores: Mapping[str, int]) -> dict[str, list[int]]:
    """Deal ``indices`` to the workers in turn, a worker once per thread (sorted addresses,
    threads interleaved: ``a b a`` for workers ``a`` of 2 threads and ``b`` of 1)."""
    workers = sorted(ncores)
    most = max(ncores.values())
    slots = [w for t in range(most) for w in workers if ncores[w] > t]
    plan: dict[str, list[int]] = {}
    for k, i in enumerate(indices):
        plan.setdefault(slots[k % len(slots)], []).append(i)
    return plan


def least_loaded(load: Mapping[str, float]) -> Chooser:
    """A chooser putting each block, one after the other, on the worker with the least
    load per thread (ties broken by address); ``load`` is the blocks each worker holds
    already (workers absent from it hold none)."""

    def choose(indices: Sequence[int], ncores: Mapping[str, int]) -> dict[str, list[int]]:
        per_thread = {w: load.get(w, 0.0) / max(1, t) for w, t in ncores.items()}
        plan: dict[str, list[int]] = {}
        for i in indices:
            w = min(per_thread, key=lambda w: (per_thread[w], w))
            per_thread[w] += 1.0 / max(1, ncores[w])
            plan.setdefault(w, []).append(i)
        return plan

    return choose


async def aplace(
    client: Client,
    indices: Sequence[int],
    make: Callable[[int], Any],
    choose: Chooser,
    *,
    attempts: int = ATTEMPTS,
) -> dict[int, Future]:
    """Scatter ``make(i)`` for each ``i`` of ``indices`` (one message per worker), on the
    workers ``choose`` picks among those running; await it on the client's event loop.

    Each attempt reads the running workers again. A group whose worker died or left before,
    during or just after its transfer (its block is not on the worker when the scheduler is
    asked) goes to the next attempt; an attempt without running workers waits for one (a
    nanny restarting its worker).

    Returns
    -------
    dict of int to distributed.Future
        Every index, with the future of its block.

    Raises
    ------
    PlacementError
        After ``attempts`` attempts some block is still not placed: no worker is running,
        or the workers kept leaving. Blocks placed so far are released.
    """
    placed: dict[int, Future] = {}
    todo = list(indices)
    error: BaseException | None = None
    try:
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(BACKOFF * attempt)
            ncores = await arunning_workers(client)
            if not ncores:
                continue
            for worker, idx in choose(todo, ncores).items():
                blocks = landing(client, [make(i) for i in idx])  # arrive aligned
                try:
                    futs = await client.scatter(blocks, workers=[worker], hash=False)
                except WORKER_GONE as err:  # that worker is gone: the next attempt
                    logger.info("blocks %s: worker %s is gone (%r); placing them again",
                                idx, worker, err)
                    error = err
                    continue
                placed.update(zip(idx, futs, strict=True))
            error = await _drop_unheld(client, placed) or error
            todo = [i for i in indices if i not in placed]
            if not todo:
                return placed
    except BaseException:
        for f in placed.values():
            f.release()
        raise
    for f in placed.values():
        f.release()
    what = "no worker is running" if error is None else f"workers kept leaving ({error!r})"
    raise PlacementError(
        f"could not place blocks {todo} on the cluster after {attempts} attempts: {what}"
    ) from error


async def _drop_unheld(client: Client, placed: dict[int, Future]) -> BaseException | None:
    """Forget the blocks of ``placed`` that no running worker holds (their worker died just
    after the transfer), so that they are placed again; returns an error if any."""
    if not placed:
        return None
    who_has = await awho_has(client, placed.values())
    running = await arunning_workers(client)
    gone = [i for i, f in placed.items()
            if f.status in ("cancelled", "lost")
            or not set(who_has.get(f.key, ())) & set(running)]
    for i in gone:
        placed.pop(i).release()
    if not gone:
        return None
    logger.info("blocks %s were lost with their worker right after placement; placing "
                "them again", gone)
    return KeyError(f"blocks {gone} lost with their worker")


def _same(block: Any) -> Any:
    """Worker task: its argument (a block copied under a new key)."""
    return block


async def acopy(
    client: Client, sources: Mapping[int, Future], holders: Mapping[int, str], worker: str,
    *, name: str = "data",
) -> dict[int, Future]:
    """Copies of the blocks ``sources`` (partition -> future) on ``worker``, under new keys;
    await it on the client's event loop.

    Each copy is two tasks: one on the block's holder (``holders``) returns the block
    itself (no new memory there), and one on ``worker`` returns that (fetched from the
    holder). The first is released once the second holds the block, so no key has two
    replicas for the memory manager to trim, and the source block stays where it was.
    Both tasks may run elsewhere if their worker is gone (loose restrictions): a copy is
    then wherever the scheduler computed it.

    Returns
    -------
    dict of int to distributed.Future
        The copies that finished on a live worker (those that failed are released).
    """
    token = uuid.uuid4().hex[:12]
    copies: dict[int, Future] = {}
    for p, src in sources.items():
        stage = client.submit(_same, src, key=f"daskasync-copy-{name}-{token}-p{p}",
                              workers=[holders[p]], allow_other_workers=True, pure=False)
        copies[p] = client.submit(_same, stage, key=f"daskasync-data-{name}-{token}-p{p}",
                                  workers=[worker], allow_other_workers=True, pure=False)
        stage.release()  # the scheduler keeps it until the copy holds the block
    if not copies:
        return {}
    async for fut in as_completed(list(copies.values()), loop=client.loop):
        if fut.status != "finished":
            p = next(q for q, f in copies.items() if f is fut)
            copies.pop(p).release()
    return copies
