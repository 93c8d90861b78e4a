"""Driver overhead: the engine's asynchronous loop with a near-empty gradient against bare
``as_completed`` resubmission loops on the same cluster, in the same run.

Run ``python -m daskasync.bench.overhead`` (starts a LocalCluster) or pass ``--scheduler``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from distributed import Client, as_completed

from ..api import minimize
from ..data import PartitionedData

__all__ = ["measure_overhead"]


def _noop(i: int) -> np.ndarray:
    return np.zeros(4)


def _bare_loop(client: Client, n_tasks: int, in_flight: int, with_results: bool) -> float:
    """Tasks per second of a loop that resubmits one no-op task per finished task
    (``with_results``: fetching each result, as any optimizer must)."""
    futs = [client.submit(_noop, i, pure=False) for i in range(in_flight)]
    ac = as_completed(futs, with_results=with_results)
    done = 0
    t0 = time.perf_counter()
    for _item in ac:
        done += 1
        if done >= n_tasks:
            break
        ac.add(client.submit(_noop, done, pure=False))
    rate = done / (time.perf_counter() - t0)
    client.cancel(list(ac.futures))
    ac.clear()
    return rate


def measure_overhead(
    client: Client, *, n_updates: int = 2000, n_partitions: int = 8, repeats: int = 3
) -> dict[str, Any]:
    """Updates per second of the engine's ASGD loop on a near-empty gradient (8 rows per
    partition, 4 features) and tasks per second of bare ``as_completed`` loops keeping the
    same number of tasks in flight, interleaved ``repeats`` times; medians are reported."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8 * n_partitions, 4))
    y = np.sign(X[:, 0])
    data = PartitionedData.from_arrays(X, y, n_partitions=n_partitions, client=client)
    _bare_loop(client, 200, n_partitions, True)  # warm up
    bare, bare_res, engine = [], [], []
    try:
        for _ in range(repeats):
            bare.append(_bare_loop(client, n_updates, n_partitions, False))
            bare_res.append(_bare_loop(client, n_updates, n_partitions, True))
            res = minimize(
                data, solver="asgd", max_updates=n_updates, step_size=0.1,
                record_every=10**9, record_objective=False,
            )
            engine.append(res.updates / res.wall_time)
    finally:
        data.release()
    med = float(np.median(engine))
    return {
        "driver_updates_per_s": med,
        "raw_as_completed_per_s": float(np.median(bare_res)),
        "raw_as_completed_no_fetch_per_s": float(np.median(bare)),
        "ratio": med / float(np.median(bare_res)),
        "ratio_no_fetch": med / float(np.median(bare)),
        "samples": {"engine": engine, "bare_with_results": bare_res, "bare_no_fetch": bare},
        "n_updates": n_updates,
        "n_partitions": n_partitions,
    }


def main(argv: list[str] | None = None) -> int:
    from ..clusters import cluster_client

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--updates", type=int, default=2000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output")
    a = p.parse_args(argv)
    with cluster_client(a.scheduler, a.workers, a.threads) as client:
        out = measure_overhead(
            client, n_updates=a.updates, n_partitions=a.partitions, repeats=a.repeats
        )
    print(
        f"engine {out['driver_updates_per_s']:.0f} updates/s; bare as_completed loop with "
        f"results {out['raw_as_completed_per_s']:.0f}/s (ratio {out['ratio']:.2f}); without "
        f"fetching results {out['raw_as_completed_no_fetch_per_s']:.0f}/s "
        f"(ratio {out['ratio_no_fetch']:.2f})"
    )
    if a.output:
        with open(a.output, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
