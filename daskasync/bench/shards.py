"""Loading LIBSVM shards that never pass through the driver: the driver's memory while a set
of files larger than it loads onto a multi-process cluster, and a worker killed after
loading, whose blocks are read again from their files.

The files are written in a temporary folder by tasks on the workers (rcv1-like rows,
``--rows`` per file, about ``--nnz`` nonzeros each); then ``PartitionedData.from_libsvm``
loads them onto a cluster of ``dask scheduler`` / ``dask worker`` processes started by this
script, while a thread samples the driver's resident memory every 20 ms. One worker is then
killed (SIGKILL) and a replacement started; the blocks it held are recomputed from their
files, checked equal to what was loaded.

Run ``python -m daskasync.bench.shards`` (defaults: 20 files, about 2.4 GB);
``--output`` saves the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from distributed import Client

from ..constraints import Interval, argparse_type
from ..data import PartitionedData

__all__ = ["load_and_kill"]


def _write_shard(path: str, rows: int, d: int, nnz: int, seed: int) -> int:
    """Worker task: write ``rows`` rcv1-like rows to ``path``; returns the file's bytes."""
    from sklearn.datasets import dump_svmlight_file

    from ..datasets import synthetic_rows

    X, y = synthetic_rows("rcv1", seed * rows, (seed + 1) * rows, d, 7, density=nnz / d)
    dump_svmlight_file(X, y, path, zero_based=False)
    return os.path.getsize(path)


def _checksum(block: Any) -> float:
    X, y = block
    return float(np.asarray(X.data, dtype=np.float64).sum() + X.indices.sum() + y.sum())


class _Peak(threading.Thread):
    """Samples this process's resident memory until stopped; ``peak`` in bytes."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self._stop_event = psutil.Process(), 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


class _Cluster:
    """A ``dask scheduler`` and ``dask worker`` processes (no nanny) on 127.0.0.1."""

    def __init__(self, workers: int, log: Path) -> None:
        self.log, self.procs, self.bin = log, {}, Path(sys.executable).parent / "dask"
        # the scheduler picks its port and writes its address to a file (a port picked
        # here first could be taken by another process before the scheduler binds it)
        info = log / "scheduler.json"
        info.unlink(missing_ok=True)
        self.scheduler_process = self._spawn(
            "scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0",
                          "--scheduler-file", str(info), "--dashboard-address", ":0"])
        self.address = self._address(info)
        for i in range(workers):
            self.add(f"w{i}")

    def _address(self, info: Path, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while not info.exists() or not info.read_text().strip().endswith("}"):
            if self.scheduler_process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the scheduler did not start: see {self.log}/scheduler.log")
            time.sleep(0.05)
        return json.loads(info.read_text())["address"]

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen([str(self.bin), *args], stdout=open(self.log / f"{name}.log", "w"),
                                stderr=subprocess.STDOUT)

    def add(self, name: str) -> None:
        self.procs[name] = self._spawn(name, ["worker", self.address, "--nthreads", "1",
                                              "--no-nanny", "--name", name, "--host",
                                              "127.0.0.1", "--no-dashboard"])

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def close(self) -> None:
        for p in [*self.procs.values(), self.scheduler_process]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.procs.values(), self.scheduler_process]:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def load_and_kill(folder: Path, *, files: int = 20, rows: int = 120_000, d: int = 100_000,
                  nnz: int = 60, workers: int = 2) -> dict[str, Any]:
    """Write the shards, load them, kill a worker, re-read its blocks; the numbers."""
    cluster = _Cluster(workers, folder)
    try:
        with Client(cluster.address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
            t0 = time.perf_counter()
            sizes = client.gather(client.map(
                _write_shard, [str(folder / f"part-{i:03d}.svm") for i in range(files)],
                [rows] * files, [d] * files, [nnz] * files, list(range(files)), pure=False))
            written = time.perf_counter() - t0
            rss0 = psutil.Process().memory_info().rss
            peak = _Peak()
            peak.start()
            t0 = time.perf_counter()
            data = PartitionedData.from_libsvm(str(folder / "part-*.svm"), client=client)
            loaded = time.perf_counter() - t0
            peak_rss = peak.stop()
            out = {"files": files, "total_bytes": int(sum(sizes)), "rows": data.n, "d": data.d,
                   "nnz": data.nnz, "write_seconds": written, "load_seconds": loaded,
                   "driver_rss_before_mb": rss0 / 2**20, "driver_rss_peak_mb": peak_rss / 2**20}
            out.update(_kill_and_reread(client, cluster, data))
            data.release()
    finally:
        cluster.close()
    return out


def _kill_and_reread(client: Client, cluster: _Cluster, data: PartitionedData) -> dict:
    """SIGKILL the worker holding block 0, start a replacement, re-read what it held."""
    before = client.gather(client.map(_checksum, data.parts, pure=False))
    where = data.locations()
    names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
    victim = where[0][0]
    lost = [p for p, holders in where.items() if set(holders) == {victim}]
    cluster.kill(names[victim])
    cluster.add("replacement")
    t0 = time.perf_counter()
    after = client.gather(client.map(_checksum, data.parts, pure=False))
    return {"killed_worker": names[victim], "blocks_lost": len(lost),
            "reread_seconds": time.perf_counter() - t0,
            "blocks_equal_after": bool(np.allclose(before, after, rtol=0, atol=0)),
            "lost_for_good": data.lost()}


def main(argv: list[str] | None = None) -> int:
    positive = Interval("int", 1)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=argparse_type("--files", int, positive), default=20,
                   help="shard files (default 20)")
    p.add_argument("--rows", type=argparse_type("--rows", int, positive), default=120_000,
                   help="rows per file (default 120000)")
    p.add_argument("--d", type=argparse_type("--d", int, positive), default=100_000,
                   help="features (default 100000)")
    p.add_argument("--nnz", type=argparse_type("--nnz", int, positive), default=60,
                   help="nonzeros per row (default 60)")
    p.add_argument("--workers", type=argparse_type("--workers", int, positive), default=2,
                   help="worker processes (default 2)")
    p.add_argument("--output", help="save the numbers as JSON here")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="daskasync-shards-") as tmp:
        out = load_and_kill(Path(tmp), files=a.files, rows=a.rows, d=a.d, nnz=a.nnz,
                            workers=a.workers)
    print(json.dumps(out, indent=1))
    if a.output:
        with open(a.output, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
