"""The benchmark command: spec parsing, traces, outputs, and an end-to-end run on the test
cluster with daskasync solvers and peers under worker stragglers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from daskasync.bench.metrics import time_to_target
from daskasync.bench.report import markdown_table
from daskasync.bench.runner import run_benchmark
from daskasync.bench.runs import calibrate_task_time
from daskasync.bench.sparse import epoch_costs, round_costs, table
from daskasync.bench.specs import parse_solver, straggler_model
from daskasync.cli import main
from daskasync.data import PartitionedData
from daskasync.stragglers import Cloud, Intensity, NoStragglers


def test_solver_specs_are_parsed_with_typed_options():
    s = parse_solver("asgd[barrier=quorum,beta=0.7,staleness_aware=true]")
    assert (s.name, s.kind) == ("asgd", "daskasync")
    assert s.options == {"barrier": "quorum", "beta": 0.7, "staleness_aware": True}
    assert s.minimize_options() == s.options
    own = parse_solver("albfgs[precondition=jacobi,memory=5,window=4]")  # the solver's own
    assert own.minimize_options() == {
        "window": 4, "solver_options": {"precondition": "jacobi", "memory": 5}}
    with pytest.raises(ValueError, match="'precondition'$"):
        parse_solver("asaga[precondition=jacobi]")
    assert parse_solver("dask-ml-sgd[learning_rate=constant,eta0=0.1]").options == {
        "learning_rate": "constant", "eta0": 0.1}


@pytest.mark.parametrize("spec, match", [
    ("adam", "unknown solver 'adam'"),
    ("asgd[tau]", "not key=value"),
    ("asgd[speed=3]", r"^solvers: an option of 'asgd\[speed=3\]': must be one of .*'speed'$"),
    ("asgd[[", "cannot parse"),
])
def test_bad_solver_specs_name_the_problem(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_solver(spec)


def test_straggler_models_per_partition_and_per_worker():
    assert isinstance(straggler_model("none", form="worker", n_units=2), NoStragglers)
    m = straggler_model("intensity", form="worker", n_units=2, c=0.6)
    assert isinstance(m, Intensity) and m.delay(0, 3, 1.0) == 0.6 and m.delay(1, 3, 1.0) == 0
    cloud = straggler_model("cloud", form="partition", n_units=32)
    assert isinstance(cloud, Cloud) and cloud.long_tail == (24, 28)
    for kw, match in [({"form": "nowhere"}, "straggler_form"), ({"c": -1.0}, "straggler_c")]:
        with pytest.raises(ValueError, match=match):
            straggler_model("intensity", **{"form": "worker", "n_units": 2, **kw})
    with pytest.raises(ValueError, match="stragglers"):
        straggler_model("solar", form="worker", n_units=2)


def test_time_to_target_is_the_first_crossing():
    trace = [[0.0, 1.0], [1.0, 0.05], [2.0, 0.2], [3.0, 0.001]]
    assert time_to_target(trace, 0.1) == 1.0
    assert time_to_target(trace, 0.01) == 3.0
    assert time_to_target(trace, 1e-6) is None


def test_markdown_reports_a_lower_bound_when_only_the_async_solver_got_there():
    def entry(times, trace_end):
        return {"time_to_target_s": times, "final_rel_subopt": 1e-3, "updates": 10,
                "mean_staleness": 0.0, "dropped": 0, "step_size": 1.0,
                "trace": [[0.0, 1.0], [trace_end, 1e-3]]}

    results = {
        "targets": [0.1, 0.01],
        "solvers": {"sgd": entry({"0.1": None, "0.01": None}, 120.0),
                    "asgd": entry({"0.1": 30.0, "0.01": None}, 120.0)},
        "ratios": {"sgd / asgd": {"0.1": None, "0.01": None}},
        "ratio_lower_bounds": {"sgd / asgd": {"0.1": 4.0}},
    }
    table = markdown_table(results)
    assert "| sgd / asgd | > 4.00x | — |" in table
    assert "did not reach the target in its whole run" in table
    del results["ratio_lower_bounds"]  # results.json files written before the bounds
    assert "| sgd / asgd | — | — |" in markdown_table(results)


def test_bad_arguments_are_refused_before_any_work(client, tmp_path):
    svm = tmp_path / "tiny.svm"
    svm.write_text("1 1:0.5\n-1 2:1.0\n")
    for kw, match in [
        ({"targets": [2.0]}, r"^targets\[0\]: must be a number in \(0, 1\), got 2.0$"),
        ({"time_budget": 0}, "^time_budget: must be a positive number, got 0$"),
        ({"repeats": 0}, "^repeats: must be an int >= 1, got 0$"),
        ({"partitions": 0}, "^partitions: must be an int >= 1, got 0$"),
        ({"seeds": [0, -1]}, r"^seeds\[1\]: must be an int >= 0, got -1$"),
        ({"lam": 0.0}, "^lam: must be a positive number or None, got 0.0$"),
        ({"tune": True, "tune_seconds": -1.0}, "^tune_seconds: must be a positive number"),
        ({"tune": True, "tune_grid": [1.0, 0.0]}, r"^tune_grid\[1\]: must be a positive number"),
        ({"overhead_updates": -1}, "^overhead_updates: must be an int >= 0, got -1$"),
        ({"straggler_c": -1.0, "stragglers": "intensity"}, "^straggler_c: must be a number"),
        ({"solvers": ["sgd", "sgd"]}, "listed twice"),
        ({"data": str(tmp_path / "missing.svm")}, "no such file"),
        ({"stragglers": "storm"}, "stragglers"),
        ({"synthetic_params": {"decay": -0.5}}, "decay: must be a number >= 0"),
        ({"synthetic_params": {"decay": 0.5}, "data": str(svm)}, "only for synthetic data"),
    ]:
        with pytest.raises(ValueError, match=match):
            run_benchmark(client, output=None, **kw)
    with pytest.raises(TypeError, match="unexpected parameter"):
        run_benchmark(client, output=None, synthetic_params={"speed": 1.0})
    with pytest.raises(TypeError, match="^partitions: must be an int >= 1, got 2.0$"):
        run_benchmark(client, output=None, partitions=2.0)
    assert not client.has_what() or not any(client.has_what().values())


@pytest.mark.slow
def test_a_small_benchmark_end_to_end(client, tmp_path):
    out = tmp_path / "out"
    kw = dict(
        synthetic="epsilon", n=6000, d=20, partitions=4,
        solvers=["sgd", "asgd", "saga", "asaga[barrier=bounded,tau=6]", "dask-glm-lbfgs",
                 "dask-ml-sgd", "sklearn-lbfgs"],
        stragglers="intensity", straggler_c=1.0, straggler_form="worker",
        targets=[1e-1, 1e-3], time_budget=2.0, seeds=[0], repeats=1, lam=1e-3,
        cache_dir=tmp_path / "cache", overhead_updates=200, progress=False,
    )
    kw["synthetic_params"] = {"decay": 0.5}
    res = run_benchmark(client, output=out, **kw)
    saved = json.loads((out / "results.json").read_text())
    assert saved["dataset"]["params"] == {"decay": 0.5}
    assert saved["f_star"] == res["f_star"] and res["f_star_info"]["cached"] is False
    assert set(saved["dataset"]) >= {"name", "n", "d", "nnz"} and saved["dataset"]["n"] == 6000
    assert saved["cluster"]["partitions"] == 4 and saved["cluster"]["workers"] == 2
    assert saved["stragglers"]["model"] == "intensity" and saved["stragglers"]["c"] == 1.0
    assert set(saved["overhead"]) >= {"driver_updates_per_s", "raw_as_completed_per_s"}
    assert set(saved["solvers"]) == set(kw["solvers"])
    for name, r in saved["solvers"].items():
        assert set(r) >= {"time_to_target_s", "final_rel_subopt", "updates", "mean_staleness",
                          "dropped", "step_size", "trace"}, name
        assert set(r["time_to_target_s"]) == {"0.1", "0.001"}
        t = np.array(r["trace"])[:, 0]
        assert np.all(np.diff(t) >= 0), name
        # every distributed run held worker 0's threads for about as long as its tasks
        # (scikit-learn fits in this process: only its objective passes use the workers)
        inj = r["injected_delay"]
        assert name.startswith("sklearn-") or sum(v["delay_s"] for v in inj.values()) > 0, name
    # the lbfgs peers solve this small problem to the tightest target within the budget
    assert saved["solvers"]["dask-glm-lbfgs"]["time_to_target_s"]["0.001"] is not None
    assert saved["solvers"]["asgd"]["mean_staleness"] > 0
    assert saved["solvers"]["sgd"]["mean_staleness"] == 0
    assert set(saved["ratios"]) == {"sgd / asgd", "saga / asaga[barrier=bounded,tau=6]"}
    assert (out / "suboptimality.png").stat().st_size > 10_000
    table = (out / "results.md").read_text()
    assert table == markdown_table(saved) and "| dask-ml-sgd |" in table
    # f* comes from the cache the second time
    again = run_benchmark(client, output=None, **{**kw, "solvers": ["asgd"],
                                                  "overhead_updates": 0})
    assert again["f_star_info"]["cached"] is True and again["f_star"] == res["f_star"]


@pytest.mark.slow
def test_the_bench_command_on_an_existing_scheduler(client, tmp_path, capsys):
    rc = main(["bench", "--scheduler", client.scheduler.address, "--n", "3000", "--d", "10",
               "--partitions", "4", "--solvers", "asgd", "sklearn-saga", "--time-budget", "1",
               "--targets", "0.1", "--overhead-updates", "0", "--cache-dir",
               str(tmp_path / "c"), "--output", str(tmp_path / "o")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "asgd" in printed and "sklearn-saga" in printed
    assert "asgd vs best synchronous at 0.1: " in printed
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["overhead"] is None and set(saved["solvers"]) == {"asgd", "sklearn-saga"}


def test_the_precondition_race_counts_passes_to_each_target(client):
    """Features scaled by ``(k + 1) ** -1`` (epsilon-like, ``decay=2``): both
    preconditioners need fewer passes; their column pass is counted."""
    from daskasync.bench.precondition import precondition_race

    rows = precondition_race(client, ["epsilon"], n=4000, d=30, partitions=4,
                             params={"decay": 2.0}, max_updates=300)
    by = {r["precondition"]: r for r in rows}
    assert set(by) == {"none", "jacobi", "standardize"}
    assert len({r["f_star"] for r in rows}) == 1
    none = by["none"]["passes"]["1e-06"]
    for pre in ("jacobi", "standardize"):
        passes = by[pre]["passes"]["1e-06"]
        assert passes is not None and none is not None and 2 <= passes < none
        assert by[pre]["seconds"]["1e-06"] > 0
    held = set(client.who_has())
    with pytest.raises(ValueError, match=r"^sets: 'missing\.svm' is not a file"):
        precondition_race(client, ["epsilon", "missing.svm"], n=4000, d=30, partitions=4,
                          params={}, max_updates=5)
    # refused before the first set was loaded: no key appeared (the first race's keys may
    # still be leaving: their release is asynchronous)
    assert set(client.who_has()) <= held


def test_driver_cost_is_measured_for_each_n(client):
    from daskasync.bench.scaling import driver_cost_vs_n

    rows = driver_cost_vs_n(client, ns=(2000, 20000), d=50, n_partitions=4, batch_rows=16,
                            n_updates=100)
    assert [r["n"] for r in rows] == [2000, 20000]
    for r in rows:
        assert r["updates"] == 100 and r["driver_cpu_us_per_update"] > 0
        assert r["batch_fraction"] == 16 * 4 / r["n"]
    assert rows[1]["history_bytes"] > rows[0]["history_bytes"]  # one scalar per sample


def test_partition_stragglers_act_from_the_first_task_of_a_timed_run(client, tmp_path):
    # the delays' scale is measured by a warm-up run before the clock: a synchronous run
    # meets its straggler in every round, the first ones included (measured inside the
    # timed run, the first 5 rounds would run without delay)
    c = 40.0
    res = run_benchmark(
        client, output=None, synthetic="epsilon", n=2000, d=10, partitions=4,
        solvers=["sgd"], stragglers="intensity", straggler_c=c, straggler_form="partition",
        targets=[1e-6], time_budget=0.3, lam=1e-3, cache_dir=tmp_path / "cache",
        overhead_updates=0, progress=False,
    )
    r = res["solvers"]["sgd"]
    avg = r["avg_task_time_s"]
    assert avg > 0
    run = r["runs"][0]
    # every round waited for partition 0's sleep of c * avg
    assert run["updates"] >= 1
    assert run["wall_time_s"] >= run["updates"] * c * avg * 0.95


def test_calibrate_task_time_measures_the_solvers_tasks(client):
    data = PartitionedData.synthetic("epsilon", n=2000, d=10, n_partitions=4, client=client)
    try:
        for name in ("sgd", "asaga"):
            avg = calibrate_task_time(data, parse_solver(name), lam=1e-3, loss="logistic",
                                      seed=0)
            assert 0 < avg < 1.0, name
    finally:
        data.release()


def _entry(times, length, kind="daskasync"):
    return {"kind": kind, "time_to_target_s": times, "trace": [[0.0, 1.0], [length, 0.5]],
            "runs": [{"wall_time_s": length}]}


def test_ratios_to_the_best_synchronous_solver_name_it_and_bound_the_rest():
    from daskasync.bench.compare import best_sync, ratios_to_best_sync

    specs = [parse_solver(s) for s in ("sgd", "asgd", "saga", "asaga", "sklearn-saga")]
    results = {
        "sgd": _entry({"0.1": 4.0, "0.01": None, "0.001": None}, 10.0),
        "saga": _entry({"0.1": 6.0, "0.01": None, "0.001": None}, 10.0),
        "sklearn-saga": _entry({"0.1": 2.0, "0.01": 5.0, "0.001": None}, 8.0, "peer"),
        "asgd": _entry({"0.1": 1.0, "0.01": None, "0.001": 2.0}, 10.0),
        "asaga": _entry({"0.1": 0.5, "0.01": 2.5, "0.001": None}, 10.0),
    }
    targets = [0.1, 0.01, 0.001]
    best = best_sync(specs, results, targets)
    assert [best[str(t)]["solver"] for t in targets] == ["sklearn-saga", "sklearn-saga", None]
    out = ratios_to_best_sync(specs, results, targets)
    assert set(out) == {"asgd", "asaga"}
    assert out["asgd"]["0.1"] == {"ratio": 2.0, "best_sync": "sklearn-saga"}
    assert out["asaga"]["0.01"] == {"ratio": 2.0, "best_sync": "sklearn-saga"}
    # only the async solver got there: at least the shortest sync run over its time
    assert out["asgd"]["0.001"] == {"ratio": None, "best_sync": None, "lower_bound": 4.0}
    # only the sync one did: at most its time over the async run's length
    assert out["asgd"]["0.01"] == {"ratio": None, "best_sync": "sklearn-saga",
                                   "upper_bound": 0.5}
    assert out["asaga"]["0.001"] == {"ratio": None, "best_sync": None}
    doc = {"targets": targets, "solvers": {}, "best_sync": best, "ratios_to_best_sync": out}
    table = markdown_table(doc)
    assert "| best synchronous solver | sklearn-saga (2.00 s) | sklearn-saga (5.00 s) | " \
           "none reached |" in table
    assert "| asgd (best sync time / its time) | 2.00x | < 0.50x | > 4.00x |" in table
    assert ratios_to_best_sync([parse_solver("asgd")], {"asgd": results["asgd"]}, targets) == {}


def test_pass_counting_leaves_out_the_passes_after_the_clock():
    from daskasync.bench.clock import in_run_passes

    ev = ([("eval", "r", n) for n in (3, 4)] + [("objective", "r", n) for n in (7, 8)]
          + [("eval", "r", n) for n in (20, 21)] + [("objective", "r", n) for n in (22, 23)])
    assert in_run_passes(ev, 2) == {"eval": 1, "objective": 1}
    assert in_run_passes([("eval", "r", 5), ("eval", "r", 6)], 2) == {"eval": 0,
                                                                      "objective": 0}


def test_launch_and_cluster_arguments_are_refused_before_any_work(client, tmp_path):
    base = dict(output=None, solvers=["asgd"], n=500, d=4, partitions=2, time_budget=0.2,
                cache_dir=tmp_path / "c", overhead_updates=0, progress=False)
    for kw, match in [
        ({"launches": 2}, "^launches: 2 launches need a fresh cluster each: pass "
                          "cluster_factory="),
        ({"launches": 0}, "^launches: must be an int >= 1, got 0$"),
        ({"straggler_workers": ["0"]}, "^straggler_workers: only with straggler_form='worker'"),
        ({"straggler_workers": ["0"], "straggler_form": "worker"},
         "^straggler_workers: only with .* got 'worker' and 'none'$"),
        ({"straggler_workers": "0", "straggler_form": "worker", "stragglers": "intensity"},
         "^straggler_workers: expected a list of names"),
        ({"straggler_workers": ["0", "0"], "straggler_form": "worker",
          "stragglers": "intensity"}, "named twice"),
        ({"straggler_workers": ["7"], "straggler_form": "worker", "stragglers": "intensity"},
         r"^straggler_workers: no worker named \['7'\]; the workers are named \['0', '1'\]$"),
        ({"straggler_workers": ["0", "1"], "straggler_form": "worker", "stragglers": "cloud"},
         r"^straggler_workers: the model has 1 straggling worker\(s\) \(indices \[0\]\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            run_benchmark(client, **{**base, **kw})
    with pytest.raises(TypeError, match="^straggler_workers\\[0\\]: must be a worker name"):
        run_benchmark(client, **{**base, "straggler_workers": [0], "straggler_form": "worker",
                                 "stragglers": "intensity"})
    with pytest.raises(TypeError, match="^cluster_factory: must be a callable or None"):
        run_benchmark(cluster_factory="local", **base)
    with pytest.raises(ValueError, match="^client, cluster_factory: give one of them"):
        run_benchmark(**base)
    with pytest.raises(ValueError, match="^client, cluster_factory: give one of them"):
        run_benchmark(client, cluster_factory=lambda: None, **base)


@pytest.mark.slow
def test_fair_clock_best_sync_ratios_and_launches_end_to_end(tmp_path):
    from daskasync.clusters import cluster_client

    out = tmp_path / "out"
    res = run_benchmark(
        cluster_factory=lambda: cluster_client(None, 2, 1), launches=2, output=out,
        synthetic="epsilon", n=2000, d=8, partitions=4,
        solvers=["sgd", "asgd", "sklearn-lbfgs"], stragglers="intensity", straggler_c=0.5,
        straggler_form="worker", straggler_workers=["1"], targets=[1e-1, 1e-3],
        time_budget=0.5, lam=1e-3, cache_dir=tmp_path / "cache", overhead_updates=60,
        progress=False,
    )
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(res))
    # launches: two clusters, every run kept, f* from the cache the second time
    assert saved["launches"]["count"] == 2 and saved["launches"]["f_star_cached"][1] is True
    assert len(set(saved["launches"]["schedulers"])) == 2
    # the named worker straggles on both clusters
    assert saved["launches"]["worker_indices"] == [{"1": 0, "0": 1}] * 2
    assert saved["stragglers"]["straggler_workers"] == ["1"]
    for name, r in saved["solvers"].items():
        assert [run["launch"] for run in r["runs"]] == [0, 1], name
        assert r["stopping_checks_requested"] is False and r["in_run_checks"] == 0, name
        assert all(run["in_run_checks"] == 0 for run in r["runs"]), name
    for run in saved["solvers"]["sgd"]["runs"] + saved["solvers"]["asgd"]["runs"]:
        assert run["stop_reason"] == "time_budget" and run["in_run_passes"] == {
            "eval": 0, "objective": 0}
    # the best synchronous solver at each target, and the async solver against it
    for t in ("0.1", "0.001"):
        sync = {k: saved["solvers"][k]["time_to_target_s"][t] for k in ("sgd", "sklearn-lbfgs")}
        reached = {k: v for k, v in sync.items() if v is not None}
        best = min(reached, key=reached.get) if reached else None
        assert saved["best_sync"][t]["solver"] == best
        cell = saved["ratios_to_best_sync"]["asgd"][t]
        assert cell["best_sync"] == best
        t_async = saved["solvers"]["asgd"]["time_to_target_s"][t]
        if best is not None and t_async:
            assert cell["ratio"] == pytest.approx(reached[best] / t_async)
    assert set(saved["ratios"]) == {"sgd / asgd"}
    # what checks cost: the first synchronous daskasync solver, checked and not
    fc = saved["fair_clock"]
    assert fc["solver"] == "sgd" and 1 <= fc["updates"] <= 10
    assert fc["checks_no_check"] == 0
    assert 1 <= fc["checks_with_tol"] <= fc["updates"]  # alongside, one at a time
    assert fc["ratio"] == pytest.approx(fc["s_per_update_with_checks"]
                                        / fc["s_per_update_no_check"])
    o = saved["overhead"]
    assert set(o) >= {"driver_updates_per_s", "like_for_like_per_s", "driver_ratio",
                      "raw_as_completed_per_s", "launches"} and len(o["launches"]) == 2
    table = (out / "results.md").read_text()
    assert table == markdown_table(saved)
    assert "| best synchronous solver |" in table and "driver_ratio" in table
    assert "Medians over 2 cluster launches" in table


def test_overhead_reports_the_like_for_like_loop(client):
    from daskasync.bench.overhead import measure_overhead

    o = measure_overhead(client, n_updates=60, n_partitions=2, repeats=1)
    assert set(o) >= {"driver_updates_per_s", "like_for_like_per_s", "driver_ratio",
                      "raw_as_completed_per_s", "raw_as_completed_no_fetch_per_s"}
    assert o["driver_ratio"] == pytest.approx(o["driver_updates_per_s"]
                                              / o["like_for_like_per_s"])
    assert len(o["samples"]["like_for_like"]) == 1 and o["like_for_like_per_s"] > 0
    with pytest.raises(ValueError, match="^repeats: must be an int >= 1, got 0$"):
        measure_overhead(client, repeats=0)


def test_sparse_epochs_report_where_a_task_spends_its_time(client):
    rows = epoch_costs(client, ds=(2_000, 20_000), n=4_000, nnz=20, partitions=4, epochs=2,
                       repeats=2)
    assert [r["d"] for r in rows] == [2_000, 20_000]
    for r in rows:  # two interleaved measurements each; the row is one of them, the median
        for name in ("saga", "asaga", "sklearn_saga"):
            runs = r[name]["epoch_s_runs"]
            assert len(runs) == 2 and r[name]["epoch_s"] == min(runs)
        ratios = [a / b for a, b in zip(r["saga"]["epoch_s_runs"],
                                        r["sklearn_saga"]["epoch_s_runs"], strict=True)]
        assert r["saga"]["ratios"] == ratios
        assert r["saga"]["ratio_to_sklearn"] == np.median(ratios)
    for r in rows:
        # scikit-learn's epoch is a difference of two fits' times: on data this small, of
        # about a millisecond each, its sign is noise
        assert np.isfinite(r["sklearn_saga"]["epoch_s"])
        for solver in ("saga", "asaga"):
            got = r[solver]
            assert got["epoch_s"] > 0 and np.isfinite(got["ratio_to_sklearn"])
            # the grad tasks after the first epoch: 4 partitions x 2 epochs at least
            assert got["tasks_timed"] >= 8, got
            assert got["task_compute_s"] > 0 and got["task_transfer_s"] >= 0
    assert rows[0]["saga"]["ratio_to_smallest_d"] == 1.0
    text = table(rows)
    assert text.count("\n") == 4 and "saga task: run / fetch" in text
    assert "saga / smallest d" in text and " [" in text  # the ratios' range


def test_sparse_round_times_the_drivers_share_of_a_round():
    """The ``round`` experiment times both ways of adding a round's results and both
    windows, on this process only."""
    out = round_costs(d=40_000, n=2_000, nnz=10, partitions=(2, 4))
    for P in (2, 4):
        got = out[f"P={P}"]
        assert got["one_by_one_ms"] > 0 and got["one_pass_ms"] > 0
    assert out["window_16"]["window"] == 16
    assert out["window_default"]["window"] == 16  # 640 kB versions: the whole default
    big = round_costs(d=1_000_000, n=400, nnz=2, partitions=(1,))
    assert big["window_default"]["window"] == 4
    assert big["window_16"]["publish_20_versions_ms"] > 0
