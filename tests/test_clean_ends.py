"""Runs that end or are cancelled with tasks in flight log nothing at WARNING or above, on
the client, the scheduler and the workers (`dask scheduler` / `dask worker` subprocesses,
whose logs are read from their files)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ProcessCluster, assert_no_tasks
from distributed import Client

import daskasync

pytestmark = pytest.mark.slow

#: a log line of distributed's default format at WARNING level or above
ALARMING = re.compile(r" - (WARNING|ERROR|CRITICAL) - ")


def _sizes(pc: ProcessCluster) -> dict[Path, int]:
    return {p: p.stat().st_size for p in pc.log_dir.glob("*.log")}


def _alarming_since(pc: ProcessCluster, sizes: dict[Path, int]) -> list[str]:
    """Lines at WARNING or above the scheduler and workers logged since ``sizes``."""
    time.sleep(1.0)  # let the last messages reach the files
    out = []
    for path in sorted(pc.log_dir.glob("*.log")):
        with open(path, errors="replace") as f:
            f.seek(sizes.get(path, 0))
            out += [f"{path.name}: {line.rstrip()}" for line in f if ALARMING.search(line)]
    return out


class Stop(Exception):
    """Raised by a callback to end a run with an error while tasks run."""


def _raise_at(update: int):
    def callback(info) -> None:
        if info.update >= update:
            raise Stop(info.update)

    return callback


def test_runs_ending_with_tasks_in_flight_log_nothing_alarming(process_cluster, client_log):
    pc = process_cluster(2)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 20))
    y = np.where(X @ rng.standard_normal(20) > 0, 1.0, -1.0)
    with Client(pc.address) as client:
        data = daskasync.PartitionedData.from_arrays(X, y, n_partitions=8)
        sizes = _sizes(pc)
        kw = dict(lam=1e-3, record_every=50, seed=0)
        ends = {}
        for k in range(3):  # each end of a time budget leaves ~P tasks in flight
            res = daskasync.minimize(data, solver="asaga", time_budget=2.0 + 0.3 * k, **kw)
            ends[f"asaga-{k}"] = res.stop_reason
        for solver, updates in (("asgd", 300), ("albfgs", 20)):
            res = daskasync.minimize(data, solver=solver, max_updates=updates, **kw)
            ends[solver] = res.stop_reason
        res = daskasync.minimize(data, solver="saga", time_budget=1.5, **kw)
        ends["saga"] = res.stop_reason
        for solver in ("asaga", "saga"):  # an error in the middle of a run
            with pytest.raises(Stop):
                daskasync.minimize(data, solver=solver, max_epochs=500,
                                   callback=_raise_at(40), **kw)
        def slow_sum(block, w, partition, **kw):  # nested: pickled by value
            time.sleep(0.05 * (partition % 3))
            return float(block[0].sum())

        with daskasync.Engine(data) as engine:  # closed with every partition busy
            engine.publish(np.zeros(20))
            engine.submit(slow_sum)
            engine.collect()
        assert ends["asaga-0"] == "time_budget" and ends["saga"] == "time_budget"
        alarming = _alarming_since(pc, sizes)
        data.release()
        assert_no_tasks(client)
    assert not alarming, "\n".join(alarming)
    assert not client_log.lines, "\n".join(client_log.lines)


def test_ctrl_c_logs_nothing_alarming(process_cluster, tmp_path):
    """Ctrl-C (SIGINT) in a user's process during an asynchronous fit: neither that client
    nor the scheduler nor the workers log anything at WARNING or above."""
    from test_interrupts import _CHILD

    pc = process_cluster(2)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    sizes = _sizes(pc)
    proc = subprocess.Popen([sys.executable, str(script), pc.address, "asaga"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().split()[0] == "READY"
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert '"interrupted": true' in out, out
    alarming = _alarming_since(pc, sizes)
    alarming += [f"client: {line}" for line in err.splitlines() if ALARMING.search(line)]
    assert not alarming, "\n".join(alarming)
