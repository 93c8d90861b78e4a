"""Membership: which blocks a joining worker receives (no cluster needed)."""

from __future__ import annotations

from daskasync.engine.membership import Membership


def test_first_look_only_records_the_workers():
    m = Membership()
    assert m.plan({"a": 1, "b": 1}, [("a",), ("b",)]) == {}
    assert m.known == {"a", "b"}


def test_a_new_worker_gets_its_share_by_threads_from_the_busiest():
    m = Membership(["a", "b"])
    holders = [("a",)] * 6 + [("b",)] * 2
    plan = m.plan({"a": 1, "b": 1, "c": 2}, holders)
    assert list(plan) == ["c"] and len(plan["c"]) == 4  # 8 blocks * 2 / 4 threads
    assert set(plan["c"]) <= set(range(6))  # taken from a, the most loaded per thread


def test_blocks_already_copied_are_not_copied_again():
    m = Membership(["a"])
    assert m.plan({"a": 1, "b": 1}, [("a", "b"), ("a", "b")]) == {}


def test_departed_workers_are_forgotten_and_a_returning_one_is_new():
    m = Membership(["a", "b"])
    assert m.plan({"a": 1}, [("a",), ("a",)]) == {}
    assert m.known == {"a"}
    assert m.plan({"a": 1, "b": 1}, [("a",), ("a",)]) == {"b": [0]}


def test_blocks_with_fewest_live_copies_go_first():
    m = Membership(["a", "b"])
    holders = [("a", "b"), ("a",), ("a", "b"), ("a",)]
    assert m.plan({"a": 1, "b": 1, "c": 1}, holders) == {"c": [1]}
