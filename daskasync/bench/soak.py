"""Soak run: concurrent asynchronous fits sharing one client, watched for memory and tasks.

``n_fits`` threads each run ``minimize`` (ASAGA by default, a different ``lam`` each, as a
grid search does) for ``n_updates`` updates on the same data through the same
``distributed.Client``. Every ``sample_every`` seconds another thread records the driver's
resident memory (RSS, psutil) and the tasks the scheduler holds (keys in memory or being
computed, through the public ``Client.who_has`` and ``Client.processing``) against the
updates applied so far. The summary gives the RSS once ``warmup`` of the updates were
applied (start), its largest value from then on (peak) and the RSS after the fits returned
(end), and the keys other than the data's still on the scheduler after the run.

Run ``python -m daskasync.bench.soak`` (8 fits of 10,000 updates on a local cluster of 2
worker processes; ``--output`` saves the summary and the curve as JSON) or pass
``--scheduler``. By default the scheduler and the workers run in their own processes
(``distributed.SubprocessCluster``), as on a real cluster, so the RSS measured is the
driver's alone; ``--in-process-scheduler`` uses a ``LocalCluster``, whose scheduler lives in
the driver process and adds its own buffers to the driver's memory.
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import psutil
from distributed import Client

from ..api import minimize
from ..constraints import Interval, Options, argparse_type, check_all
from ..data import PartitionedData

__all__ = ["CONSTRAINTS", "scheduler_keys", "soak"]

_MIB = 1 << 20

#: what :func:`soak`'s arguments (and the script's options) may be
CONSTRAINTS: dict[str, list] = {
    "n_fits": [Interval("int", 1)],
    "n_updates": [Interval("int", 1)],
    "n_partitions": [Interval("int", 1)],
    "sample_every": [Interval("real", 0.0, closed="neither")],
    "warmup": [Interval("real", 0.0, 1.0, closed="left")],
    "solver": [Options("asaga", "asgd", "saga", "sgd")],
}


def scheduler_keys(client: Client) -> set[str]:
    """The keys the scheduler holds in memory or is computing now (public ``Client`` calls
    only: ``who_has`` and ``processing``)."""
    keys = {str(k) for k in client.who_has()}
    for on_worker in client.processing().values():
        keys.update(str(k) for k in on_worker)
    return keys


class _Watch:
    """The sampling thread: ``(t, updates, rss, scheduler keys)`` every ``every`` seconds,
    and once more when stopped."""

    def __init__(self, client: Client, every: float,
                 on_sample: Callable[[tuple[float, int, int, int]], Any] | None) -> None:
        self.client, self.every, self.on_sample = client, every, on_sample
        self.proc = psutil.Process()
        self.updates = [0]  # one counter per fit, summed when sampled
        self.samples: list[tuple[float, int, int, int]] = []
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="daskasync-soak", daemon=True)

    def sample(self) -> None:
        self.samples.append((time.monotonic() - self._t0, int(sum(self.updates)),
                             self.proc.memory_info().rss, len(scheduler_keys(self.client))))
        if self.on_sample is not None:
            self.on_sample(self.samples[-1])

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> _Watch:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _summary(samples: np.ndarray, end_rss: int, total: int, warmup: float) -> dict[str, Any]:
    """Start (first sample with ``warmup`` of the ``total`` updates applied), peak (from
    then on, the end included) and end RSS, in bytes."""
    warm = samples[samples[:, 1] >= warmup * total]
    start = int(warm[0, 2]) if len(warm) else end_rss
    peak = max([end_rss, *(int(r) for r in warm[:, 2])])
    return {"rss_start_bytes": start, "rss_peak_bytes": peak, "rss_end_bytes": end_rss,
            "rss_growth_bytes": end_rss - start,
            "rss_growth": end_rss / start - 1.0}


def soak(
    client: Client,
    *,
    n_fits: int = 1,
    n_updates: int = 10_000,
    n_partitions: int = 8,
    sample_every: float = 1.0,
    warmup: float = 0.1,
    solver: str = "asaga",
    on_sample: Callable[[tuple[float, int, int, int]], Any] | None = None,
) -> dict[str, Any]:
    """Run ``n_fits`` fits of ``solver`` at once (one thread each, all on ``client``), each
    for ``n_updates`` updates on the same synthetic data (4,000 rows, 100 features,
    ``n_partitions`` blocks), and sample the driver's memory and the scheduler's keys.

    Parameters
    ----------
    client : distributed.Client
        A synchronous client; the data are created and released on its cluster.
    n_fits : int, default 1
        Fits running at once; fit ``i`` uses ``lam = 1e-3 * 2**-i``.
    n_updates : int, default 10_000
        Updates of each fit.
    n_partitions : int, default 8
    sample_every : float, default 1.0
        Seconds between samples.
    warmup : float in [0, 1), default 0.1
        Fraction of all the updates after which the start RSS is taken.
    solver : {"asaga", "asgd", "saga", "sgd"}
    on_sample : callable, optional
        Called with each sample ``(t, updates, rss_bytes, scheduler_keys)`` as it is taken
        (from the sampling thread).

    Returns
    -------
    dict
        ``rss_start_bytes``, ``rss_peak_bytes``, ``rss_end_bytes`` (after every fit
        returned), ``rss_growth_bytes`` (end - start) and ``rss_growth`` (end / start - 1);
        ``samples`` (the curve: ``[t, updates, rss_bytes, scheduler_keys]`` rows);
        ``n_updates`` (each fit's updates, the smallest), ``updates`` (all fits),
        ``wall_time_s``, ``updates_per_s`` (all fits together), ``objectives``,
        ``max_scheduler_tasks`` (largest key count sampled) and ``futures_after`` (keys
        left on the scheduler once the runs ended and the data set was released).

    Raises
    ------
    TypeError, ValueError
        An argument outside :data:`CONSTRAINTS`.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
    ...     with Client(cluster) as client:
    ...         out = soak(client, n_fits=2, n_updates=50, n_partitions=2, sample_every=0.05)
    >>> out["n_updates"], out["futures_after"]
    (50, 0)
    """
    check_all({"n_fits": n_fits, "n_updates": n_updates, "n_partitions": n_partitions,
               "sample_every": sample_every, "warmup": warmup, "solver": solver}, CONSTRAINTS)
    before = scheduler_keys(client)
    data = PartitionedData.synthetic(n=4_000, d=100, n_partitions=n_partitions, seed=0,
                                     client=client)
    record_every = max(n_partitions, n_updates // 20)
    try:
        with _Watch(client, sample_every, on_sample) as watch:
            watch.updates = [0] * n_fits

            def fit(i: int) -> Any:
                def note(info: Any) -> None:
                    watch.updates[i] = info.update

                return minimize(data, solver=solver, max_updates=n_updates, lam=1e-3 * 2.0**-i,
                                batch_fraction=0.05, record_every=record_every, callback=note,
                                seed=i)

            t0 = time.perf_counter()
            with ThreadPoolExecutor(n_fits, thread_name_prefix="daskasync-soak-fit") as pool:
                results = list(pool.map(fit, range(n_fits)))
            wall = time.perf_counter() - t0
        gc.collect()
        end_rss = psutil.Process().memory_info().rss
    finally:
        data.release()
    # the data set goes too (with any copy made for a worker that held no block): whatever
    # is left is the runs'; releases reach the scheduler asynchronously
    deadline = time.monotonic() + 10.0
    while (leftover := scheduler_keys(client) - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    samples = np.array(watch.samples, dtype=float).reshape(-1, 4)
    total = sum(r.updates for r in results)
    return {
        "solver": solver,
        "n_fits": n_fits,
        "n_updates": min(r.updates for r in results),
        "n_partitions": n_partitions,
        "updates": total,
        "wall_time_s": wall,
        "updates_per_s": total / wall,
        "objectives": [r.objective for r in results],
        **_summary(samples, end_rss, total, warmup),
        "max_scheduler_tasks": int(samples[:, 3].max()),
        "futures_after": len(leftover),
        "samples": samples.tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    from ..clusters import cluster_client, subprocess_client

    def opt(name: str, key: str) -> Any:
        kind = int if key != "sample_every" else float
        return argparse_type(name, kind, *CONSTRAINTS[key])

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler", help="address of a running scheduler")
    p.add_argument("--workers", type=argparse_type("--workers", int, Interval("int", 1)),
                   default=2)
    p.add_argument("--threads", type=argparse_type("--threads", int, Interval("int", 1)),
                   default=1)
    p.add_argument("--fits", type=opt("--fits", "n_fits"), default=8)
    p.add_argument("--updates", type=opt("--updates", "n_updates"), default=10_000,
                   help="updates of each fit")
    p.add_argument("--partitions", type=opt("--partitions", "n_partitions"), default=8)
    p.add_argument("--sample", type=opt("--sample", "sample_every"), default=0.5)
    p.add_argument("--solver", choices=CONSTRAINTS["solver"][0].values, default="asaga")
    p.add_argument("--in-process-scheduler", action="store_true",
                   help="a LocalCluster, whose scheduler runs in this process")
    p.add_argument("--output", help="save the summary and the curve here (JSON)")
    p.add_argument("--quiet", action="store_true", help="no line per sample")
    a = p.parse_args(argv)
    if a.scheduler or a.in_process_scheduler:
        context = cluster_client(a.scheduler, a.workers, a.threads)
    else:
        context = subprocess_client(a.workers, a.threads)
    def say(sample: tuple[float, int, int, int]) -> None:
        t, updates, rss, keys = sample
        print(f"{t:7.1f} s  {updates:7d} updates  RSS {rss / _MIB:7.1f} MiB  {keys} keys",
              flush=True)

    with context as client:
        out = soak(client, n_fits=a.fits, n_updates=a.updates, n_partitions=a.partitions,
                   sample_every=a.sample, solver=a.solver, on_sample=None if a.quiet else say)
    out["scheduler"] = ("address" if a.scheduler else
                        "in the driver process" if a.in_process_scheduler else "own process")
    print(
        f"{a.fits} x {a.solver}: {out['updates']} updates in {out['wall_time_s']:.0f} s "
        f"({out['updates_per_s']:.0f}/s); driver RSS start {out['rss_start_bytes'] / _MIB:.1f}"
        f" MiB, peak {out['rss_peak_bytes'] / _MIB:.1f} MiB, end "
        f"{out['rss_end_bytes'] / _MIB:.1f} MiB ({out['rss_growth_bytes'] / _MIB:+.1f} MiB); "
        f"scheduler keys <= {out['max_scheduler_tasks']}, {out['futures_after']} left after"
    )
    if a.output:
        with open(a.output, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
