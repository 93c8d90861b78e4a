"""The console script, on its own LocalCluster and on a `dask scheduler` / `dask worker`
cluster started as subprocesses on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from conftest import BIN, ProcessCluster
from distributed import Client

from daskasync.cli import main


@pytest.fixture(scope="module")
def subprocess_cluster(tmp_path_factory):
    pc = ProcessCluster(tmp_path_factory.mktemp("cluster"))
    try:
        for i in range(2):
            pc.add_worker(f"w{i}", nanny=True)
        with Client(pc.address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        yield pc.address
    finally:
        pc.close()


def test_demo_on_its_own_local_cluster(tmp_path, capsys):
    out = tmp_path / "demo.json"
    rc = main(["demo", "--n", "4000", "--d", "20", "--partitions", "4", "--epochs", "1",
               "--output", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "sgd:" in text and "asgd:" in text
    res = json.loads(out.read_text())
    assert set(res) == {"sgd", "asgd"}
    for r in res.values():
        assert r["objective"] < 0.6931 and r["updates"] > 0


def test_demo_on_a_dask_scheduler_and_workers(subprocess_cluster, tmp_path, capsys):
    out = tmp_path / "demo.json"
    rc = main(["demo", "--scheduler", subprocess_cluster, "--n", "4000", "--d", "20",
               "--partitions", "4", "--epochs", "1", "--solvers", "asgd",
               "--output", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert len(res["asgd"]["worker_stats"]) == 2  # both subprocess workers computed
    with Client(subprocess_cluster) as c:
        deadline = time.monotonic() + 10
        while c.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
            assert time.monotonic() < deadline, "the demo left tasks on the cluster"
            time.sleep(0.1)


def test_console_script_is_installed():
    exe = BIN / "daskasync"
    if not exe.exists():
        pytest.skip("package not installed with its console script")
    proc = subprocess.run([str(exe), "demo", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "--scheduler" in proc.stdout
