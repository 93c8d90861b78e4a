"""Barrier policies: who gets work, and when; which results are too stale to apply.

A barrier is a plain object with ``select(coordinator) -> list[int]`` (the partitions to
hand work to now; empty = wait) and ``max_staleness`` (results staler than this are dropped,
ASYNC's bounded staleness ``tau``; ``None`` = never drop).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..constraints import BOOLEAN, CALLABLE, Constraint, Interval, check
from .coordinator import Coordinator, PartitionState

__all__ = [
    "Barrier",
    "Async",
    "Sync",
    "Quorum",
    "BoundedStaleness",
    "SSP",
    "Predicate",
    "BarrierError",
    "make_barrier",
    "BARRIERS",
]


class BarrierError(RuntimeError):
    """A barrier predicate failed, or selected no work while none is running."""


#: a staleness bound (``None``: none); SSP's spread bound is at least 1
_STALENESS = Interval("int", 0)
_SPREAD = Interval("int", 1)


def _set_checked(barrier: Barrier, field: str, *allowed: Constraint | None) -> None:
    """Check ``tau``-like ``field`` of a frozen barrier and store it as a plain int, so
    :meth:`Barrier.describe` stays JSON (a numpy int is accepted)."""
    value = check("tau", getattr(barrier, field), *allowed)
    object.__setattr__(barrier, field, None if value is None else int(value))


class Barrier:
    """Base policy: fully asynchronous, nothing dropped."""

    max_staleness: int | None = None
    #: True for a barrier that waits for every partition before handing out any work
    synchronous: bool = False

    def select(self, co: Coordinator) -> list[int]:
        return co.available()

    def describe(self) -> dict:
        return {"barrier": type(self).__name__.lower(), "max_staleness": self.max_staleness}


@dataclass(frozen=True)
class Async(Barrier):
    """Hand work to every available partition at once (ASYNC's fully asynchronous mode).

    Examples
    --------
    >>> from daskasync.engine.coordinator import Coordinator
    >>> co = Coordinator(3); _ = co.submit(1, 0)
    >>> Async().select(co)
    [0, 2]
    """

    max_staleness: int | None = None

    def __post_init__(self) -> None:
        _set_checked(self, "max_staleness", _STALENESS, None)


@dataclass(frozen=True)
class Sync(Barrier):
    """Every partition each round: work is handed out only when all partitions are back.

    Examples
    --------
    >>> from daskasync.engine.coordinator import Coordinator
    >>> co = Coordinator(2); _ = co.submit(1, 0)
    >>> Sync().select(co)
    []
    """

    synchronous = True

    def select(self, co: Coordinator) -> list[int]:
        avail = co.available()
        return avail if len(avail) == co.n_partitions else []


@dataclass(frozen=True)
class Quorum(Barrier):
    """A round starts once at least ``floor(beta * P)`` partitions are available (at least 1).

    Examples
    --------
    >>> from daskasync.engine.coordinator import Coordinator
    >>> co = Coordinator(4); _ = co.submit(0, 0); _ = co.submit(1, 0)
    >>> Quorum(beta=0.75).select(co), Quorum(beta=0.5).select(co)
    ([], [2, 3])
    """

    beta: float = 0.93
    max_staleness: int | None = None

    def __post_init__(self) -> None:
        check("beta", self.beta, Interval("real", 0, 1, closed="right"))
        object.__setattr__(self, "beta", float(self.beta))  # JSON in describe()
        _set_checked(self, "max_staleness", _STALENESS, None)

    def quorum(self, n_partitions: int) -> int:
        """``floor(beta * P)`` (at least 1), exact for decimal ``beta``."""
        return max(1, math.floor(round(self.beta * n_partitions, 9)))

    def select(self, co: Coordinator) -> list[int]:
        avail = co.available()
        return avail if len(avail) >= self.quorum(co.n_partitions) else []

    def describe(self) -> dict:
        return {"barrier": "quorum", "beta": self.beta, "max_staleness": self.max_staleness}


@dataclass(frozen=True)
class BoundedStaleness(Barrier):
    """ASYNC's bounded staleness: a result staler than ``tau`` is dropped and its partition is
    handed new work; otherwise fully asynchronous.

    Examples
    --------
    >>> BoundedStaleness(tau=3).max_staleness
    3
    """

    tau: int = 8

    def __post_init__(self) -> None:
        _set_checked(self, "tau", _STALENESS)

    @property
    def max_staleness(self) -> int:  # type: ignore[override]
        return self.tau

    def describe(self) -> dict:
        return {"barrier": "bounded", "tau": self.tau, "max_staleness": self.tau}


@dataclass(frozen=True)
class SSP(Barrier):
    """Stale-synchronous parallel: a partition gets new work only if, once that work is
    applied, it is at most ``tau`` applied results ahead of the slowest partition; so the
    spread of per-partition progress never exceeds ``tau`` (``tau = 1`` is lock-step).

    Examples
    --------
    >>> from daskasync.engine.coordinator import Coordinator
    >>> co = Coordinator(2)
    >>> co.states[0].applied = 2; co.states[1].applied = 1
    >>> SSP(tau=1).select(co), SSP(tau=2).select(co)
    ([1], [0, 1])
    """

    tau: int = 4

    def __post_init__(self) -> None:
        _set_checked(self, "tau", _SPREAD)

    def select(self, co: Coordinator) -> list[int]:
        states = co.states
        slowest = min(s.applied for s in states)
        limit = slowest + self.tau - 1
        return [s.partition for s in states if s.available and s.applied <= limit]

    def describe(self) -> dict:
        return {"barrier": "ssp", "tau": self.tau, "max_staleness": None}


@dataclass(frozen=True)
class Predicate(Barrier):
    """Any user predicate over the partition states.

    ``fn(states, clock)`` gets the list of :class:`PartitionState` and the logical clock and
    returns ``True`` (hand work to every available partition), ``False`` (wait), or an
    iterable of partition indices (those of them that are available get work).

    Examples
    --------
    >>> from daskasync.engine.coordinator import Coordinator
    >>> even_only = Predicate(lambda states, clock: [s.partition for s in states
    ...                                              if s.partition % 2 == 0])
    >>> even_only.select(Coordinator(4))
    [0, 2]
    """

    fn: Callable[[Sequence[PartitionState], int], bool | Iterable[int]] = lambda s, c: True
    max_staleness: int | None = None

    def __post_init__(self) -> None:
        check("barrier", self.fn, CALLABLE)
        _set_checked(self, "max_staleness", _STALENESS, None)

    def select(self, co: Coordinator) -> list[int]:
        try:
            out = self.fn(co.states, co.clock)
        except Exception as exc:
            raise BarrierError(f"barrier predicate {self.fn!r} raised {exc!r}") from exc
        if BOOLEAN.fits_type(out):
            return co.available() if out else []
        if out is None:
            return []
        try:
            wanted = {int(p) for p in out}
        except Exception as exc:
            raise BarrierError(
                f"barrier predicate {self.fn!r} must return a bool or partition indices, "
                f"got {out!r}"
            ) from exc
        states = co.states
        return [p for p in sorted(wanted) if 0 <= p < len(states) and states[p].available]

    def describe(self) -> dict:
        return {"barrier": "predicate", "fn": getattr(self.fn, "__name__", repr(self.fn))}


BARRIERS = ("async", "sync", "quorum", "bounded", "ssp")


def make_barrier(
    barrier: str | Barrier | Callable | None = "async",
    *,
    beta: float = 0.93,
    tau: int | None = None,
) -> Barrier:
    """Build a barrier from a name, a :class:`Barrier` or a predicate callable.

    Parameters
    ----------
    barrier : {"async", "sync", "quorum", "bounded", "ssp"}, Barrier or callable
    beta : float
        Quorum fraction for ``"quorum"``.
    tau : int, optional
        Staleness bound: results staler than ``tau`` are dropped (``"async"``, ``"quorum"``,
        predicates; required by ``"bounded"``), or SSP's spread bound for ``"ssp"``.

    Examples
    --------
    >>> make_barrier("quorum", beta=0.7, tau=4)
    Quorum(beta=0.7, max_staleness=4)
    """
    if isinstance(barrier, Barrier):
        return barrier
    if barrier is None or barrier == "async":
        return Async(max_staleness=tau)
    if barrier == "sync":
        if tau is not None:
            raise ValueError("tau: the sync barrier never has stale results; leave tau=None")
        return Sync()
    if barrier == "quorum":
        return Quorum(beta=beta, max_staleness=tau)
    if barrier == "bounded":
        return BoundedStaleness(tau=8 if tau is None else tau)
    if barrier == "ssp":
        return SSP(tau=4 if tau is None else tau)
    if callable(barrier) and not isinstance(barrier, str):
        return Predicate(barrier, max_staleness=tau)
    raise ValueError(
        f"barrier: unknown barrier {barrier!r}; choose one of {list(BARRIERS)}, a Barrier, "
        "or a predicate (states, clock) -> bool | partitions"
    )
