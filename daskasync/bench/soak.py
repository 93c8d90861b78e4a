"""Soak run: a long asynchronous run (default 100,000 updates) watched from outside.

Every ``--sample`` seconds a thread records the driver's resident memory (RSS), the number
of tasks the scheduler holds and the futures the client holds, against the updates applied.
The report compares RSS after a warm-up with RSS at the end, and gives the largest task
count seen and the futures left after the run.

Run ``python -m daskasync.bench.soak`` or pass ``--scheduler``. By default the scheduler and
workers run in their own processes (``distributed.deploy.subprocess.SubprocessCluster``), as on
a real cluster, so the driver's RSS is the driver's alone; ``--in-process-scheduler`` uses a
``LocalCluster``, whose scheduler lives in the driver process and adds its own bookkeeping
(bounded logs, message buffers) to the driver's memory.
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

from ..api import minimize
from ..data import PartitionedData

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
    proc = psutil.Process()
    data = PartitionedData.synthetic(
        n=20_000, d=20, n_partitions=n_partitions, seed=0, client=client
    )
    data_keys = {f.key for f in data.parts}
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
        res = minimize(
            data, solver=solver, max_updates=n_updates, lam=1e-3, batch_fraction=0.05,
            record_every=n_partitions * 10, callback=note,
        )
    finally:
        stop.set()
        watcher.join()
    deadline = time.monotonic() + 5.0  # releases reach the client's table asynchronously
    while True:
        leftover = [k for k in list(client.futures) if k not in data_keys]
        if not leftover or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    futures_after = len(leftover)
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
    from ..clusters import cluster_client, subprocess_client

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--updates", type=int, default=100_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--solver", default="asaga")
    p.add_argument("--in-process-scheduler", action="store_true")
    p.add_argument("--output")
    a = p.parse_args(argv)
    if a.scheduler or a.in_process_scheduler:
        context = cluster_client(a.scheduler, a.workers, a.threads)
    else:
        context = subprocess_client(a.workers, a.threads)
    with context as client:
        out = soak(client, n_updates=a.updates, n_partitions=a.partitions, solver=a.solver)
    out["scheduler"] = ("address" if a.scheduler else
                        "in the driver process" if a.in_process_scheduler else "own process")
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
