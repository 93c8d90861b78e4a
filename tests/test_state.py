"""Run states: continuing a run equals one longer run; save/load without pickle; refusing
a state from other data or settings; the progress bar and the per-record callback."""

from __future__ import annotations

import io
import zipfile
from contextlib import redirect_stderr

import numpy as np
import pytest
import scheduler_probe
from distributed import Client

import daskasync as da


@pytest.fixture
def data(client):
    d = da.PartitionedData.synthetic("epsilon", n=3000, d=15, n_partitions=4, client=client)
    yield d
    d.release()


@pytest.mark.parametrize("solver", ["sgd", "saga", "lbfgs"])
def test_continuing_a_sync_run_from_its_checkpoint_equals_one_longer_run(client, data, solver,
                                                                        tmp_path):
    """N epochs, checkpoint, N more == 2N epochs, bit for bit; the settings left out of the
    fingerprint (they do not move a synchronous solver's iterates) may differ."""
    kw = {"solver": solver, "fit_intercept": True}
    if solver != "lbfgs":  # (L-BFGS's curvature pairs travel in the state file)
        kw["batch_fraction"] = 0.25
    longer = da.minimize(data, max_epochs=6, **kw)
    path = tmp_path / "state.npz"
    first = da.minimize(data, max_epochs=3, checkpoint=path, **kw)
    rest = da.minimize(data, max_epochs=6, init=da.RunState.load(path), window=3,
                       transport="scatter", staleness_aware=True, record_every=1, **kw)
    assert rest.updates == longer.updates == (6 if solver == "lbfgs" else 24)
    np.testing.assert_array_equal(rest.theta, longer.theta)  # bit for bit
    assert rest.history[0].update == first.updates  # the records continue
    if solver == "saga":
        np.testing.assert_array_equal(rest.state.history.alpha, longer.state.history.alpha)
    if solver == "lbfgs":
        np.testing.assert_array_equal(rest.state.solver_state.s, longer.state.solver_state.s)
    # restarting from scratch instead would repeat the first half's samples: not equal
    again = da.minimize(data, max_epochs=3, theta0=first.theta, **kw)
    assert np.abs(again.theta - longer.theta).max() > 1e-8


@pytest.mark.parametrize("solver", ["asaga", "albfgs"])
def test_continuing_an_async_run_continues_its_model_history_and_solver_state(client, data,
                                                                            solver):
    """What continuing an asynchronous run means: the model, the records, the clock, the
    task counters, the gradient history and the solver's state go on from the state (the
    arrival order of results is not reproduced, so no bit-for-bit claim)."""
    first = da.minimize(data, solver=solver, max_updates=60, batch_fraction=0.5)
    rest = da.minimize(data, solver=solver, max_updates=64, batch_fraction=0.5,
                       init=first.state)
    assert rest.updates == 64
    assert rest.history[0].update == first.updates  # starts at the saved model ...
    assert rest.history[0].objective == pytest.approx(first.objective, rel=1e-12)
    assert np.all(rest.state.task_counts >= first.state.task_counts)
    assert rest.state.task_counts.sum() > first.state.task_counts.sum()
    if solver == "asaga":  # ... with its gradient history: every update counted in it
        assert rest.state.history.n_updates == rest.updates
        assert first.state.history.n_updates == first.updates  # (the input is not modified)
    else:  # ... and its curvature pairs: four more updates leave most of them in place
        old, new = first.state.solver_state, rest.state.solver_state
        assert len(old.s) >= 3 and new.steps > old.steps
        kept = [row for row in old.s if any(np.array_equal(row, r) for r in new.s)]
        assert len(kept) >= len(old.s) - 4 >= 1


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


# -- the fingerprint: every setting that changes the iterates, and the data's content -----

_BASE = {
    "asaga": {"solver": "asaga", "batch_fraction": 0.5},
    "albfgs": {"solver": "albfgs"},
    "saga": {"solver": "saga", "batch_fraction": 0.5},
}

#: (base run, a changed setting, the name the refusal must give)
_CHANGED = [
    ("asaga", {"barrier": "quorum"}, "barrier"),
    ("asaga", {"tau": 2}, "tau"),
    ("asaga", {"window": 4}, "window"),
    ("asaga", {"staleness_aware": True}, "staleness_aware"),
    ("asaga", {"stragglers": "intensity"}, "stragglers"),
    ("asaga", {"warmup_tasks": 3}, "warmup_tasks"),
    ("asaga", {"avg_task_time": 0.01}, "avg_task_time"),
    ("asaga", {"combine": 0.5}, "combine"),
    ("asaga", {"inner": "batch"}, "inner"),
    ("asaga", {"step_schedule": "invsqrt"}, "step_schedule"),
    ("asaga", {"step_size": 0.01}, "step_size"),
    ("asaga", {"seed": 1}, "seed"),
    ("asaga", {"batch_fraction": 0.25}, "batch_fraction"),
    ("asaga", {"lam": 0.1}, "lam"),
    ("asaga", {"penalty": "elasticnet"}, "penalty"),
    ("asaga", {"penalty": "elasticnet", "l1_ratio": 0.5}, "l1_ratio"),
    ("asaga", {"fit_intercept": True}, "fit_intercept"),
    ("asaga", {"loss": "squared"}, "loss"),
    ("asaga", {"solver": "asgd"}, "solver"),
    ("albfgs", {"solver_options": {"memory": 3}}, "memory"),
    ("albfgs", {"solver_options": {"quorum": 0.75}}, "quorum"),
    ("albfgs", {"solver_options": {"patience": 3.0}}, "patience"),
    ("albfgs", {"solver_options": {"compensate": False}}, "compensate"),
    ("albfgs", {"barrier": "bounded"}, "barrier"),
    ("saga", {"step_schedule": lambda t: 0.01}, "step_schedule"),
]


@pytest.fixture(scope="module")
def saved(cluster):
    """A client, data, and a short run's state of each base."""
    with Client(cluster) as c:
        scheduler_probe.install(c)
        d = da.PartitionedData.synthetic("epsilon", n=3000, d=15, n_partitions=4, client=c)
        states = {k: da.minimize(d, max_updates=8, **kw).state for k, kw in _BASE.items()}
        yield c, d, states
        d.release()


@pytest.mark.parametrize(("base", "change", "name"), _CHANGED,
                         ids=[f"{b}-{n}" for b, _, n in _CHANGED])
def test_a_state_is_refused_by_a_run_that_changes_a_setting(saved, base, change, name):
    """Each setting that changes the iterates is in the fingerprint, named in the refusal,
    which comes before any task reaches the cluster."""
    client, data, states = saved
    before = scheduler_probe.seen(client)
    with pytest.raises(ValueError, match=rf"init: the state comes from .*\b{name}: state has"):
        da.minimize(data, max_updates=16, init=states[base], **{**_BASE[base], **change})
    assert scheduler_probe.seen(client) == before


def test_every_difference_is_named_at_once(saved):
    client, data, states = saved
    with pytest.raises(ValueError) as err:
        da.minimize(data, max_updates=16, init=states["asaga"], seed=3, window=2, tau=5,
                    **_BASE["asaga"])
    text = str(err.value)
    for part in ("seed: state has 0, this run 3", "window: state has None, this run 2",
                 "tau: state has None, this run 5"):
        assert part in text
    assert "content" not in text and "solver:" not in text


def test_settings_that_do_not_change_the_iterates_may_differ(saved, tmp_path):
    """Stopping criteria, transport, records, progress, callback and checkpoints are left
    out of the fingerprint."""
    client, data, states = saved
    seen = []
    res = da.minimize(data, max_updates=12, init=states["asaga"], tol=1e-12,
                      transport="scatter", record_every=2, record_objective=False, verbose=0,
                      callback=seen.append, checkpoint=tmp_path / "c.npz", checkpoint_every=2,
                      **_BASE["asaga"])
    assert res.updates == 12 and seen
    assert da.RunState.load(tmp_path / "c.npz").fingerprint == states["asaga"].fingerprint


def _arrays(n=240, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.where(X[:, 0] + 0.1 * rng.normal(size=n) > 0, 1.0, -1.0)


def test_a_state_from_other_content_is_refused_naming_each_partition(client):
    """Same shape, other content: each partition whose block differs is named (values,
    labels, the order of rows), and the check comes before any solver task."""
    scheduler_probe.install(client)
    X, y = _arrays()
    kw = {"solver": "saga", "batch_fraction": 0.5}
    made = []

    def place(X, y, **opts):
        made.append(da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client,
                                                   **{"shuffle": False, **opts}))
        return made[-1]

    state = da.minimize(place(X, y), max_updates=4, **kw).state
    assert len(state.fingerprint["content"]) == 4
    X2 = X.copy()
    X2[-1, 2] += 1e-9  # the last row: partition 3
    y2 = y.copy()
    y2[0] = -y2[0]  # a label of partition 0
    cases = [(place(X2, y), ["partition 3's content"]),
             (place(X, y2), ["partition 0's content"]),
             (place(X, y, shuffle=True, random_state=1), [f"partition {i}'s content"
                                                          for i in range(4)])]
    for other, named in cases:
        start = scheduler_probe.seen(client)[0]
        with pytest.raises(ValueError) as err:
            da.minimize(other, max_updates=8, init=state, **kw)
        text = str(err.value)
        assert text.startswith("init: the state comes from other data")
        assert [f"partition {i}'s content" for i in range(4) if f"partition {i}'s" in text] \
            == named
        assert "state has" not in text  # no setting differs
        blocks = {f.key for d in made for f in d.parts}  # (scattered: seen when first used)
        new = [k for k in scheduler_probe.keys_since(client, start) if k not in blocks]
        assert new and all("-digest-p" in k for k in new)  # only the digests ran
    same = place(X, y)  # other object, same content: continues
    assert da.minimize(same, max_updates=8, init=state, **kw).updates == 8
    for d in made:
        d.release()


def test_digests_are_computed_once_per_data_object_on_the_workers(client, data):
    from daskasync.fingerprint import block_digest

    scheduler_probe.install(client)
    start = scheduler_probe.seen(client)[0]
    first = da.minimize(data, solver="asgd", max_updates=4)
    da.minimize(data, solver="sgd", max_updates=4)
    digests = [k for k in scheduler_probe.keys_since(client, start) if "-digest-p" in k]
    assert len(digests) == data.n_partitions  # one task per partition, one pass
    blocks = client.gather(data.parts)
    assert first.state.fingerprint["content"] == [block_digest(b) for b in blocks]


def test_a_state_file_of_an_older_format_is_refused(tmp_path):
    np.savez(tmp_path / "old.npz", meta=np.array('{"format": "daskasync-runstate-2"}'))
    with pytest.raises(ValueError, match="older daskasync .* start the run again"):
        da.RunState.load(tmp_path / "old.npz")


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
