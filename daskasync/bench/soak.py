"""Soak run: a long asynchronous run (default 100,000 updates) watched from outside.

Every ``--sample`` seconds a thread records the driver's resident memory (RSS), the number
of tasks the scheduler holds and the futures the client holds, against the updates applied.
The report compares RSS after a warm-up with RSS at the end, and gives the largest task
count seen and the futures left after the run.

Run ``python -m daskasync.bench.soak`` (starts a LocalCluster) or pass ``--scheduler``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

import numpy as np
import psutil
from distributed import Client

__all__ = ["soak"]


def _scheduler_tasks(dask_scheduler: Any) -> int:
    return len(dask_scheduler.tasks)


def soak(
    client: Client,
    *,
    n_updates: int = 100_000,
    n_partitions: int = 8,
    sample_every: float = 1.0,
    warmup: float = 0.1,
    solver: str = "asaga",
) -> dict[str, Any]:
    """Run ``solver`` for ``n_updates`` updates on synthetic data and sample memory, tasks
    and futures while it runs.

    Returns a dict with the samples (``t, updates, rss_bytes, scheduler_tasks,
    client_futures``) and a summary: ``rss_growth`` (RSS at the end over RSS once
    ``warmup`` of the updates were applied, minus 1), ``max_scheduler_tasks``,
    ``futures_after`` (futures the client still holds after the run, the data's blocks
    excepted) and ``updates_per_s``.
    """
    import daskasync

    proc = psutil.Process()
    data = daskasync.PartitionedData.synthetic(
        n=20_000, d=20, n_partitions=n_partitions, seed=0, client=client
    )
    futures_before = len(client.futures)
    progress = {"updates": 0}
    samples: list[tuple[float, int, int, int, int]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.wait(sample_every):
            samples.append((
                time.monotonic() - t0, progress["updates"], proc.memory_info().rss,
                client.run_on_scheduler(_scheduler_tasks), len(client.futures),
            ))

    def note(info: Any) -> None:
        progress["updates"] = info.update

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        res = daskasync.minimize(
            data, solver=solver, max_updates=n_updates, lam=1e-3, batch_fraction=0.05,
            record_every=n_partitions * 10, callback=note,
        )
    finally:
        stop.set()
        watcher.join()
    futures_after = len(client.futures) - futures_before
    data.release()
    arr = np.array(samples, dtype=float).reshape(-1, 5)
    warm = arr[arr[:, 1] >= warmup * n_updates]
    growth = float(warm[-1, 2] / warm[0, 2] - 1.0) if len(warm) >= 2 else float("nan")
    return {
        "solver": solver,
        "n_updates": res.updates,
        "n_partitions": n_partitions,
        "wall_time_s": res.wall_time,
        "updates_per_s": res.updates / res.wall_time,
        "rss_warm_bytes": int(warm[0, 2]) if len(warm) else None,
        "rss_end_bytes": int(warm[-1, 2]) if len(warm) else None,
        "rss_growth": growth,
        "max_scheduler_tasks": int(arr[:, 3].max()) if len(arr) else 0,
        "max_client_futures": int(arr[:, 4].max()) if len(arr) else 0,
        "futures_after": futures_after,
        "objective": res.objective,
        "samples": arr.tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    from ..cli import cluster_client

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--updates", type=int, default=100_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--solver", default="asaga")
    p.add_argument("--output")
    a = p.parse_args(argv)
    with cluster_client(a.scheduler, a.workers, a.threads) as client:
        out = soak(client, n_updates=a.updates, n_partitions=a.partitions, solver=a.solver)
    mib = 1 << 20
    print(
        f"{a.solver}: {out['n_updates']} updates in {out['wall_time_s']:.0f} s "
        f"({out['updates_per_s']:.0f}/s); driver RSS {out['rss_warm_bytes'] / mib:.1f} MiB "
        f"after warm-up -> {out['rss_end_bytes'] / mib:.1f} MiB at the end "
        f"({100 * out['rss_growth']:+.1f}%); scheduler tasks <= {out['max_scheduler_tasks']}; "
        f"client futures <= {out['max_client_futures']}, {out['futures_after']} left after"
    )
    if a.output:
        with open(a.output, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
