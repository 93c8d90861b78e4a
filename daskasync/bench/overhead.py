"""Driver overhead: the engine's asynchronous loop with a near-empty gradient against loops
that only resubmit tasks, on the same cluster, in the same run.

The like-for-like loop (:func:`like_for_like_loop`) is the smallest correct asynchronous
SGD driver: what the engine's loop must do, without its bookkeeping. It runs on the
client's event loop (an ``async def`` run with ``client.sync``), keeps one task in flight
per partition, and resubmits the partitions whose results finished together in one
``Client.map`` under unique readable keys. Its tasks are the engine's (``run_task`` with the
ASGD gradient kernel and the same arguments, on the partitions' persisted blocks of the same
:class:`~daskasync.data.PartitionedData`), each message carries a copy of the newest model,
and each result is fetched and applied (its partition and clock at submission are looked
up, its staleness counted, the SGD step taken). ``driver_ratio`` is the engine's rate over
that loop's: what the engine's own bookkeeping (tickets, barrier, model versions, monitor)
costs per update. The older bare loops (a thread iterating ``as_completed``, one ``submit``
per finished task, tasks that take no data) are kept as extra columns.

Run ``python -m daskasync.bench.overhead`` (starts a LocalCluster) or pass ``--scheduler``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import uuid
from typing import Any

import numpy as np
from distributed import Client, as_completed

from ..api import minimize
from ..constraints import Interval, argparse_type, check_all
from ..data import PartitionedData
from ..losses import get_loss
from ..penalties import make_penalty
from ..problem import Problem
from ..solvers.asgd import ASGD
from ..solvers.sgd import sgd_step
from ..tasks import grad_kernel, run_task

__all__ = ["CONSTRAINTS", "like_for_like_loop", "measure_overhead"]

#: what :func:`measure_overhead`'s arguments (and the script's options) may be
CONSTRAINTS: dict[str, list] = {
    "n_updates": [Interval("int", 1)],
    "n_partitions": [Interval("int", 1)],
    "repeats": [Interval("int", 1)],
}


def _noop(i: int) -> np.ndarray:
    return np.zeros(4)


def _bare_loop(client: Client, n_tasks: int, in_flight: int, with_results: bool) -> float:
    """Tasks per second of a loop that resubmits one no-op task per finished task
    (``with_results``: fetching each result, as any optimizer must)."""
    futs = [client.submit(_noop, i, pure=False) for i in range(in_flight)]
    ac = as_completed(futs, with_results=with_results)
    in_flight_now = set(futs)
    done = 0
    t0 = time.perf_counter()
    for item in ac:
        in_flight_now.discard(item[0] if with_results else item)
        done += 1
        if done >= n_tasks:
            break
        fut = client.submit(_noop, done, pure=False)
        in_flight_now.add(fut)
        ac.add(fut)
    rate = done / (time.perf_counter() - t0)
    ac.clear()
    client.cancel(list(in_flight_now))
    return rate


def _like_problem(data: PartitionedData) -> Problem:
    """The problem :func:`minimize` makes of ``data`` by default (logistic loss, L2 with
    ``lam = 1 / n``): the like-for-like loop applies the same arithmetic per result."""
    return Problem(get_loss("logistic"), make_penalty("l2", 1.0 / data.n), False,
                   int(data.n), int(data.d))


async def _alike_for_like(client: Client, data: PartitionedData, n_tasks: int) -> float:
    """Tasks per second of the like-for-like loop (see :func:`like_for_like_loop`)."""
    parts, problem = list(data.parts), _like_problem(data)
    kwargs = {"fraction": ASGD.default_fraction, **problem.kernel_kwargs}
    run, n_keys = uuid.uuid4().hex[:8], itertools.count()
    theta = np.zeros(problem.shape)
    clock, submitted, stale_max = 0, [0] * len(parts), 0
    flight: dict[Any, tuple[int, int]] = {}  # future -> (partition, clock at submission)
    ac = as_completed([], loop=client.loop, with_results=True)

    def launch(ps: list[int]) -> None:
        model = theta.copy()  # the newest version, one copy per message
        index = [submitted[p] for p in ps]
        for p in ps:
            submitted[p] += 1
        futs = client.map(
            run_task, [grad_kernel] * len(ps), [parts[p] for p in ps], [model] * len(ps), ps,
            index, [kwargs] * len(ps), seed=0, straggler=None, avg_task_time=0.0,
            key=[f"overhead-grad-p{p}-{run}-{next(n_keys)}" for p in ps], pure=False,
            batch_size=None,
        )
        for fut, p in zip(futs, ps, strict=True):
            flight[fut] = (p, clock)
        ac.update(futs)

    launch(list(range(len(parts))))
    t0 = time.perf_counter()
    try:
        while clock < n_tasks:
            batch = [await ac.__anext__(), *ac.next_batch(block=False)]
            free = []
            for fut, ((grad_sum, count), _meta) in batch:
                p, submitted_at = flight.pop(fut)
                stale_max = max(stale_max, clock - submitted_at)
                sgd_step(theta, grad_sum, count, 0.1, problem)
                clock += 1
                free.append(p)
            if clock < n_tasks:
                launch(free)
        return clock / (time.perf_counter() - t0)
    finally:
        left = [f for f in flight if not f.done()]
        ac.clear()
        if left:
            await client.cancel(left)


def like_for_like_loop(client: Client, data: PartitionedData, n_tasks: int) -> float:
    """Tasks per second of the smallest correct asynchronous SGD loop on ``data``: one task
    per partition in flight, on the client's event loop; the partitions whose results
    finished together get the newest model in one ``Client.map``; the tasks are the
    engine's ASGD tasks (same function, kernel and arguments) on the partitions' blocks,
    and every result is fetched and applied. At least ``n_tasks`` results are counted.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
    ...     with Client(cluster) as client:
    ...         data = PartitionedData.from_arrays(np.ones((8, 2)), np.ones(8),
    ...                                            n_partitions=2, client=client)
    ...         rate = like_for_like_loop(client, data, 20)
    ...         data.release()
    >>> rate > 0
    True
    """
    check_all({"n_updates": n_tasks}, CONSTRAINTS)
    return float(client.sync(_alike_for_like, client, data, int(n_tasks)))


def measure_overhead(
    client: Client, *, n_updates: int = 2000, n_partitions: int = 8, repeats: int = 3
) -> dict[str, Any]:
    """Updates per second of the engine's ASGD loop on a near-empty gradient (8 rows per
    partition, 4 features), and tasks per second of the like-for-like loop on the same
    blocks (:func:`like_for_like_loop`) and of the bare ``as_completed`` loops, all keeping
    ``n_partitions`` tasks in flight, interleaved ``repeats`` times; medians are reported.

    Returns
    -------
    dict
        ``driver_updates_per_s`` (the engine), ``like_for_like_per_s``, ``driver_ratio``
        (engine over like-for-like), ``raw_as_completed_per_s`` and
        ``raw_as_completed_no_fetch_per_s`` (bare loops with and without fetching
        results), ``ratio`` and ``ratio_no_fetch`` (engine over those), ``samples`` (every
        repeat), ``n_updates``, ``n_partitions``.
    """
    check_all({"n_updates": n_updates, "n_partitions": n_partitions, "repeats": repeats},
              CONSTRAINTS)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8 * n_partitions, 4))
    y = np.sign(X[:, 0])
    data = PartitionedData.from_arrays(X, y, n_partitions=n_partitions, client=client)
    bare, bare_res, like, engine = [], [], [], []

    def engine_rate(updates: int) -> float:
        res = minimize(
            data, solver="asgd", max_updates=updates, step_size=0.1,
            record_every=10**9, record_objective=False,
        )
        return res.updates / res.wall_time

    try:
        _bare_loop(client, 200, n_partitions, True)  # warm up, each loop alike
        like_for_like_loop(client, data, 200)
        engine_rate(200)
        for _ in range(repeats):
            bare.append(_bare_loop(client, n_updates, n_partitions, False))
            bare_res.append(_bare_loop(client, n_updates, n_partitions, True))
            like.append(like_for_like_loop(client, data, n_updates))
            engine.append(engine_rate(n_updates))
    finally:
        data.release()
    med = float(np.median(engine))
    med_like = float(np.median(like))
    return {
        "driver_updates_per_s": med,
        "like_for_like_per_s": med_like,
        "driver_ratio": med / med_like,
        "raw_as_completed_per_s": float(np.median(bare_res)),
        "raw_as_completed_no_fetch_per_s": float(np.median(bare)),
        "ratio": med / float(np.median(bare_res)),
        "ratio_no_fetch": med / float(np.median(bare)),
        "samples": {"engine": engine, "like_for_like": like, "bare_with_results": bare_res,
                    "bare_no_fetch": bare},
        "n_updates": n_updates,
        "n_partitions": n_partitions,
    }


def main(argv: list[str] | None = None) -> int:
    from ..clusters import cluster_client

    positive = [Interval("int", 1)]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler")
    p.add_argument("--workers", type=argparse_type("--workers", int, *positive), default=2)
    p.add_argument("--threads", type=argparse_type("--threads", int, *positive), default=1)
    p.add_argument("--updates", default=2000,
                   type=argparse_type("--updates", int, *CONSTRAINTS["n_updates"]))
    p.add_argument("--partitions", default=8,
                   type=argparse_type("--partitions", int, *CONSTRAINTS["n_partitions"]))
    p.add_argument("--repeats", default=3,
                   type=argparse_type("--repeats", int, *CONSTRAINTS["repeats"]))
    p.add_argument("--output")
    a = p.parse_args(argv)
    with cluster_client(a.scheduler, a.workers, a.threads) as client:
        out = measure_overhead(
            client, n_updates=a.updates, n_partitions=a.partitions, repeats=a.repeats
        )
    print(
        f"engine {out['driver_updates_per_s']:.0f} updates/s; like-for-like loop (event "
        f"loop, batched, on the blocks) {out['like_for_like_per_s']:.0f}/s (driver_ratio "
        f"{out['driver_ratio']:.2f}); bare as_completed loop with results "
        f"{out['raw_as_completed_per_s']:.0f}/s (ratio {out['ratio']:.2f}); without "
        f"fetching results {out['raw_as_completed_no_fetch_per_s']:.0f}/s "
        f"(ratio {out['ratio_no_fetch']:.2f})"
    )
    if a.output:
        with open(a.output, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
