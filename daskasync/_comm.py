"""Cluster calls from the client's event loop: scatters that survive a worker dying under
them, and the scheduler's view of workers and keys through public :class:`distributed.Client`
methods."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Sequence
from concurrent.futures import CancelledError
from typing import Any

import numpy as np
from distributed import Client, Future, as_completed

__all__ = ["Landing", "agather", "agather_done", "arunning_workers", "awho_has",
           "cancel_quietly", "drain", "landing", "scatter_retrying", "who_has_live"]

#: a worker dying under a transfer (distributed's CommClosedError is an OSError), or removed
#: by the scheduler between its choice and the transfer's end (a KeyError naming it)
_TRANSIENT = (KeyError, OSError, asyncio.TimeoutError)

_PAD = np.zeros(8, dtype=np.uint8)


def _landed(_pad: np.ndarray, value: Any) -> Any:
    return value


class Landing:
    """``value`` wrapped so that its arrays arrive aligned on the worker it is scattered to.

    A message's first out-of-band buffer is read into the same allocation as the
    message's header (distributed's ``comm.tcp._add_frames_header``), at whatever offset
    the header ends: a scattered float64 array or a CSR block's ``indices`` then lands
    unaligned, and every task reading it copies it first
    (:func:`daskasync.tasks.aligned`): `16 d` bytes per task for a SAGA model version,
    the whole block for a block. The wrapper pickles a small pad ahead of
    ``value`` so that the pad takes that place and every buffer of ``value`` is read into
    an allocation of its own; the worker stores ``value`` itself, not the wrapper.
    ``tests/test_comm.py`` checks the arrival on a real cluster and fails if distributed's
    framing changes. Workers in the client's own process (``inproc://`` addresses) get the
    objects themselves, not serialized: :func:`landing` leaves those unwrapped.

    Examples
    --------
    >>> import pickle
    >>> pickle.loads(pickle.dumps(Landing([1, 2])))
    [1, 2]
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple:
        return (_landed, (_PAD, self.value))


def landing(client: Client, values: Sequence[Any]) -> list[Any]:
    """``values`` to scatter with ``client``: each wrapped in :class:`Landing`, unless the
    cluster lives in the client's process (its scheduler's address is ``inproc://``:
    scattered objects are handed over as they are, and would stay wrapped). The address
    is read from ``client.scheduler``, the connection distributed's own docs point to
    (``Client.scheduler_info``); ``tests/test_comm.py`` fails if it stops telling."""
    address = str(getattr(getattr(client, "scheduler", None), "address", "") or "")
    if address.startswith("inproc://"):
        return list(values)
    return [Landing(v) for v in values]


async def scatter_retrying(
    client: Client,
    data: Sequence[Any],
    *,
    keys: Sequence[str] | None = None,
    workers: Sequence[str] | None = None,
    broadcast: bool = False,
    attempts: int = 5,
) -> list[Future]:
    """``client.scatter(data, hash=False)`` from the client's event loop, retried when the
    chosen worker dies during the transfer: later attempts let the scheduler pick among
    the live workers. ``keys`` names the futures (a suffix ``-a<k>`` marks a retry). The
    arrays arrive aligned (:class:`Landing`).

    With ``broadcast`` and several ``workers`` (``keys`` given), each of them gets a copy
    under the same keys, sent to each directly and at once; a copy whose worker dies is
    left out (the others serve its tasks). Not ``Client.scatter(broadcast=True)``: the
    scheduler's replication behind it loops forever when a worker it copies to dies
    (dask/distributed#5704)."""
    data = landing(client, data)
    for attempt in range(attempts):
        where: dict[str, Any] = {} if workers is None else {"workers": list(workers)}
        try:
            if keys is None:
                return list(await client.scatter(data, hash=False, **where))
            named = {k if attempt == 0 else f"{k}-a{attempt}": v
                     for k, v in zip(keys, data, strict=True)}
            if broadcast and workers is not None and len(workers) > 1:
                return await _scatter_copies(client, named, list(workers))
            futs = await client.scatter(named, hash=False, **where)
            return [futs[k] for k in named]
        except _TRANSIENT:
            if attempt == attempts - 1:
                raise
            workers = None
            await asyncio.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


async def _scatter_copies(client: Client, named: dict[str, Any],
                          workers: list[str]) -> list[Future]:
    """``named`` scattered to each of ``workers`` under the same keys (the scheduler adds
    each copy as a replica); raises the first copy's error when none arrived."""
    sent = await asyncio.gather(
        *(client.scatter(named, workers=[w], hash=False) for w in workers),
        return_exceptions=True,
    )
    for out in sent:
        if isinstance(out, BaseException) and not isinstance(out, _TRANSIENT):
            raise out
    arrived = [out for out in sent if not isinstance(out, BaseException)]
    if not arrived:
        raise next(out for out in sent if isinstance(out, BaseException))
    return [arrived[0][k] for k in named]


async def awho_has(client: Client, futures: Iterable[Future]) -> dict[str, list[str]]:
    """:meth:`distributed.Client.who_has` of ``futures`` (key -> workers holding it), awaited
    on the client's event loop: a synchronous client's call blocks until the loop answers,
    so it runs in a thread while the loop goes on. A cancelled future (its data lost) is
    held by no worker and left out (``who_has`` refuses it), also when the scheduler
    cancels it during the call."""
    who = await asyncio.to_thread(who_has_live, client, list(futures))
    return {str(k): list(v) for k, v in who.items()}


def who_has_live(client: Client, futures: list[Future]) -> Any:
    """:meth:`distributed.Client.who_has` of the futures not cancelled (key -> workers
    holding it). One the scheduler cancels between the look and the call (its worker died
    with the only copy: "already forgotten") makes ``who_has`` raise
    :class:`concurrent.futures.CancelledError`; the call is then made again without it.
    ``who_has`` raises only for a future that reads as cancelled, so each failed call
    leaves at least one more out: at most ``len(futures) + 1`` calls."""
    while True:
        live = [f for f in futures if not f.cancelled()]
        if not live:
            return {}
        try:
            return client.who_has(live)
        except CancelledError:
            if all(not f.cancelled() for f in live):
                raise  # not the race: nothing new was cancelled


async def arunning_workers(client: Client) -> dict[str, int]:
    """Workers the scheduler counts as running (not paused, not closing) -> their threads,
    from :meth:`distributed.Client.scheduler_info`, awaited on the client's event loop."""
    kw = {"n_workers": -1} if "n_workers" in _INFO_PARAMS else {}
    info = await asyncio.to_thread(client.scheduler_info, **kw)
    return {addr: int(w["nthreads"]) for addr, w in info.get("workers", {}).items()
            if w.get("status", "running") == "running"}


#: ``Client.scheduler_info`` lists 5 workers by default in some releases (distributed
#: PR 9045, undone by PR 9308); ``n_workers=-1`` asks for all where the parameter exists
_INFO_PARAMS = frozenset(inspect.signature(Client.scheduler_info).parameters)


async def agather(client: Client, futures: Sequence[Future]) -> list:
    """``await client.gather(futures)``, safe to cancel while the tasks run, and quiet when a
    worker dies with a finished result.

    The gather starts once every future is done (finished, failed or cancelled), so it
    never waits: a cancelled gather that was still waiting would leave distributed's
    per-key waits to fail unobserved when the futures are cancelled next ("Task exception
    was never retrieved"). :class:`distributed.as_completed` waits quietly instead. A
    result lost with its worker is computed again by Dask (or its future is cancelled
    when its inputs are gone too); ``errors="skip"`` keeps distributed's "Couldn't gather"
    warning for that case at debug level. A failed or cancelled task raises its error."""
    futs = list(futures)
    async for _ in as_completed(futs, loop=client.loop):
        pass
    if all(f.status == "finished" for f in futs):
        values = await client.gather(futs, errors="skip")
        if len(values) == len(futs):
            return values
    # a failed or cancelled future: gather raises its error before fetching anything
    return await client.gather(futs)


async def agather_done(client: Client, futures: Sequence[Future]) -> list:
    """The results of ``futures``, which are done, in order: ``None`` for a future that
    did not finish (failed or cancelled, or whose result was lost with its worker and
    could not be computed again), without raising or logging. See :func:`agather`."""
    futs = list(futures)
    done = {f.key: f for f in futs if f.status == "finished"}
    got = await client.gather(done, errors="skip") if done else {}
    return [got.get(f.key) for f in futs]


async def cancel_quietly(client: Any, futures: Sequence[Any]) -> None:
    """Cancel the unfinished ``futures``; finished ones are left to whoever fetches their
    results (cancelling a key while its result is fetched makes the scheduler log
    "Couldn't gather keys")."""
    pending = [f for f in futures if not f.done()]
    if pending:
        await client.cancel(pending)


async def drain(ac: as_completed) -> None:
    """Take everything ``ac`` still tracks (once cancelled or finished)."""
    while not ac.is_empty():
        await ac.__anext__()
