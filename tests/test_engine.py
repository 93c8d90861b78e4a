"""The engine on a real cluster: exact staleness, versions on the cluster, barriers,
stragglers, errors and clean-up."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import assert_no_tasks, scheduler_keys
from distributed import Event, SchedulerPlugin

import daskasync as da
from daskasync.engine import SSP, Async, Quorum


def _gated(block, w, *, partition, task_index, seed, run):
    """Waits for the test to open its gate, then returns which task it was."""
    Event(f"{run}-p{partition}-t{task_index}").wait(timeout=60)
    return (partition, task_index, float(np.asarray(w)[0]))


def _open(client, run, p, t):
    Event(f"{run}-p{p}-t{t}", client=client).set()


def _wait_ready(engine, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not engine.has_ready():
        assert time.monotonic() < deadline, "result never arrived"
        time.sleep(0.01)


@pytest.fixture
def small_data(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = np.sign(X[:, 0] + 0.1 * rng.normal(size=300))
    data = da.PartitionedData.from_arrays(X, y, n_partitions=3, client=client)
    yield data
    data.release()


def test_staleness_is_exact_with_a_deterministic_schedule(client, small_data):
    run = "gate-staleness"
    eng = da.Engine(small_data, barrier=Async(max_staleness=2), name="test")
    kw = {"run": run}
    eng.publish(np.zeros(5))
    eng.submit(_gated, [0, 1, 2], kw)  # all at clock 0
    seen = []

    def step(p, t, resubmit=True):
        _open(client, run, p, t)
        value, attrs = eng.collect_all()
        seen.append((attrs.partition, attrs.task_index, attrs.version, attrs.staleness))
        assert value[:2] == (attrs.partition, attrs.task_index)
        eng.tick()
        v = eng.publish(np.full(5, float(eng.clock)))
        if resubmit:
            eng.submit(_gated, [attrs.partition], kw)
        # the task computed on the version it was handed
        assert value[2] == float(attrs.version)
        return attrs, v

    a, _ = step(1, 0)  # p1 first: nothing applied meanwhile
    assert (a.staleness, a.version) == (0, 0)
    a, _ = step(0, 0)  # p0 was submitted at clock 0, collected at clock 1
    assert a.staleness == 1
    a, _ = step(1, 1)  # p1's second task: submitted at clock 1, collected at clock 2
    assert (a.staleness, a.version) == (1, 1)
    # p2 (submitted at clock 0) finishes at clock 3: staleness 3 > tau = 2 -> dropped
    _open(client, run, 2, 0)
    _wait_ready(eng)
    a, _ = step(0, 1, resubmit=False)  # p0's task from clock 2 -> staleness 1; p2 was dropped
    assert (a.partition, a.staleness, a.version) == (0, 1, 2)
    assert seen == [(1, 0, 0, 0), (0, 0, 0, 1), (1, 1, 1, 1), (0, 1, 2, 1)]
    co = eng.coordinator
    assert co.n_dropped == 1 and co.states[2].dropped == 1 and co.states[2].staleness == 3
    assert co.states[2].available and co.states[2].applied == 0
    assert sum(w["dropped"] for w in co.worker_stats().values()) == 1
    workers = set(client.scheduler_info()["workers"])
    assert {s.worker for s in co.states if s.worker} <= workers
    # p1's third task (submitted at clock 3) is still in flight: cancel leaves nothing behind
    assert eng.in_flight == 1
    eng.close()
    _open(client, run, 1, 2)
    assert eng.in_flight == 0
    assert_no_tasks(client)


def test_versions_on_the_cluster_stay_within_the_window(client, small_data):
    window = 4
    seen_max = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen_max.append(len(scheduler_keys(client, "daskasync-model-")))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        res = da.minimize(
            small_data, solver="asgd", transport="scatter", window=window, max_updates=600,
            batch_fraction=0.5, step_size=0.1,
        )
    finally:
        stop.set()
        watcher.join()
    assert res.updates == 600
    assert len(seen_max) > 10
    # the window's versions plus at most one per in-flight task (P = 3)
    assert max(seen_max) <= window + small_data.n_partitions
    assert max(seen_max) >= 1  # versions did live on the cluster
    assert_no_tasks(client, ("daskasync-model-",))


def test_broadcaster_scatters_each_version_once_and_tasks_read_back(client, small_data):
    eng = da.Engine(small_data, window=3, transport="scatter", name="test")
    for i in range(5):
        eng.publish(np.full(5, float(i)))
    f3 = eng.broadcaster.scatter(3)
    assert eng.broadcaster.scatter(3) is f3 and eng.broadcaster.n_scattered == 1
    with pytest.raises(LookupError, match="outside the history window"):
        eng.broadcaster.get(1)

    def read_back(block, w, *, old, **_):
        return float(w[0]), float(old[0])

    eng.submit(read_back, [0], {"old": f3}, version=4)
    (now, old), attrs = eng.collect_all()
    assert (now, old) == (4.0, 3.0) and attrs.version == 4
    assert eng.broadcaster.n_scattered == 2  # version 4 once, for its task
    for i in range(5, 9):
        eng.publish(np.full(5, float(i)))
    assert eng.broadcaster.n_on_cluster == 0  # 3 and 4 fell out of the window
    del f3
    eng.close()
    assert_no_tasks(client)


def test_inline_transport_puts_no_model_keys_on_the_cluster(client, small_data):
    res = da.minimize(small_data, solver="asgd", transport="inline", max_updates=200)
    assert res.updates == 200
    assert scheduler_keys(client, "daskasync-model-") == []  # not even transiently: none made


class _GraphUpdates(SchedulerPlugin):
    """Counts the graph updates the scheduler receives (a public scheduler-plugin hook;
    the scheduler's own event log of them differs between distributed releases)."""

    name = "test-graph-updates"

    def __init__(self) -> None:
        self.count = 0

    def update_graph(self, scheduler, **kwargs) -> None:
        self.count += 1


def _graph_updates(client) -> int:
    """Graph updates the scheduler has received so far."""
    return client.run_on_scheduler(
        lambda dask_scheduler: dask_scheduler.plugins[_GraphUpdates.name].count
    )


def _where(block, w, *, partition, **_):
    from distributed import get_worker

    return partition, get_worker().address


def test_scattered_versions_go_to_the_workers_holding_their_tasks_blocks(client):
    """A version too large to travel inline is scattered to the workers that hold the
    blocks of the tasks it is for, so each task runs next to its block: a large model would
    otherwise draw every task to the one worker holding it, and the blocks after them."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    data = da.PartitionedData.from_arrays(X, np.sign(X[:, 0]), n_partitions=4, client=client)
    homes = {p: locs[0] for p, locs in data.locations().items()}
    assert len(set(homes.values())) == 2  # both workers hold blocks
    eng = da.Engine(data, name="test")
    big = np.zeros(400_000)  # 3.2 MB: above the 1 MB inline limit
    for _ in range(3):  # synchronous rounds: one version for every partition
        eng.publish(big)
        values, _attrs = eng.round(_where)
        assert dict(values) == homes  # (the memory manager may trim the copies by now)
    for p in range(4):  # one task per version: the version goes to its block's worker
        eng.publish(big)
        eng.submit(_where, [p])
        (part, worker), _attrs = eng.collect_all()
        assert (part, worker) == (p, homes[p])
        who = client.who_has([eng.broadcaster._futures[eng.version]])
        assert list(next(iter(who.values()))) == [homes[p]]
    eng.close()
    data.release()


def test_work_for_several_partitions_reaches_the_scheduler_in_one_message(client, small_data):
    client.register_plugin(_GraphUpdates())
    eng = da.Engine(small_data, transport="scatter", name="test")
    eng.publish(np.zeros(5))
    extra = client.scatter(np.full(5, 7.0))

    def tagged(block, w, *, partition, task_index, seed, tag, extra):
        return partition, task_index, tag, float(w[0]), float(extra[0])

    before = _graph_updates(client)
    tickets = eng.submit(tagged, [0, 1, 2], lambda p, t: {"tag": 10 * p + t, "extra": extra})
    deadline = time.monotonic() + 30
    while len(set(scheduler_keys(client, "test-grad-"))) < 3:  # one unique key each
        assert time.monotonic() < deadline, scheduler_keys(client, "test-grad-")
        time.sleep(0.01)
    got = sorted(eng.collect() for _ in tickets)
    # each task got its own partition, task index and arguments (a future inside them too)
    assert got == [(t.partition, t.task_index, 10 * t.partition + t.task_index, 0.0, 7.0)
                   for t in tickets]
    assert _graph_updates(client) - before == 1
    before = _graph_updates(client)
    values, attrs = eng.round(tagged, lambda p, t: {"tag": -1, "extra": extra})
    assert [v[0] for v in values] == [0, 1, 2] and [a.partition for a in attrs] == [0, 1, 2]
    assert _graph_updates(client) - before == 1  # a round is one message too
    eng.close()
    client.unregister_scheduler_plugin(_GraphUpdates.name)
    extra.release()
    assert_no_tasks(client)


class _Unhashed:
    """A task argument that counts how often dask hashed it (its token)."""

    hashed = 0

    def __init__(self, value):
        self.value = value

    def __dask_tokenize__(self):
        type(self).hashed += 1
        return self.value


def test_launching_tasks_does_not_hash_their_arguments(client, small_data):
    """Tasks have unique keys: hashing their arguments (a SAGA task's history scalars)
    would cost the driver time per launch for a token nobody uses."""
    eng = da.Engine(small_data, name="test")
    eng.publish(np.zeros(5))

    def read(block, w, *, partition, task_index, seed, arg):
        return arg.value

    _Unhashed.hashed = 0
    tickets = eng.submit(read, [0, 1, 2], lambda p, t: {"arg": _Unhashed(p)})
    assert sorted(eng.collect() for _ in tickets) == [0, 1, 2]
    values, _attrs = eng.round(read, lambda p, t: {"arg": _Unhashed(10 + p)})
    assert values == [10, 11, 12]
    assert _Unhashed.hashed == 0
    eng.close()
    assert_no_tasks(client)


class RecordingQuorum(Quorum):
    """Quorum that records how many partitions were available at each decision."""

    def __init__(self, beta):
        super().__init__(beta=beta)
        object.__setattr__(self, "log", [])

    def select(self, co):
        out = super().select(co)
        self.log.append((len(co.available()), len(out)))
        return out


def test_quorum_never_starts_a_round_below_quorum(client):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(800, 4))
    y = np.sign(X[:, 0])
    data = da.PartitionedData.from_arrays(X, y, n_partitions=8, client=client)
    barrier = RecordingQuorum(beta=0.75)
    res = da.minimize(
        data, solver="asgd", barrier=barrier, max_updates=300,
        stragglers=da.Intensity(c=3.0), avg_task_time=0.01,
    )
    assert res.updates == 300
    quorum = barrier.quorum(8)
    assert quorum == 6
    started = [a for a, n in barrier.log if n > 0]
    waited = [a for a, n in barrier.log if n == 0]
    assert started and min(started) >= quorum
    assert waited and max(waited) < quorum  # it did have to wait
    data.release()


class RecordingSSP(SSP):
    def __init__(self, tau):
        super().__init__(tau=tau)
        object.__setattr__(self, "spreads", [])

    def select(self, co):
        applied = [s.applied for s in co.states]
        self.spreads.append(max(applied) - min(applied))
        return super().select(co)


@pytest.mark.parametrize("tau", [1, 3])
def test_ssp_never_lets_the_spread_exceed_tau(client, tau):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 4))
    y = np.sign(X[:, 0])
    data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client)
    slow = da.Intensity(c=4.0)  # partition 0 is four times slower
    barrier = RecordingSSP(tau)
    res = da.minimize(data, solver="asgd", barrier=barrier, max_updates=120,
                      stragglers=slow, avg_task_time=0.01)
    applied = [p["applied"] for p in res.partition_stats]
    assert max(barrier.spreads) <= tau and max(applied) - min(applied) <= tau
    assert max(barrier.spreads) == tau  # the bound was reached, so it was enforced
    # the same stragglers without SSP: the fast partitions run far ahead
    free = da.minimize(data, solver="asgd", max_updates=120, stragglers=slow, avg_task_time=0.01)
    applied = [p["applied"] for p in free.partition_stats]
    assert max(applied) - min(applied) > tau
    data.release()


def test_bounded_staleness_drops_stale_results(client):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 4))
    y = np.sign(X[:, 0])
    data = da.PartitionedData.from_arrays(X, y, n_partitions=6, client=client)
    res = da.minimize(data, solver="asgd", barrier="bounded", tau=2, max_updates=200,
                      stragglers=da.Intensity(c=5.0), avg_task_time=0.01, record_every=1)
    assert res.dropped > 0
    assert res.dropped == sum(p["dropped"] for p in res.partition_stats)
    assert res.partition_stats[0]["dropped"] > 0  # the straggler's results were too stale
    assert max(r.max_staleness for r in res.history) <= 2  # nothing staler was applied
    data.release()


def test_predicate_barrier_chooses_partitions(client, small_data):
    def only_even(states, clock):
        return [s.partition for s in states if s.partition % 2 == 0]

    res = da.minimize(small_data, solver="asgd", barrier=only_even, max_updates=50)
    tasks = [p["tasks"] for p in res.partition_stats]
    assert tasks[1] == 0 and tasks[0] > 0 and tasks[2] > 0


def test_predicate_that_raises_stops_the_run_cleanly(client, small_data):
    def broken(states, clock):
        if clock >= 5:
            raise KeyError("boom")
        return True

    with pytest.raises(da.BarrierError, match="boom"):
        da.minimize(small_data, solver="asgd", barrier=broken, max_updates=100)
    assert_no_tasks(client)


def test_barrier_that_never_selects_is_a_clear_error(client, small_data):
    with pytest.raises(da.BarrierError, match="no task is in flight"):
        da.minimize(small_data, solver="asgd", barrier=lambda s, c: False, max_updates=10)
    assert_no_tasks(client)


def _which(block, w, *, partition, task_index, seed):
    return partition, task_index


def test_tasks_cancelled_with_a_lost_block_in_their_message_all_run_again(client, small_data):
    """The scheduler cancels a whole message of tasks when one needs a lost key: every task
    of it runs again, whichever is repaired first (the others' inputs are intact)."""
    eng = da.Engine(small_data, name="test")
    eng.publish(np.zeros(5))
    client.cancel(small_data.parts[0])  # as if its only holder had died
    eng.submit(_which, [0, 1, 2])  # one message: all three are cancelled
    got = sorted(eng.collect_all()[0] for _ in range(3))
    assert got == [(0, 0), (1, 0), (2, 0)]
    assert small_data.lost() == []
    rec = eng.recovery.counts()
    # recent distributed cancels the whole message (3 tasks run again); older releases
    # (2024.8) only the task that needs the lost block
    assert 1 <= rec["tasks"] <= 3 and rec["blocks_lost"] == rec["blocks"] == 1
    eng.close()


class FailingLoss(da.LogisticLoss):
    def derivative(self, z, y):
        raise ZeroDivisionError("user loss failed")


def test_failing_task_stops_the_run_and_cancels_outstanding_work(client, small_data):
    with pytest.raises(ZeroDivisionError, match="user loss failed"):
        da.minimize(small_data, solver="asgd", loss=FailingLoss(), max_updates=100)
    assert_no_tasks(client)
    with pytest.raises(ZeroDivisionError, match="user loss failed"):
        da.minimize(small_data, solver="sgd", loss=FailingLoss(), max_updates=100)
    assert_no_tasks(client)


@pytest.mark.parametrize("solver", ["sgd", "asgd"])
def test_straggler_delay_is_injected_identically(client, solver):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 4))
    y = np.sign(X[:, 0])
    data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client)
    res = da.minimize(data, solver=solver, max_updates=12 if solver == "sgd" else 48,
                      stragglers="intensity", straggler_c=2.0, avg_task_time=0.05)
    times = [p["mean_task_time"] for p in res.partition_stats]
    assert times[0] >= 0.1  # partition 0 sleeps c * avg = 0.1 s in every task
    assert max(times[1:]) < 0.05
    data.release()


def test_straggler_average_is_measured_during_warmup(client, small_data):
    eng = da.Engine(small_data, stragglers="cloud", warmup_tasks=6, name="test")
    assert eng.avg_task_time == 0.0
    eng.publish(np.zeros(5))

    def work(block, w, **_):
        time.sleep(0.02)
        return 0

    for _ in range(3):
        eng.submit(work)
        for _ in range(3):
            eng.collect_all()
    assert eng.avg_task_time >= 0.02  # measured from the warm-up tasks' compute time
    assert eng._task_delay_args()[1] == eng.avg_task_time
    eng.close()


def test_stopping_rules(client, small_data):
    r = da.minimize(small_data, solver="asgd", time_budget=1.0)
    assert r.stop_reason == "time_budget" and 1.0 <= r.wall_time < 5.0
    r = da.minimize(small_data, solver="sgd", max_epochs=3, batch_fraction=0.5)
    assert r.stop_reason == "max_epochs" and r.updates == 6 and abs(r.epochs - 3) < 0.02
    r = da.minimize(small_data, solver="sgd", gtol=1e-3, batch_fraction=1.0, step_size=1.0,
                    step_schedule="constant", lam=0.1, max_updates=5000)
    assert r.stop_reason == "gtol" and r.grad_norm <= 1e-3 and r.converged
    r = da.minimize(small_data, solver="asgd", tol=1e-6, lam=0.1, max_updates=20000)
    assert r.stop_reason == "tol" and r.converged
    # history: objective recorded, updates increasing, first record is the start point
    h = r.history
    assert h[0].update == 0 and abs(h[0].objective - np.log(2)) < 1e-12
    assert all(a.update < b.update for a, b in zip(h, h[1:], strict=False))
    assert np.isfinite(r.history_array("objective")).all()


def test_copies_of_a_version_go_to_each_worker_under_one_key(client):
    """``scatter_retrying(..., broadcast=True)`` sends a copy to each worker itself (not
    the scheduler's replication, which loops forever when a worker it copies to dies:
    dask/distributed#5704); a copy for a worker that is gone is left out. This relies on
    the scheduler adding a second scatter of a key as a replica: it fails loudly if that
    changes."""
    from daskasync._comm import scatter_retrying

    workers = sorted(client.nthreads())
    value = np.arange(300_000.0)
    [fut] = client.sync(scatter_retrying, client, [value], keys=["test-copies-a"],
                        workers=workers, broadcast=True)
    assert sorted(client.who_has([fut])[fut.key]) == workers
    gone = "tcp://127.0.0.1:1"  # no such worker: the scheduler refuses that copy
    [fut2] = client.sync(scatter_retrying, client, [value], keys=["test-copies-b"],
                         workers=[gone, workers[0]], broadcast=True)
    assert list(client.who_has([fut2])[fut2.key]) == [workers[0]]
    assert np.array_equal(client.submit(np.copy, fut2, pure=False).result(), value)
    del fut, fut2


def test_who_has_leaves_out_a_future_cancelled_during_the_call(client):
    """The scheduler may cancel a scattered block ("already forgotten": its worker died
    with the only copy) after the look for cancelled futures and before ``who_has``, which
    then raises ``CancelledError`` (this failed a placement under a killed worker). The
    race is forced here: the future is really cancelled on its first look."""
    from concurrent.futures import CancelledError

    from distributed import Future

    from daskasync._comm import awho_has, who_has_live

    class CancelledOnFirstLook(Future):
        looked = False

        def cancelled(self):
            if not self.looked:
                self.looked = True
                self.cancel()
                return False
            return super().cancelled()

    kept = client.scatter(np.arange(3.0), hash=False)
    doomed = client.scatter(np.arange(4.0), hash=False)
    racing = CancelledOnFirstLook(doomed.key, client)
    cancelled = client.scatter(1.0, hash=False)
    cancelled.cancel()
    with pytest.raises(CancelledError):  # distributed's contract the retry relies on
        client.who_has([kept, cancelled])
    assert list(who_has_live(client, [kept, racing])) == [kept.key]
    again = CancelledOnFirstLook(client.scatter(2.0, hash=False).key, client)
    assert list(client.sync(awho_has, client, [kept, again])) == [kept.key]
    del kept, doomed, racing, again, cancelled


def _tagged_value(block, w, *, partition, task_index, seed):
    return partition


def test_finished_tasks_and_old_versions_are_released_after_the_next_launch(client,
                                                                            small_data):
    """A round's finished tasks and a version leaving the window are released right after
    the next launch, not before it (a release sent first would hold the launch back for
    the client's batching window); closing the engine releases what is still held."""
    eng = da.Engine(small_data, window=1, transport="scatter", name="test-release")
    eng.publish(np.zeros(5))
    assert eng.round(_tagged_value)[0] == [0, 1, 2]
    first = set(scheduler_keys(client, "test-release-grad-"))
    assert len(first) == 3  # gathered, and held until the next launch
    eng.publish(np.ones(5))  # version 0 leaves the window of 1: held too
    assert eng.broadcaster.key(0) in scheduler_keys(client, "daskasync-model-")
    eng.round(_tagged_value)
    deadline = time.monotonic() + 10
    while (first & set(scheduler_keys(client, "test-release-grad-"))
           or len(scheduler_keys(client, "daskasync-model-" + eng.run_id)) > 1):
        assert time.monotonic() < deadline, "not released after the next launch"
        time.sleep(0.02)
    eng.close()
    assert_no_tasks(client, prefixes=("test-release-", "daskasync-model-" + eng.run_id))
