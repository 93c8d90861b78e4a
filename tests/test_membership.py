"""Membership: which blocks a worker that holds none receives (no cluster needed)."""

from __future__ import annotations

from daskasync.engine.membership import Membership


def test_workers_holding_blocks_get_nothing():
    m = Membership()
    assert m.plan({"a": 1, "b": 1}, [["a"], ["b"]]) == {}
    assert m.plan({"a": 1, "b": 1}, [["a", "b"], ["a"]]) == {}
    assert m.n_plans == 0


def test_a_new_worker_gets_its_share_by_threads_from_the_busiest():
    holders = [["a"]] * 6 + [["b"]] * 2
    plan = Membership().plan({"a": 1, "b": 1, "c": 2}, holders)
    assert list(plan) == ["c"] and len(plan["c"]) == 4  # 8 blocks * 2 / 4 threads
    assert set(plan["c"]) <= set(range(6))  # taken from a, the most loaded per thread


def test_every_worker_that_joins_gets_a_share_and_the_work_evens_out():
    m = Membership()
    holders = [["a"] for _ in range(12)]
    for new in ["b", "c", "d"]:  # one after the other, as they join
        ncores = {w: 1 for w in ["a", "b", "c", "d"][: ["b", "c", "d"].index(new) + 2]}
        plan = m.plan(ncores, holders)
        assert list(plan) == [new] and len(plan[new]) == round(12 / len(ncores))
        for p in plan[new]:
            holders[p] = [new, *holders[p]]  # the copy takes over the block's tasks
    working = [hs[0] for hs in holders]
    assert sorted(working.count(w) for w in "abcd") == [3, 3, 3, 3]
    assert m.n_plans == 3


def test_workers_joining_together_each_get_a_share():
    plan = Membership().plan({"a": 1, "b": 1, "c": 1}, [["a"]] * 6)
    assert {w: len(p) for w, p in plan.items()} == {"b": 2, "c": 2}
    assert not set(plan["b"]) & set(plan["c"])


def test_a_worker_that_lost_its_blocks_or_came_back_gets_a_share_again():
    m = Membership()
    assert m.plan({"a": 1, "b": 1}, [["a"], ["a"]]) == {"b": [0]}
    # b's copy is gone (it restarted, or its copy was dropped): b holds nothing again
    assert m.plan({"a": 1, "b": 1}, [["a"], ["a"]]) == {"b": [0]}


def test_departed_holders_do_not_count():
    # "x" left: its blocks count as held by nobody and are not copied from
    plan = Membership().plan({"a": 1, "b": 1}, [["x", "a"], ["x"], ["a"], ["a"]])
    assert plan == {"b": [0, 2]}


def test_among_equally_busy_holders_blocks_with_fewest_copies_go_first():
    holders = [["a", "b"], ["a"], ["a", "b"], ["a"]]
    plan = Membership().plan({"a": 1, "b": 1, "c": 1}, holders)
    assert plan == {"c": [1]}
