"""Driver cost per update against the number of samples ``n``.

The asynchronous SAGA driver keeps one history scalar per sample, but it must touch only the
rows a task sampled: its work per update is O(batch + d), not O(n). This benchmark runs ASAGA
on sparse rcv1-like synthetic data with ``n`` = 1e5, 1e6, 1e7 rows (by default), the same
number of rows per task (``--batch`` rows: the batch fraction shrinks as ``n`` grows), and
measures

* ``driver_cpu_us_per_update``: CPU time of the driver process per applied update. With the
  default cluster (scheduler and workers in their own processes) this is the driver's own
  work: bookkeeping, the update, the history, and talking to the scheduler;
* ``updates_per_s``: the update rate, which also includes the tasks and the scheduler.

Run ``python -m daskasync.bench.scaling`` (``--scheduler`` for an existing cluster).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import psutil
from distributed import Client

from ..api import minimize
from ..data import PartitionedData

__all__ = ["driver_cost_vs_n"]


def driver_cost_vs_n(
    client: Client,
    *,
    ns: Sequence[int] = (100_000, 1_000_000, 10_000_000),
    d: int = 1000,
    n_partitions: int = 8,
    batch_rows: int = 64,
    n_updates: int = 3000,
    solver: str = "asaga",
) -> list[dict[str, Any]]:
    """For each ``n``: driver CPU microseconds per update and updates per second of
    ``solver`` with ``batch_rows`` rows per task (after a warm-up of ``n_updates / 5``)."""
    proc = psutil.Process()
    rows = []
    for n in ns:
        t0 = time.perf_counter()
        data = PartitionedData.synthetic(
            "rcv1", n=int(n), d=d, n_partitions=n_partitions, seed=0, client=client,
            density=0.005,
        )
        made = time.perf_counter() - t0
        fraction = min(1.0, batch_rows * n_partitions / int(n))
        kw = dict(solver=solver, lam=1.0 / int(n), batch_fraction=fraction, record_every=10**9,
                  record_objective=False)
        try:
            minimize(data, max_updates=max(1, n_updates // 5), **kw)  # warm-up
            cpu0 = proc.cpu_times()
            res = minimize(data, max_updates=n_updates, **kw)
            cpu1 = proc.cpu_times()
        finally:
            data.release()
        cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        rows.append({
            "n": int(n), "d": d, "n_partitions": n_partitions, "batch_rows": batch_rows,
            "batch_fraction": fraction, "updates": res.updates,
            "driver_cpu_us_per_update": 1e6 * cpu / res.updates,
            "updates_per_s": res.updates / res.wall_time,
            "history_bytes": int(res.state.history.nbytes) if res.state is not None
            and res.state.history is not None else None,
            "data_seconds": made,
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    from ..clusters import cluster_client, subprocess_client

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ns", default="100000,1000000,10000000")
    p.add_argument("--d", type=int, default=1000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--batch", type=int, default=64, help="rows per task")
    p.add_argument("--updates", type=int, default=3000)
    p.add_argument("--solver", default="asaga")
    p.add_argument("--output")
    a = p.parse_args(argv)
    context = (cluster_client(a.scheduler, a.workers, a.threads) if a.scheduler
               else subprocess_client(a.workers, a.threads))
    with context as client:
        rows = driver_cost_vs_n(
            client, ns=[int(float(x)) for x in a.ns.split(",")], d=a.d,
            n_partitions=a.partitions, batch_rows=a.batch, n_updates=a.updates,
            solver=a.solver,
        )
    print("| n | driver CPU per update (us) | updates/s | history (MB) |")
    print("|---|---|---|---|")
    for r in rows:
        hist = "—" if r["history_bytes"] is None else f"{r['history_bytes'] / 1e6:.1f}"
        print(f"| {r['n']:,} | {r['driver_cpu_us_per_update']:.0f} | "
              f"{r['updates_per_s']:.0f} | {hist} |")
    if a.output:
        with open(a.output, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
