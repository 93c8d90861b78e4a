"""Cluster-free tests of the ASYNC engine's bookkeeping (daskasync.engine.coordinator)."""

from __future__ import annotations

import dataclasses

import pytest

from daskasync.engine.coordinator import (
    Coordinator,
    PartitionState,
    ResultAttributes,
    Ticket,
    WorkerStats,
)


class FakeTime:
    """A controllable ``time_fn``: returns ``t`` and then advances it by ``step``."""

    def __init__(self, start: float = 100.0, step: float = 1.0) -> None:
        self.t = start
        self.step = step

    def __call__(self) -> float:
        now = self.t
        self.t += self.step
        return now


def done(co: Coordinator, ticket: Ticket, worker: str = "w", duration: float = 1.0, **kw):
    return co.complete(ticket, worker=worker, duration=duration, **kw)


# -- initial state ---------------------------------------------------------------------------
def test_initial_state():
    co = Coordinator(4)
    assert co.clock == 0
    assert co.in_flight == 0
    assert co.available() == [0, 1, 2, 3]
    assert [s.partition for s in co.states] == [0, 1, 2, 3]
    assert all(isinstance(s, PartitionState) for s in co.states)
    assert (co.n_submitted, co.n_collected, co.n_dropped) == (0, 0, 0)
    assert co.worker_stats() == {}
    assert co.staleness_window() == (0.0, 0)


def test_states_are_independent_objects():
    co = Coordinator(3)
    co.states[0].applied = 5
    assert [s.applied for s in co.states] == [5, 0, 0]
    assert Coordinator(3).states[0].applied == 0


def test_tick_returns_new_clock():
    co = Coordinator(1)
    assert [co.tick() for _ in range(3)] == [1, 2, 3]
    assert co.clock == 3


# -- tickets and staleness -------------------------------------------------------------------
def test_staleness_two_submits_two_ticks():
    co = Coordinator(2)
    t0 = co.submit(0, version=0)
    t1 = co.submit(1, version=0)
    assert (t0.clock, t1.clock) == (0, 0)
    co.tick()
    co.tick()
    a1 = done(co, t1)
    assert a1.staleness == 2
    assert a1.partition == 1 and a1.version == 0
    assert not a1.dropped
    # p0 was submitted at the same clock: same staleness
    assert done(co, t0).staleness == 2
    # a fresh task on p0 at clock 2, collected after one tick
    t0b = co.submit(0, version=2)
    assert t0b.clock == 2
    co.tick()
    assert done(co, t0b).staleness == 1


def test_hand_computed_sequence():
    co = Coordinator(3)
    t0 = co.submit(0, version=0)  # clock 0
    t1 = co.submit(1, version=0)  # clock 0
    a = done(co, t0)
    assert a.staleness == 0
    co.tick()  # clock 1
    t0b = co.submit(0, version=1)  # clock 1
    t2 = co.submit(2, version=1)  # clock 1
    assert done(co, t1).staleness == 1
    co.tick()  # clock 2
    assert done(co, t2).staleness == 1
    co.tick()  # clock 3
    assert done(co, t0b).staleness == 2
    co.tick()  # clock 4
    assert co.clock == 4
    # per-partition task counters
    assert [t0.task_index, t0b.task_index, t1.task_index, t2.task_index] == [0, 1, 0, 0]
    assert [s.submitted for s in co.states] == [2, 1, 1]
    assert [s.tasks_done for s in co.states] == [2, 1, 1]
    assert [s.applied for s in co.states] == [2, 1, 1]
    assert [s.staleness for s in co.states] == [2, 1, 1]  # of the last result
    assert [s.last_version for s in co.states] == [1, 0, 1]
    assert (co.n_submitted, co.n_collected, co.n_dropped) == (4, 4, 0)
    assert co.in_flight == 0


def test_ticket_fields():
    ft = FakeTime(start=10.0)
    co = Coordinator(2, time_fn=ft)
    co.tick()
    t = co.submit(1, version=7, kind="eval")
    assert t == Ticket(partition=1, version=7, clock=1, submit_time=10.0, task_index=0, kind="eval")
    assert co.submit(0, version=7).kind == "grad"


def test_result_attributes_fields_and_times():
    ft = FakeTime(start=10.0, step=2.5)
    co = Coordinator(2, time_fn=ft)
    t = co.submit(1, version=3)  # submit_time 10.0
    co.tick()
    a = co.complete(t, worker="tcp://w1", duration=0.75, compute_time=0.25)  # collect 12.5
    assert a == ResultAttributes(
        partition=1,
        version=3,
        staleness=1,
        worker="tcp://w1",
        duration=0.75,
        compute_time=0.25,
        submit_time=10.0,
        collect_time=12.5,
        task_index=0,
        dropped=False,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.staleness = 0  # type: ignore[misc]


def test_compute_time_defaults_to_duration():
    co = Coordinator(1)
    a = done(co, co.submit(0, 0), duration=0.3)
    assert a.compute_time == 0.3
    a = co.complete(co.submit(0, 0), worker="w", duration=0.3, compute_time=0.0)
    assert a.compute_time == 0.0


def test_state_records_last_worker():
    co = Coordinator(2)
    done(co, co.submit(0, 0), worker="a")
    assert co.states[0].worker == "a"
    done(co, co.submit(0, 0), worker="b")
    assert co.states[0].worker == "b"
    assert co.states[1].worker is None


# -- dropping stale results ------------------------------------------------------------------
def test_dropped_when_staleness_exceeds_bound():
    co = Coordinator(3)
    t = co.submit(0, version=0)
    co.tick()
    co.tick()
    a = done(co, t, worker="w1", max_staleness=1)
    assert a.staleness == 2
    assert a.dropped
    st = co.states[0]
    assert (st.dropped, st.applied, st.tasks_done) == (1, 0, 1)
    assert st.available
    assert co.workers["w1"].dropped == 1
    assert co.worker_stats()["w1"]["dropped"] == 1
    assert (co.n_dropped, co.n_collected) == (1, 1)
    assert co.in_flight == 0


def test_not_dropped_at_the_bound():
    co = Coordinator(2)
    t = co.submit(0, 0)
    co.tick()
    co.tick()
    a = done(co, t, max_staleness=2)
    assert a.staleness == 2 and not a.dropped
    assert co.states[0].applied == 1 and co.states[0].dropped == 0
    assert co.n_dropped == 0


def test_max_staleness_zero_and_none():
    co = Coordinator(2)
    assert not done(co, co.submit(0, 0), max_staleness=0).dropped  # staleness 0
    t = co.submit(1, 0)
    co.tick()
    assert done(co, t, max_staleness=0).dropped  # staleness 1 > 0
    t = co.submit(1, 0)
    for _ in range(100):
        co.tick()
    a = done(co, t, max_staleness=None)
    assert a.staleness == 100 and not a.dropped
    assert co.n_dropped == 1


def test_drop_counters_per_partition_worker_and_global():
    co = Coordinator(2)
    ta, tb = co.submit(0, 0), co.submit(1, 0)
    for _ in range(3):
        co.tick()
    done(co, ta, worker="x", max_staleness=2)  # dropped
    done(co, tb, worker="y", max_staleness=2)  # dropped
    tc = co.submit(0, 3)
    done(co, tc, worker="x", max_staleness=2)  # staleness 0: applied
    assert [s.dropped for s in co.states] == [1, 1]
    assert [s.applied for s in co.states] == [1, 0]
    assert co.workers["x"].dropped == 1 and co.workers["y"].dropped == 1
    assert co.workers["x"].tasks == 2
    assert (co.n_dropped, co.n_collected, co.n_submitted) == (2, 3, 3)


# -- availability, in-flight count, cancel ---------------------------------------------------
def test_available_and_in_flight():
    co = Coordinator(4)
    t0 = co.submit(0, 0)
    t2 = co.submit(2, 0)
    assert co.available() == [1, 3]
    assert co.in_flight == 2
    assert not co.states[0].available and co.states[1].available
    done(co, t2)
    assert co.available() == [1, 2, 3]
    assert co.in_flight == 1
    done(co, t0)
    assert co.available() == [0, 1, 2, 3]
    assert co.in_flight == 0


def test_cancel_frees_partition_without_collecting():
    co = Coordinator(3)
    t0 = co.submit(0, 0)
    co.submit(1, 0)
    co.cancel(t0)
    assert co.available() == [0, 2]
    assert co.in_flight == 1
    st = co.states[0]
    assert (st.tasks_done, st.applied, st.dropped) == (0, 0, 0)
    assert co.n_collected == 0
    # cancelling again (or a ticket of an available partition) is a no-op
    co.cancel(t0)
    assert co.in_flight == 1
    assert co.available() == [0, 2]
    # the partition takes new work; the per-partition task counter keeps counting
    t0b = co.submit(0, 0)
    assert t0b.task_index == 1
    assert co.in_flight == 2
    assert co.n_submitted == 3


def test_submit_to_busy_partition_raises():
    co = Coordinator(2)
    co.submit(1, 0)
    with pytest.raises(RuntimeError, match="partition 1"):
        co.submit(1, 0)
    # the failed submit changed nothing
    assert co.in_flight == 1
    assert co.n_submitted == 1
    assert co.states[1].submitted == 1
    assert co.available() == [0]


def test_submit_after_complete_is_allowed():
    co = Coordinator(1)
    for k in range(5):
        t = co.submit(0, version=k)
        assert t.task_index == k
        done(co, t)
    assert co.states[0].submitted == 5 and co.states[0].tasks_done == 5


# -- per-partition average task time ---------------------------------------------------------
def test_avg_task_time_is_running_mean():
    co = Coordinator(2)
    expected = []
    durations = [1.0, 2.0, 6.0, 0.5]
    for k, d in enumerate(durations):
        done(co, co.submit(0, 0), duration=d)
        expected.append(sum(durations[: k + 1]) / (k + 1))
        assert co.states[0].avg_task_time == pytest.approx(expected[-1])
    assert expected[:3] == [1.0, 1.5, 3.0]
    assert co.states[1].avg_task_time == 0.0
    done(co, co.submit(1, 0), duration=4.0)
    assert co.states[1].avg_task_time == 4.0
    assert co.states[0].avg_task_time == pytest.approx(9.5 / 4)


def test_avg_task_time_includes_dropped_results():
    co = Coordinator(1)
    done(co, co.submit(0, 0), duration=2.0)
    t = co.submit(0, 0)
    co.tick()
    co.tick()
    assert done(co, t, duration=4.0, max_staleness=0).dropped
    assert co.states[0].avg_task_time == pytest.approx(3.0)
    assert co.states[0].tasks_done == 2


# -- worker statistics -----------------------------------------------------------------------
def test_worker_stats_aggregate():
    co = Coordinator(3)
    # w1: staleness 0 (1.0 s), then staleness 2 dropped (3.0 s); w2: staleness 1 (0.5 s)
    done(co, co.submit(0, 0), worker="w1", duration=1.0, max_staleness=1)
    ta = co.submit(1, 0)
    tb = co.submit(2, 0)
    co.tick()
    done(co, tb, worker="w2", duration=0.5, max_staleness=1)
    co.tick()
    assert done(co, ta, worker="w1", duration=3.0, max_staleness=1).dropped
    stats = co.worker_stats()
    assert list(stats) == ["w1", "w2"]
    assert stats["w1"] == {
        "tasks": 2,
        "mean_task_time": pytest.approx(2.0),
        "mean_staleness": pytest.approx(1.0),
        "max_staleness": 2,
        "last_staleness": 2,
        "dropped": 1,
        "in_flight": 0,
    }
    assert stats["w2"] == {
        "tasks": 1,
        "mean_task_time": pytest.approx(0.5),
        "mean_staleness": pytest.approx(1.0),
        "max_staleness": 1,
        "last_staleness": 1,
        "dropped": 0,
        "in_flight": 0,
    }


def test_worker_stats_sorted_by_worker():
    co = Coordinator(3)
    for p, w in enumerate(["tcp://c", "tcp://a", "tcp://b"]):
        done(co, co.submit(p, 0), worker=w)
    assert list(co.worker_stats()) == ["tcp://a", "tcp://b", "tcp://c"]


def test_worker_stats_object_empty_means():
    ws = WorkerStats("w")
    assert ws.mean_task_time == 0.0 and ws.mean_staleness == 0.0
    assert ws.as_dict() == {
        "tasks": 0,
        "mean_task_time": 0.0,
        "mean_staleness": 0.0,
        "max_staleness": 0,
        "last_staleness": 0,
        "dropped": 0,
        "in_flight": 0,
    }


# -- staleness window ------------------------------------------------------------------------
def test_staleness_window_resets_and_excludes_dropped():
    co = Coordinator(3)
    t0, t1, t2 = co.submit(0, 0), co.submit(1, 0), co.submit(2, 0)
    co.tick()
    assert done(co, t0, max_staleness=3).staleness == 1  # applied
    co.tick()
    co.tick()
    assert done(co, t1, max_staleness=3).staleness == 3  # applied
    co.tick()
    co.tick()
    a = done(co, t2, max_staleness=3)  # staleness 5: dropped, not in the window
    assert a.staleness == 5 and a.dropped
    assert co.staleness_window() == (2.0, 3)
    # reset
    assert co.staleness_window() == (0.0, 0)
    # only results applied since the last call count
    done(co, co.submit(0, 5))
    t = co.submit(1, 5)
    co.tick()
    done(co, t)
    mean, mx = co.staleness_window()
    assert mean == pytest.approx(0.5)
    assert mx == 1


def test_staleness_window_only_dropped_is_empty():
    co = Coordinator(1)
    t = co.submit(0, 0)
    co.tick()
    assert done(co, t, max_staleness=0).dropped
    assert co.staleness_window() == (0.0, 0)


def test_worker_availability_follows_the_partitions_it_holds():
    co = Coordinator(3, homes=["w1", "w1", "w2"])
    t0 = co.submit(0, 0)
    t2 = co.submit(2, 0)
    assert co.workers["w1"].in_flight == 1 and not co.workers["w1"].available
    assert co.workers["w2"].in_flight == 1
    t1 = co.submit(1, 0)
    assert co.workers["w1"].in_flight == 2
    done(co, t0, worker="w1")
    assert co.workers["w1"].in_flight == 1
    co.cancel(t1)
    assert co.workers["w1"].available and co.workers["w1"].in_flight == 0
    # partition 2's task ran on w3 (stolen): its data lives there now
    done(co, t2, worker="w3")
    assert co.workers["w2"].available and co.homes[2] == "w3"
    co.submit(2, 0)
    assert co.workers["w3"].in_flight == 1 and co.workers["w2"].in_flight == 0
    with pytest.raises(ValueError, match="homes"):
        Coordinator(2, homes=["w1"])
