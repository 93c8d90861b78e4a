"""Run states: continuing a run equals one longer run; save/load without pickle; refusing
a state from other data or settings; the progress bar and the per-record callback."""

from __future__ import annotations

import io
import zipfile
from contextlib import redirect_stderr

import numpy as np
import pytest

import daskasync as da


@pytest.fixture
def data(client):
    d = da.PartitionedData.synthetic("epsilon", n=3000, d=15, n_partitions=4, client=client)
    yield d
    d.release()


@pytest.mark.parametrize("solver", ["sgd", "saga", "lbfgs"])
def test_continuing_a_sync_run_equals_one_longer_run(client, data, solver, tmp_path):
    kw = {"solver": solver, "fit_intercept": True}
    if solver != "lbfgs":  # (L-BFGS's curvature pairs travel in the state file)
        kw["batch_fraction"] = 0.25
    longer = da.minimize(data, max_epochs=6, **kw)
    first = da.minimize(data, max_epochs=3, **kw)
    path = tmp_path / "state.npz"
    first.state.save(path)
    rest = da.minimize(data, max_epochs=6, init=da.RunState.load(path), **kw)
    assert rest.updates == longer.updates == (6 if solver == "lbfgs" else 24)
    np.testing.assert_array_equal(rest.theta, longer.theta)  # bit for bit
    assert rest.history[0].update == first.updates  # the records continue
    if solver == "saga":
        np.testing.assert_array_equal(rest.state.history.alpha, longer.state.history.alpha)
    # restarting from scratch instead would repeat the first half's samples: not equal
    again = da.minimize(data, max_epochs=3, theta0=first.theta, **kw)
    assert np.abs(again.theta - longer.theta).max() > 1e-8


def test_continuing_an_async_run_keeps_its_counters(client, data):
    first = da.minimize(data, solver="asaga", max_epochs=2, batch_fraction=0.5)
    rest = da.minimize(data, solver="asaga", max_epochs=4, batch_fraction=0.5, init=first.state)
    assert rest.updates >= 16 and rest.epochs >= 4 - 1e-9
    assert rest.objective <= first.objective + 1e-12
    assert np.all(rest.state.task_counts >= first.state.task_counts)
    # the state it continued from is not modified
    assert first.state.history.n_updates == first.updates


def test_a_state_from_other_data_or_settings_is_refused(client, data):
    state = da.minimize(data, solver="saga", max_epochs=1, batch_fraction=0.5).state
    with pytest.raises(ValueError, match=r"init: .*batch_fraction: state has 0.5"):
        da.minimize(data, solver="saga", max_epochs=2, batch_fraction=0.25, init=state)
    with pytest.raises(ValueError, match=r"init: .*solver"):
        da.minimize(data, solver="sgd", max_epochs=2, batch_fraction=0.5, init=state)
    other = da.PartitionedData.synthetic("epsilon", n=2000, d=15, n_partitions=4, client=client)
    with pytest.raises(ValueError, match=r"init: .*n: state has 3000, this run 2000"):
        da.minimize(other, solver="saga", max_epochs=2, batch_fraction=0.5, init=state)
    other.release()
    with pytest.raises(TypeError, match="init: must be a daskasync.RunState"):
        da.minimize(data, solver="saga", init={"theta": 0})
    with pytest.raises(ValueError, match="init: give either init or theta0"):
        da.minimize(data, solver="saga", batch_fraction=0.5, init=state, theta0=state.theta)


def test_state_files_hold_no_pickle_and_are_written_atomically(client, data, tmp_path):
    res = da.minimize(data, solver="asaga", loss="squared", max_epochs=1, batch_fraction=0.5)
    path = tmp_path / "s.npz"
    res.state.save(path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == sorted(
            ["theta.npy", "task_counts.npy", "alpha.npy", "mean.npy", "offsets.npy", "meta.npy"]
        )
    with np.load(path, allow_pickle=False) as z:  # would raise on an object array
        assert z["alpha"].dtype == np.float64
    back = da.RunState.load(path)
    np.testing.assert_array_equal(back.history.alpha, res.state.history.alpha)
    assert back.fingerprint == res.state.fingerprint and back.updates == res.updates
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(Exception, match="bad.npz|zip|pickle"):
        da.RunState.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", meta=np.array('{"format": "x"}'))
    with pytest.raises(ValueError, match="not a daskasync run state"):
        da.RunState.load(tmp_path / "other.npz")


def test_progress_bar_and_callback(client, data):
    seen: list[da.RunInfo] = []
    err = io.StringIO()
    with redirect_stderr(err):
        res = da.minimize(data, solver="asgd", max_epochs=3, verbose=1, callback=seen.append)
    text = err.getvalue()
    assert "asgd" in text and "epoch=" in text and "stale=" in text and "obj=" in text
    assert f"{res.updates}/{res.updates}" in text
    assert seen[-1].done and not any(i.done for i in seen[:-1])
    assert len(seen) == len(res.history) + 1
    assert seen[-1].objective == pytest.approx(res.objective)
    assert np.isfinite([i.objective for i in seen[1:]]).any()  # checked during the run
    quiet = io.StringIO()
    with redirect_stderr(quiet):
        da.minimize(data, solver="asgd", max_epochs=1)
    assert quiet.getvalue() == ""
    with pytest.raises(ValueError, match="verbose"):
        da.minimize(data, verbose=-1)
    with pytest.raises(TypeError, match="callback"):
        da.minimize(data, callback=3)


_KILLED_RUN = """
import sys, daskasync as da
from distributed import Client
with Client(sys.argv[1]) as c:
    data = da.PartitionedData.synthetic("epsilon", n=3000, d=15, n_partitions=4, client=c)
    da.minimize(data, solver="saga", batch_fraction=0.25, max_epochs=400,
                checkpoint=sys.argv[2], checkpoint_every=5)
"""


def test_a_killed_run_resumes_from_its_checkpoint(client, cluster, data, tmp_path):
    """A run in another process writes a checkpoint every 5 updates and is killed with
    SIGKILL mid-run; continuing from the file gives exactly the uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "run.npz"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, cluster.scheduler_address,
                             str(path)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists() and da.RunState.load(path).updates >= 20:
                break
            assert proc.poll() is None, "the run ended before it was killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    state = da.RunState.load(path)  # never a half-written file
    assert state.updates % 5 == 0 and 20 <= state.updates < 1600
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]  # no temporary left
    kw = {"solver": "saga", "batch_fraction": 0.25}
    target = state.updates + 12
    resumed = da.minimize(data, max_updates=target, init=state, **kw)
    straight = da.minimize(data, max_updates=target, **kw)
    np.testing.assert_array_equal(resumed.theta, straight.theta)
    assert resumed.objective == straight.objective


def test_checkpoint_options(client, data, tmp_path):
    path = tmp_path / "c.npz"
    res = da.minimize(data, solver="asgd", max_epochs=2, checkpoint=path, checkpoint_every=3)
    last = da.RunState.load(path)  # the final state is saved at the end
    assert last.updates == res.updates and np.array_equal(last.theta, res.theta)
    with pytest.raises(ValueError, match="need a checkpoint path"):
        da.minimize(data, checkpoint_every=3)
    with pytest.raises(ValueError, match="checkpoint: folder"):
        da.minimize(data, checkpoint=tmp_path / "missing" / "c.npz")
    with pytest.raises(ValueError, match="checkpoint_every"):
        da.minimize(data, checkpoint=path, checkpoint_every=0)
