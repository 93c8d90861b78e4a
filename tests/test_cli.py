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


DEMO_SMALL = ["--n", "4000", "--d", "20", "--partitions", "4", "--threads", "2",
              "--time-budget", "2", "--targets", "1e-2,1e-4"]


def test_demo_on_its_own_local_cluster(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", *DEMO_SMALL, "--output", str(out), "--cache-dir", str(tmp_path / "c")])
    assert rc == 0
    text = capsys.readouterr().out
    table = text[text.index("seconds to target"):]
    lines = table.splitlines()
    assert lines[0].split() == ["seconds", "to", "target", "0.01", "0.0001"]
    assert lines[2].startswith("lbfgs (synchronous)") and len(lines[2].split()) == 4
    assert lines[3].startswith("albfgs (asynchronous)") and len(lines[3].split()) == 4
    assert lines[4].startswith("speed-up of albfgs") and "x" in lines[4]
    verdict = next(x for x in lines if x.startswith("verdict: "))
    assert any(w in verdict for w in ("sooner than", "a tie", "did not")), verdict
    assert f"plot: {out.resolve() / 'suboptimality.png'}" in text
    assert (out / "suboptimality.png").exists() and "dashboard: http" in text
    assert "daskasync demo --stragglers none" in text and "daskasync bench" in text
    res = json.loads((out / "results.json").read_text())
    assert set(res["solvers"]) == {"lbfgs", "albfgs"}
    assert res["stragglers"]["model"] == "cloud" and res["overhead"] is None
    for r in res["solvers"].values():
        assert r["final_rel_subopt"] < 1e-2 and r["updates"] > 0


def test_demo_on_a_dask_scheduler_and_workers(subprocess_cluster, tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--scheduler", subprocess_cluster, *DEMO_SMALL, "--stragglers", "none",
               "--output", str(out), "--cache-dir", str(tmp_path / "c")])
    assert rc == 0
    assert "verdict: " in capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["cluster"]["workers"] == 2  # both subprocess workers
    with Client(subprocess_cluster) as c:
        deadline = time.monotonic() + 10
        while c.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
            assert time.monotonic() < deadline, "the demo left tasks on the cluster"
            time.sleep(0.1)


def _results(times: dict[str, list[float | None]], stragglers: str = "cloud") -> dict:
    """A results document as the benchmark makes it, for the given times to 1e-2, 1e-4."""
    from daskasync.bench.compare import ratios_to_best_sync
    from daskasync.bench.specs import parse_solver

    targets = [1e-2, 1e-4]
    specs = [parse_solver(name) for name in times]
    solvers = {s.label: {"kind": s.kind, "solver": s.name, "trace": [[0.0, 1.0], [10.0, 0.5]],
                         "runs": [{"wall_time_s": 10.0}],
                         "time_to_target_s": {str(t): v for t, v in
                                              zip(targets, times[s.label], strict=True)}}
               for s in specs}
    return {"targets": targets, "solvers": solvers, "time_budget_s": 10.0,
            "stragglers": {"model": stragglers, "form": "partition"},
            "dataset": {"name": "epsilon", "n": 4000, "d": 20, "source": "synthetic:epsilon"},
            "cluster": {"partitions": 4},
            "ratios_to_best_sync": ratios_to_best_sync(specs, solvers, targets)}


@pytest.mark.parametrize(("times", "said"), [
    ({"lbfgs": [1.0, 6.0], "albfgs": [0.5, 2.0]},
     "albfgs reached 0.0001 3.0x sooner than lbfgs (2.0 s against 6.0 s): under cloud "
     "stragglers, not waiting for the slow partitions paid."),
    ({"lbfgs": [1.0, 2.0], "albfgs": [1.5, 5.0]},
     "lbfgs reached 0.0001 2.5x sooner than albfgs (2.0 s against 5.0 s): under cloud "
     "stragglers, the asynchronous solver did not pay on this run."),
    ({"lbfgs": [1.0, 2.0], "albfgs": [1.0, 2.1]},
     "albfgs and lbfgs reached 0.0001 within 10% of each other (2.1 s and 2.0 s)"),
    ({"lbfgs": [4.0, None], "albfgs": [1.0, 2.0]},
     "only albfgs reached 0.0001 (2.0 s), at least 5.0x sooner than any synchronous solver"),
    ({"lbfgs": [4.0, 8.0], "albfgs": [5.0, None]},
     "only lbfgs reached 0.0001 (8.0 s); albfgs did not get there in its 10 s run"),
    ({"lbfgs": [None, None], "albfgs": [None, None]},
     "neither albfgs nor a synchronous solver reached 0.01 in 10 s"),
    ({"lbfgs": [1.0, 2.0], "saga": [0.5, 1.0]}, "nothing to compare"),
])
def test_the_verdict_is_computed_from_the_numbers(times, said):
    from daskasync.demo import summary

    text = summary(_results(times), output=None, dashboard=None)
    verdict = next(x for x in text.splitlines() if x.startswith("verdict: "))
    assert said in verdict, verdict


def test_the_table_gives_times_and_speed_ups():
    from daskasync.demo import summary

    text = summary(_results({"lbfgs": [1.0, None], "albfgs": [0.5, 2.0]}), output="o",
                   dashboard="http://127.0.0.1:8787/status")
    lines = text.splitlines()
    head = next(i for i, x in enumerate(lines) if x.startswith("seconds to target"))
    assert lines[head + 2].split() == ["lbfgs", "(synchronous)", "1.00", "—"]
    assert lines[head + 3].split() == ["albfgs", "(asynchronous)", "0.50", "2.00"]
    assert lines[head + 4].split() == ["speed-up", "of", "albfgs", "2.00x", ">", "5.00x"]
    assert "dashboard: http://127.0.0.1:8787/status" in text
    assert "daskasync demo --stragglers none" in text


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
    (["demo", "--time-budget", "-1"], "--time-budget: must be a positive number, got -1.0"),
    (["demo", "--targets", "1e-2,0"], "--targets: must be a number in (0, 1), got 0.0"),
    (["bench", "--time-budget", "0"], "--time-budget: must be a positive number, got 0.0"),
    (["bench", "--time-budget", "inf"], "--time-budget: must be a positive number, got inf"),
    (["bench", "--straggler-c", "-1"], "--straggler-c: must be a number >= 0, got -1.0"),
    (["demo", "--workers", "0"], "--workers: must be an int >= 1, got 0"),
    (["bench", "--threads", "two"], "--threads: must be an int >= 1, got 'two'"),
    (["demo", "--seeds", "-1"], "--seeds: must be an int >= 0, got -1"),
    (["bench", "--synthetic", "mnist"],
     "--synthetic: must be one of 'epsilon', 'rcv1', got 'mnist'"),
    (["bench", "--targets", "0.1,1"], "--targets: must be a number in (0, 1), got 1.0"),
    (["bench", "--seeds", "0,-2"], "--seeds: must be an int >= 0, got -2"),
    (["bench", "--repeats", "0"], "--repeats: must be an int >= 1, got 0"),
    (["bench", "--lam", "nan"], "--lam: must be a positive number, got nan"),
    (["bench", "--stragglers", "storm"],
     "--stragglers: must be one of 'none', 'intensity', 'cloud', got 'storm'"),
    (["bench", "--straggler-form", "nowhere"],
     "--straggler-form: must be one of 'partition', 'worker', got 'nowhere'"),
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
    args = build_parser().parse_args(["demo"])  # the embedded default
    assert (args.solvers, args.stragglers, args.targets) == (["lbfgs", "albfgs"], "cloud",
                                                             [1e-2, 1e-4, 1e-6])
    assert build_parser().parse_args(["demo", "--kind", "rcv1"]).synthetic == "rcv1"
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


def _help_entries(command: str, capsys) -> dict[str, str]:
    """``daskasync COMMAND --help``'s options: the first flag -> the help text."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    entries: dict[str, str] = {}
    flag = None
    for line in text[text.index("options:"):].splitlines()[1:]:
        if line.startswith("  -"):
            flag, _, rest = line.strip().partition("  ")
            flag = flag.split(",")[0].split()[0]
            entries[flag] = rest.strip()
        elif flag is not None:
            entries[flag] += " " + line.strip()
    return entries


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_every_option_has_help_that_states_its_default(command, capsys):
    entries = _help_entries(command, capsys)
    assert len(entries) > 15
    lacking = [f for f, h in entries.items() if f != "-h" and "(default: " not in h]
    assert not lacking, f"options without help or default: {lacking}"


def test_demo_and_bench_share_their_names_and_state_where_output_goes(capsys):
    demo, bench = _help_entries("demo", capsys), _help_entries("bench", capsys)
    shared = {"--scheduler", "--workers", "--threads", "--data", "--synthetic", "--n", "--d",
              "--synthetic-param", "--partitions", "--solvers", "--stragglers",
              "--straggler-c", "--straggler-form", "--targets", "--time-budget", "--seeds",
              "--lam", "--loss", "--output", "--cache-dir"}
    assert shared <= set(demo) and shared <= set(bench)
    assert "(default: daskasync-demo)" in demo["--output"]
    assert "(default: bench-results)" in bench["--output"]
    assert "(default: ~/.cache/daskasync)" in demo["--cache-dir"] == bench["--cache-dir"]


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
