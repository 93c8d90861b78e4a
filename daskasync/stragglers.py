"""Straggler injection for experiments (ASYNC's delay models), off by default.

The delay is a sleep inside the gradient task, proportional to the average task time
``avg`` measured during a warm-up. It is a pure function of ``(seed, partition, task_index,
avg)``, so the same partition sleeps the same in synchronous and asynchronous runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .constraints import Interval, check

__all__ = ["Straggler", "NoStragglers", "Intensity", "Cloud", "DelayFunction", "make_straggler"]

_STRAGGLER_STREAM = 0x5714


class Straggler:
    """Base class: ``delay(partition, task_index, avg) -> seconds`` and ``describe()``."""

    seed: int = 0

    def delay(self, partition: int, task_index: int, avg: float) -> float:
        return 0.0

    def describe(self) -> dict:
        return {"model": "none"}

    @property
    def active(self) -> bool:
        return True

    def _rng(self, partition: int, task_index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _STRAGGLER_STREAM, partition, task_index])


@dataclass(frozen=True)
class NoStragglers(Straggler):
    """No injected delay.

    Examples
    --------
    >>> NoStragglers().delay(0, 1, 0.1)
    0.0
    """

    seed: int = 0

    @property
    def active(self) -> bool:
        return False


@dataclass(frozen=True)
class Intensity(Straggler):
    """Delay intensity ``c``: the listed partitions (default partition 0) sleep ``c * avg``.

    Examples
    --------
    >>> Intensity(c=1.0).delay(0, 5, 0.2), Intensity(c=1.0).delay(1, 5, 0.2)
    (0.2, 0.0)
    """

    c: float = 1.0
    partitions: tuple[int, ...] = (0,)
    seed: int = 0

    def delay(self, partition: int, task_index: int, avg: float) -> float:
        return self.c * avg if partition in self.partitions else 0.0

    def describe(self) -> dict:
        return {"model": "intensity", "c": self.c, "partitions": list(self.partitions)}


@dataclass(frozen=True)
class Cloud(Straggler):
    """ASYNC's long-tail "cloud" model.

    Partitions ``0, stride, 2*stride, ...`` (25% with the default stride 4) straggle. The last
    ``round(tail_fraction * n_stragglers)`` of them are long-tail and sleep ``c * avg`` with
    ``c ~ U[2.5, 10)``; the others sleep ``c * avg`` with ``c ~ U[1.5, 2.5)``. ``c`` is drawn
    anew for every task from a seeded stream. With 32 partitions: 6 normal and 2 long-tail
    stragglers; with 8 partitions the rounding gives no long-tail one, as in the paper.

    Examples
    --------
    >>> m = Cloud(n_partitions=32)
    >>> m.stragglers, m.long_tail
    ((0, 4, 8, 12, 16, 20), (24, 28))
    >>> 1.5 <= m.delay(0, 0, 1.0) < 2.5
    True
    """

    n_partitions: int = 32
    stride: int = 4
    tail_fraction: float = 0.2
    normal_range: tuple[float, float] = (1.5, 2.5)
    tail_range: tuple[float, float] = (2.5, 10.0)
    seed: int = 0
    _sets: tuple = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        strag = tuple(range(0, self.n_partitions, self.stride))
        n_tail = int(round(self.tail_fraction * len(strag)))
        tail = strag[len(strag) - n_tail :] if n_tail else ()
        normal = strag[: len(strag) - n_tail]
        object.__setattr__(self, "_sets", (normal, tail))

    @property
    def stragglers(self) -> tuple[int, ...]:
        return self._sets[0]

    @property
    def long_tail(self) -> tuple[int, ...]:
        return self._sets[1]

    def delay(self, partition: int, task_index: int, avg: float) -> float:
        normal, tail = self._sets
        if partition in normal:
            lo, hi = self.normal_range
        elif partition in tail:
            lo, hi = self.tail_range
        else:
            return 0.0
        return float(self._rng(partition, task_index).uniform(lo, hi)) * avg

    def describe(self) -> dict:
        return {
            "model": "cloud",
            "stragglers": list(self.stragglers),
            "long_tail": list(self.long_tail),
            "normal_range": list(self.normal_range),
            "tail_range": list(self.tail_range),
        }


@dataclass(frozen=True)
class DelayFunction(Straggler):
    """A user delay ``fn(partition, task_index, avg) -> seconds`` (must be picklable).

    Examples
    --------
    >>> DelayFunction(lambda p, k, avg: 0.01 * p).delay(3, 0, 0.0)
    0.03
    """

    fn: Callable[[int, int, float], float] = field(default=lambda p, k, a: 0.0)
    seed: int = 0

    def delay(self, partition: int, task_index: int, avg: float) -> float:
        return float(self.fn(partition, task_index, avg))

    def describe(self) -> dict:
        return {"model": "function", "fn": getattr(self.fn, "__name__", repr(self.fn))}


def make_straggler(
    stragglers: str | Straggler | Callable | None, *, n_partitions: int, c: float = 1.0, seed: int = 0
) -> Straggler:
    """Build a straggler model from ``None``/``"none"``, ``"intensity"``, ``"cloud"``, a
    :class:`Straggler` or a delay callable.

    Examples
    --------
    >>> make_straggler("cloud", n_partitions=8).long_tail
    ()
    """
    if stragglers is None or stragglers == "none":
        return NoStragglers()
    if isinstance(stragglers, Straggler):
        return stragglers
    if stragglers == "intensity":
        check("straggler_c", c, Interval("real", 0))
        return Intensity(c=float(c), seed=seed)
    if stragglers == "cloud":
        return Cloud(n_partitions=n_partitions, seed=seed)
    if callable(stragglers) and not isinstance(stragglers, str):
        return DelayFunction(stragglers, seed=seed)
    raise ValueError(
        f"stragglers: unknown straggler model {stragglers!r}; choose None, 'intensity', "
        "'cloud', a Straggler or a callable (partition, task_index, avg) -> seconds"
    )
