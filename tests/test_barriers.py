"""Cluster-free tests of the barrier policies (daskasync.engine.barriers)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from daskasync.engine.barriers import (
    BARRIERS,
    SSP,
    Async,
    Barrier,
    BarrierError,
    BoundedStaleness,
    Predicate,
    Quorum,
    Sync,
    make_barrier,
)
from daskasync.engine.coordinator import Coordinator


def coordinator(n: int, busy=(), applied=None) -> Coordinator:
    """A coordinator with ``busy`` partitions in flight and the given ``applied`` counts."""
    co = Coordinator(n)
    for p in busy:
        co.submit(p, version=0)
    if applied is not None:
        for s, a in zip(co.states, applied, strict=True):
            s.applied = a
    return co


def busy_subsets(n: int):
    for k in range(n + 1):
        yield from itertools.combinations(range(n), k)


# -- Async -----------------------------------------------------------------------------------
def test_async_selects_every_available_partition():
    b = Async()
    assert b.select(coordinator(4)) == [0, 1, 2, 3]
    assert b.select(coordinator(4, busy=[1, 3])) == [0, 2]
    assert b.select(coordinator(3, busy=[0, 1, 2])) == []
    assert b.max_staleness is None
    assert not b.synchronous


def test_async_exhaustive():
    for busy in busy_subsets(5):
        co = coordinator(5, busy)
        assert Async().select(co) == [p for p in range(5) if p not in busy]


def test_async_max_staleness():
    assert Async(max_staleness=3).max_staleness == 3
    assert Async(max_staleness=0).max_staleness == 0
    with pytest.raises(ValueError, match="tau"):
        Async(max_staleness=-1)
    with pytest.raises(TypeError, match="tau"):
        Async(max_staleness=1.5)


def test_base_barrier_is_async_without_dropping():
    b = Barrier()
    assert b.select(coordinator(3, busy=[2])) == [0, 1]
    assert b.max_staleness is None
    assert b.describe() == {"barrier": "barrier", "max_staleness": None}


# -- Sync ------------------------------------------------------------------------------------
def test_sync_only_when_all_available():
    for busy in busy_subsets(4):
        got = Sync().select(coordinator(4, busy))
        assert got == ([0, 1, 2, 3] if not busy else [])
    assert Sync().synchronous
    assert Sync().max_staleness is None


# -- Quorum ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("beta", "n", "expected"),
    [
        (0.93, 6, 5),
        (0.5, 6, 3),
        (1.0, 6, 6),
        (0.1, 6, 1),  # floor(0.6) = 0 -> at least 1
        (0.01, 1, 1),
        (0.75, 4, 3),
        (0.93, 32, 29),
        (0.7, 10, 7),
    ],
)
def test_quorum_size(beta, n, expected):
    assert Quorum(beta=beta).quorum(n) == expected


@pytest.mark.parametrize("beta", [0.1, 0.2, 1 / 3, 0.5, 0.6, 2 / 3, 0.8, 0.93, 1.0])
def test_quorum_exhaustive_p6(beta):
    n = 6
    q = max(1, math.floor(beta * n))
    b = Quorum(beta=beta)
    assert b.quorum(n) == q
    n_nonempty = 0
    for busy in busy_subsets(n):
        co = coordinator(n, busy)
        avail = co.available()
        got = b.select(co)
        if got:
            n_nonempty += 1
            assert len(avail) >= q, (beta, busy, got)
            assert got == avail
        else:
            assert len(avail) < q, (beta, busy)
    # rounds start exactly for the subsets with at least q partitions available
    assert n_nonempty == sum(math.comb(n, k) for k in range(q, n + 1))


def test_quorum_doc_example():
    co = coordinator(4, busy=[0, 1])
    assert Quorum(beta=0.75).select(co) == []
    assert Quorum(beta=0.5).select(co) == [2, 3]


@pytest.mark.parametrize("beta", [0.0, -0.5, 1.0001, 2, float("nan"), float("inf")])
def test_quorum_bad_beta_value(beta):
    with pytest.raises(ValueError, match="beta"):
        Quorum(beta=beta)


@pytest.mark.parametrize("beta", ["0.5", None, True])
def test_quorum_bad_beta_type(beta):
    with pytest.raises(TypeError, match="beta"):
        Quorum(beta=beta)


def test_quorum_describe_and_tau():
    b = Quorum(beta=0.5, max_staleness=2)
    assert b.max_staleness == 2
    assert b.describe() == {"barrier": "quorum", "beta": 0.5, "max_staleness": 2}
    with pytest.raises(ValueError, match="tau"):
        Quorum(beta=0.5, max_staleness=-1)


@pytest.mark.parametrize(("beta", "n", "expected"), [(0.58, 50, 29), (0.29, 100, 29)])
def test_quorum_exact_decimal_fraction(beta, n, expected):
    assert Quorum(beta=beta).quorum(n) == expected


# -- BoundedStaleness ------------------------------------------------------------------------
def test_bounded_staleness():
    b = BoundedStaleness(tau=3)
    assert b.max_staleness == 3
    assert b.select(coordinator(4, busy=[2])) == [0, 1, 3]
    assert BoundedStaleness().max_staleness == 8
    assert BoundedStaleness(tau=0).max_staleness == 0
    assert b.describe() == {"barrier": "bounded", "tau": 3, "max_staleness": 3}
    with pytest.raises(ValueError, match="tau"):
        BoundedStaleness(tau=-1)
    with pytest.raises(TypeError, match="tau"):
        BoundedStaleness(tau=2.0)


def test_bounded_staleness_drops_through_coordinator():
    b = BoundedStaleness(tau=1)
    co = Coordinator(2)
    t = co.submit(0, 0)
    co.tick()
    co.tick()
    assert co.complete(t, worker="w", duration=0.0, max_staleness=b.max_staleness).dropped


# -- SSP -------------------------------------------------------------------------------------
def test_ssp_doc_example():
    co = coordinator(2, applied=[2, 1])
    assert SSP(tau=1).select(co) == [1]
    assert SSP(tau=2).select(co) == [0, 1]


def test_ssp_hand_states():
    co = coordinator(4, busy=[2], applied=[3, 1, 2, 2])
    # slowest 1: with tau=2 a partition may get work if applied + 1 <= 3
    assert SSP(tau=2).select(co) == [1, 3]  # 2 is busy, 0 would reach 4
    assert SSP(tau=3).select(co) == [0, 1, 3]
    assert SSP(tau=1).select(co) == [1]
    assert SSP(tau=4).max_staleness is None
    assert SSP().tau == 4


def test_ssp_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        SSP(tau=0)
    with pytest.raises(ValueError, match="tau"):
        SSP(tau=-2)
    with pytest.raises(TypeError, match="tau"):
        SSP(tau=1.0)


@pytest.mark.parametrize("tau", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssp_spread_bounded_and_no_deadlock(tau, seed):
    rng = np.random.default_rng(seed)
    n = 5
    # per-partition completion weights: some partitions are much slower than others
    weights = rng.uniform(0.05, 1.0, size=n)
    barrier = SSP(tau=tau)
    co = Coordinator(n)
    tickets = {}
    max_spread = 0
    for _ in range(400):
        applied = [s.applied for s in co.states]
        lo = min(applied)
        selected = barrier.select(co)
        # SSP hands work to exactly the available partitions that stay within tau
        assert selected == [
            p for p in range(n) if co.states[p].available and applied[p] + 1 - lo <= tau
        ]
        for p in selected:
            tickets[p] = co.submit(p, version=co.clock)
        assert co.in_flight == len(tickets)
        assert tickets, "deadlock: nothing in flight and nothing selectable"
        # even counting the in-flight work as applied, the spread stays within tau
        assert max(a + (p in tickets) for p, a in enumerate(applied)) - lo <= tau
        flight = sorted(tickets)
        w = weights[flight] / weights[flight].sum()
        p = int(rng.choice(flight, p=w))
        before = co.states[p].applied
        co.complete(tickets.pop(p), worker=f"w{p}", duration=0.0, max_staleness=None)
        assert co.states[p].applied == before + 1
        co.tick()
        applied = [s.applied for s in co.states]
        spread = max(applied) - min(applied)
        assert spread <= tau
        max_spread = max(max_spread, spread)
    # the bound is tight: the slow partitions let the others run tau ahead
    assert max_spread == tau
    assert co.clock == 400


# -- Predicate -------------------------------------------------------------------------------
def test_predicate_bool():
    co = coordinator(4, busy=[1])
    assert Predicate(lambda s, c: True).select(co) == [0, 2, 3]
    assert Predicate(lambda s, c: False).select(co) == []
    assert Predicate(lambda s, c: None).select(co) == []
    assert Predicate().select(co) == [0, 2, 3]  # default predicate: always True


def test_predicate_receives_states_and_clock():
    seen = []

    def fn(states, clock):
        seen.append(([s.partition for s in states], clock))
        return clock >= 2

    co = coordinator(3)
    b = Predicate(fn)
    assert b.select(co) == []
    co.tick()
    co.tick()
    assert b.select(co) == [0, 1, 2]
    assert seen == [([0, 1, 2], 0), ([0, 1, 2], 2)]


def test_predicate_indices_filtered_to_available():
    co = coordinator(4, busy=[0])
    assert Predicate(lambda s, c: [3, 0, 0, 2]).select(co) == [2, 3]
    assert Predicate(lambda s, c: [7, -1, 1]).select(co) == [1]  # out of range ignored
    assert Predicate(lambda s, c: (p for p in range(4))).select(co) == [1, 2, 3]
    assert Predicate(lambda s, c: np.array([1, 2])).select(co) == [1, 2]
    assert Predicate(lambda s, c: []).select(co) == []
    assert Predicate(lambda s, c: [0]).select(co) == []  # only a busy one


def test_predicate_doc_example_even_partitions():
    b = Predicate(lambda states, clock: [s.partition for s in states if s.partition % 2 == 0])
    assert b.select(Coordinator(4)) == [0, 2]


def test_predicate_raising_is_wrapped():
    boom = ZeroDivisionError("boom")

    def fn(states, clock):
        raise boom

    with pytest.raises(BarrierError, match="boom") as info:
        Predicate(fn).select(coordinator(2))
    assert info.value.__cause__ is boom
    assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("bad", [3, ["a"], [object()], 2.5])
def test_predicate_bad_return_value(bad):
    with pytest.raises(BarrierError, match="bool or partition indices"):
        Predicate(lambda s, c: bad).select(coordinator(3))


def test_predicate_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        Predicate(3)  # type: ignore[arg-type]


def test_predicate_max_staleness_and_describe():
    def my_pred(states, clock):
        return True

    b = Predicate(my_pred, max_staleness=2)
    assert b.max_staleness == 2
    assert b.describe() == {"barrier": "predicate", "fn": "my_pred"}
    with pytest.raises(ValueError, match="tau"):
        Predicate(my_pred, max_staleness=-1)


def test_predicate_numpy_bool():
    co = coordinator(3, busy=[1])
    assert Predicate(lambda s, c: np.all([x.staleness == 0 for x in s])).select(co) == [0, 2]
    assert Predicate(lambda s, c: np.bool_(False)).select(co) == []


# -- make_barrier ----------------------------------------------------------------------------
def test_make_barrier_names():
    assert make_barrier() == Async()
    assert make_barrier(None) == Async()
    assert make_barrier("async", tau=3) == Async(max_staleness=3)
    assert make_barrier("sync") == Sync()
    assert make_barrier("quorum", beta=0.7, tau=4) == Quorum(beta=0.7, max_staleness=4)
    assert make_barrier("quorum").beta == 0.93
    assert make_barrier("bounded") == BoundedStaleness(tau=8)
    assert make_barrier("bounded", tau=2) == BoundedStaleness(tau=2)
    assert make_barrier("ssp") == SSP(tau=4)
    assert make_barrier("ssp", tau=1) == SSP(tau=1)
    for name in BARRIERS:
        assert isinstance(make_barrier(name), Barrier)


def test_make_barrier_passthrough_and_callable():
    b = Quorum(beta=0.5)
    assert make_barrier(b) is b

    def fn(states, clock):
        return [0]

    p = make_barrier(fn, tau=5)
    assert isinstance(p, Predicate)
    assert p.fn is fn and p.max_staleness == 5
    assert p.select(Coordinator(2)) == [0]


@pytest.mark.parametrize("name", ["bogus", "ASYNC", "", 3])
def test_make_barrier_unknown(name):
    with pytest.raises(ValueError, match="barrier"):
        make_barrier(name)


@pytest.mark.parametrize("beta", [0.0, 1.5, -1.0])
def test_make_barrier_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        make_barrier("quorum", beta=beta)


@pytest.mark.parametrize("name", ["async", "quorum", "bounded", "ssp", lambda s, c: True])
def test_make_barrier_negative_tau(name):
    with pytest.raises(ValueError, match="tau"):
        make_barrier(name, tau=-1)


@pytest.mark.parametrize("name", ["async", "quorum", "bounded", "ssp", lambda s, c: True])
@pytest.mark.parametrize("tau", [1.5, "2", True])
def test_make_barrier_non_int_tau(name, tau):
    with pytest.raises(TypeError, match="tau"):
        make_barrier(name, tau=tau)


def test_make_barrier_ssp_tau_zero():
    with pytest.raises(ValueError, match="tau"):
        make_barrier("ssp", tau=0)
    # tau=0 is a valid staleness bound for the dropping barriers
    assert make_barrier("bounded", tau=0).max_staleness == 0
    assert make_barrier("async", tau=0).max_staleness == 0


def test_barrier_arguments_are_checked_by_the_constraints_toolkit():
    with pytest.raises(ValueError, match=r"^tau: must be an int >= 1, got 0$"):
        SSP(tau=0)
    with pytest.raises(TypeError, match=r"^beta: must be a number in \(0, 1\], got '0.5'$"):
        Quorum(beta="0.5")
    # a numpy int or float is accepted and stored as a plain one (describe() stays JSON)
    b = make_barrier("quorum", beta=np.float32(0.5), tau=np.int64(3))
    assert type(b.beta) is float and type(b.max_staleness) is int
    assert type(BoundedStaleness(tau=np.int64(2)).describe()["tau"]) is int
