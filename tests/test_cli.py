"""The console script, on its own LocalCluster and on a `dask scheduler` / `dask worker`
cluster started as subprocesses on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from conftest import BIN, ProcessCluster
from distributed import Client

from daskasync.cli import build_parser, main


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


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "--partitions", "0"], "--partitions: must be an int >= 1, got 0"),
    (["bench", "--partitions", "2.5"], "--partitions: must be an int >= 1, got '2.5'"),
    (["demo", "--partitions", "-3"], "--partitions: must be an int >= 1, got -3"),
    (["demo", "--batch-fraction", "0"], "--batch-fraction: must be a number in (0, 1], got 0.0"),
    (["demo", "--batch-fraction", "1.5"],
     "--batch-fraction: must be a number in (0, 1], got 1.5"),
    (["bench", "--time-budget", "0"], "--time-budget: must be a positive number, got 0.0"),
    (["bench", "--time-budget", "inf"], "--time-budget: must be a positive number, got inf"),
    (["bench", "--straggler-c", "-1"], "--straggler-c: must be a number >= 0, got -1.0"),
    (["demo", "--workers", "0"], "--workers: must be an int >= 1, got 0"),
    (["bench", "--threads", "two"], "--threads: must be an int >= 1, got 'two'"),
    (["demo", "--epochs", "0"], "--epochs: must be a positive number, got 0.0"),
    (["demo", "--seed", "-1"], "--seed: must be an int >= 0, got -1"),
    (["bench", "--targets", "0.1,1"], "--targets: must be a number in (0, 1), got 1.0"),
    (["bench", "--seeds", "0,-2"], "--seeds: must be an int >= 0, got -2"),
    (["bench", "--repeats", "0"], "--repeats: must be an int >= 1, got 0"),
    (["bench", "--lam", "nan"], "--lam: must be a positive number, got nan"),
    (["bench", "--stragglers", "storm"],
     "--stragglers: must be one of 'none', 'intensity', 'cloud', got 'storm'"),
    (["bench", "--straggler-form", "nowhere"],
     "--straggler-form: must be one of 'partition', 'worker', got 'nowhere'"),
    (["demo", "--solvers", "sgd", "lbfgs"], "--solvers: must be one of 'sgd', 'asgd', got 'lbfgs'"),
    (["bench", "--launches", "0"], "--launches: must be an int >= 1, got 0"),
    (["bench", "--launches", "two"], "--launches: must be an int >= 1, got 'two'"),
    (["bench", "--straggler-workers", ","], "--straggler-workers: give at least one value, got ','"),
])
def test_bad_option_values_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"daskasync {argv[0]}: error: argument {argv[1]}: {message}" in err


def test_good_option_values_are_parsed_and_typed():
    args = build_parser().parse_args(
        ["bench", "--partitions", "4", "--targets", "0.1, 0.01", "--seeds", "1,2",
         "--time-budget", "2.5", "--straggler-c", "0", "--lam", "1e-3", "--tune-grid", "1,4"])
    assert (args.partitions, args.targets, args.seeds) == (4, [0.1, 0.01], [1, 2])
    assert (args.time_budget, args.straggler_c, args.lam, args.tune_grid) == (2.5, 0.0, 1e-3,
                                                                             [1.0, 4.0])
    assert build_parser().parse_args(["demo"]).batch_fraction == 0.1  # defaults untouched
    args = build_parser().parse_args(["bench", "--launches", "3", "--straggler-workers",
                                      "w1, 0"])
    assert (args.launches, args.straggler_workers) == (3, ["w1", "0"])
    args = build_parser().parse_args(["bench"])
    assert (args.launches, args.straggler_workers) == (1, None)


def test_several_launches_need_a_local_cluster(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--scheduler", "tcp://127.0.0.1:1", "--launches", "2"])
    assert info.value.code == 2
    assert ("error: argument --launches: must be 1 with --scheduler (each launch starts a "
            "fresh LocalCluster), got 2") in capsys.readouterr().err


def test_bench_help_lists_the_registered_solvers_and_peers(capsys):
    from daskasync.bench.peers import PEERS
    from daskasync.solvers.registry import SOLVERS

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in [*SOLVERS, *PEERS]:
        assert name in out.replace("- ", "-")  # argparse may wrap after a hyphen


@pytest.mark.slow
def test_bench_launches_fresh_local_clusters(tmp_path, capsys):
    rc = main(["bench", "--workers", "2", "--threads", "1", "--n", "800", "--d", "5",
               "--partitions", "2", "--solvers", "sgd", "asgd", "--time-budget", "0.3",
               "--targets", "0.1", "--overhead-updates", "0", "--launches", "2",
               "--stragglers", "intensity", "--straggler-form", "worker",
               "--straggler-workers", "1", "--cache-dir", str(tmp_path / "c"),
               "--output", str(tmp_path / "o")])
    assert rc == 0
    assert "asgd vs best synchronous at 0.1: " in capsys.readouterr().out
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["launches"]["count"] == 2 and len(set(saved["launches"]["schedulers"])) == 2
    assert saved["launches"]["worker_indices"] == [{"1": 0, "0": 1}] * 2
    assert saved["cluster"]["workers"] == 2 and saved["cluster"]["threads_per_worker"] == 1
    assert [r["launch"] for r in saved["solvers"]["asgd"]["runs"]] == [0, 1]
