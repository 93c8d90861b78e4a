"""The overhead benchmark runs and reports what it measured (no timing assertions: these
machines are shared and noisy; the numbers go to the benchmarks page)."""

from __future__ import annotations

import json

from daskasync.bench import measure_overhead
from daskasync.bench.overhead import main


def test_measure_overhead_reports_rates(client):
    out = measure_overhead(client, n_updates=150, n_partitions=4, repeats=1)
    for key in ("driver_updates_per_s", "raw_as_completed_per_s",
                "raw_as_completed_no_fetch_per_s"):
        assert out[key] > 0
    assert out["ratio"] == out["driver_updates_per_s"] / out["raw_as_completed_per_s"]
    assert len(out["samples"]["engine"]) == 1


def test_overhead_command_writes_json(tmp_path, capsys):
    path = tmp_path / "overhead.json"
    assert main(["--updates", "100", "--repeats", "1", "--partitions", "4",
                 "--output", str(path)]) == 0
    assert "updates/s" in capsys.readouterr().out
    assert json.loads(path.read_text())["n_updates"] == 100
