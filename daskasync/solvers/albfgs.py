"""Asynchronous L-BFGS on the partitions' aggregated gradients.

ASYNC's history at the partition level: the driver keeps every partition's latest loss and
gradient (:class:`PartitionGradients`) and steps on their sum, fresh and stale alike, as
incremental aggregated gradient methods do (Blatt, Hero and Gauchman 2007; Vanli,
Gurbuzbalaban and Ozdaglar 2018, PIAG), along an L-BFGS direction (Nocedal and Wright 2006,
Algorithm 7.4). Every partition that returns gets the newest iterate at once, so no worker
waits for another.

An iteration at iterate ``x`` ends when every partition has returned its result at ``x``,
or when a quorum of the rows (``quorum``, default one half) is fresh and the others are
late. Equal-sized partitions take about equal times on a healthy cluster, so the arrivals
of the fresh results are a sample of the on-time arrival times: a partition is late when it
has not arrived ``patience`` (default 2) times the spread of the earliest half after their
median (``median + patience * (median - first)``; a symmetric spread puts nearly every
on-time arrival before that). Without stragglers every iteration waits for every partition
and the method is L-BFGS with unit steps; a straggler's gradient enters the sum stale until
it returns, and it never holds the others up.

Safeguards, with their invariants:

* the aggregate is always the sum of each partition's latest result, each result replacing
  its partition's previous one exactly once (recomputed exactly at every step);
* sufficient decrease is checked one iteration late, on the partitions fresh at both
  iterates (a subset of the data, and the exact penalty): a step that fails Armijo's test
  is replaced by half of it from the previous iterate, and gives no curvature pair;
* curvature pairs use only partitions fresh at both iterates and must satisfy
  ``s'y > 0``; a direction that is not a descent direction for the aggregate restarts from
  the gradient.

Smooth problems only (penalty ``"none"`` or ``"l2"``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..constraints import Interval, check
from ..engine.barriers import Barrier
from ..problem import RowStats
from ..tasks import eval_kernel
from .base import RunContext, Solver, apply_update
from .lbfgs import LbfgsState
from .lbfgs_common import CurvatureMemory, LbfgsOptions, armijo, first_step

__all__ = ["ALBFGS", "AlbfgsOptions", "PartitionGradients"]


@dataclass(frozen=True)
class AlbfgsOptions(LbfgsOptions):
    """``memory`` curvature pairs; a step needs a ``quorum`` fraction of the rows fresh,
    and waits for the others until ``patience`` times the spread of the earlier arrivals
    after their median."""

    quorum: float = 0.5
    patience: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check("quorum", self.quorum, Interval("real", 0, 1, closed="right"))
        check("patience", self.patience, Interval("real", 0))


class PartitionGradients:
    """Each partition's latest loss and gradient sums and the model version they were
    computed at, its losses at its last few versions, and the totals (cluster-free).

    Examples
    --------
    >>> import numpy as np
    >>> t = PartitionGradients(2, (3,))
    >>> _ = t.store(0, 0, 1.0, np.ones(3)); _ = t.store(1, 0, 2.0, np.ones(3))
    >>> _ = t.store(0, 1, 0.5, np.zeros(3))
    >>> t.loss(), t.gradient().tolist(), t.versions.tolist(), t.loss_at(0, 0)
    (2.5, [1.0, 1.0, 1.0], [1, 0], 1.0)
    """

    #: losses kept per partition (by version), for the look-back test
    KEEP = 4

    def __init__(self, n_partitions: int, shape: tuple[int, ...]) -> None:
        self.grads = np.zeros((n_partitions, *shape))
        self.losses = np.zeros(n_partitions)
        self.versions = np.full(n_partitions, -1, dtype=np.int64)
        self._past: list[dict[int, float]] = [{} for _ in range(n_partitions)]

    def store(self, p: int, version: int, loss: float, grad: np.ndarray) -> tuple:
        """Replace partition ``p``'s entry by its result at ``version``; returns the
        previous ``(version, gradient)`` (a copy)."""
        if version <= self.versions[p]:
            raise ValueError(f"partition {p}: a result of version {version} after "
                             f"{self.versions[p]} (each result is stored once, in order)")
        before = (int(self.versions[p]), self.grads[p].copy())
        self.grads[p] = grad
        self.losses[p] = loss
        self.versions[p] = version
        past = self._past[p]
        past[version] = float(loss)
        if len(past) > self.KEEP:
            del past[min(past)]
        return before

    def loss_at(self, p: int, version: int) -> float | None:
        """Partition ``p``'s loss sum at ``version``, if it is among its last results."""
        return self._past[p].get(version)

    def complete(self) -> bool:
        return bool((self.versions >= 0).all())

    def loss(self) -> float:
        return float(self.losses.sum())

    def gradient(self) -> np.ndarray:
        """The sum of the latest gradients (computed afresh: no drift)."""
        return self.grads.sum(axis=0)


@dataclass(frozen=True)
class _Move:
    """The last move: from the reference iterate ``x_ref`` (version ``v_ref``) by ``a``
    along ``d``, whose slope on the aggregate was ``slope``."""

    x_ref: np.ndarray
    v_ref: int
    d: np.ndarray
    a: float
    slope: float


class _Iteration:
    """The iteration in progress at iterate ``x`` (version ``version``): who is fresh, when
    the quorum was reached, and the gradient change of the partitions fresh at both ``x``
    and the reference iterate (for the curvature pair)."""

    def __init__(self, version: int, x: np.ndarray, ref_version: int) -> None:
        self.version, self.x, self.ref_version = version, x, ref_version
        self.started = time.perf_counter()
        self.fresh: set[int] = set()
        self.fresh_rows = 0
        self.arrivals: list[float] = []  #: seconds from the start to each fresh result
        self.quorum_at: float | None = None
        self.pair_rows = 0
        self.pair_dgrad: np.ndarray | float = 0.0


class ALBFGS(Solver):
    """Asynchronous L-BFGS on aggregated partition gradients (see the module description).

    Options: ``memory`` (10), ``quorum`` (0.5), ``patience`` (2); the step size is the
    trial step (``"auto"``: 1).
    """

    name = "albfgs"
    family = "lbfgs"
    synchronous = False
    default_schedule = "constant"
    penalties = ("none", "l2")
    Options = AlbfgsOptions
    State = LbfgsState

    @classmethod
    def updates_per_epoch(cls, n_partitions: int, fraction: float) -> float:
        return 1.0

    def auto_step(self, stats: RowStats, n_partitions: int, barrier: Barrier,
                  staleness_aware: bool) -> float:
        return 1.0

    async def run(self, ctx: RunContext, theta: np.ndarray) -> np.ndarray:
        engine, kw = ctx.engine, ctx.problem.kernel_kwargs
        self._rows = np.diff(np.asarray(engine.data.offsets))
        self._seen = 0
        table = PartitionGradients(engine.n_partitions, theta.shape)
        memory = CurvatureMemory(self.options.memory)
        memory.load(self.state.s, self.state.y)
        ctx.monitor.record(theta, force=True)
        it = _Iteration(engine.publish(theta), theta.copy(), -1)
        await engine.asubmit(eval_kernel, None, kw)
        while not table.complete():  # the first iterate: every partition, once
            await self._receive(ctx, table, it, await engine.anext_result())
        move: _Move | None = None
        while True:
            move, x_new = self._advance(ctx, table, memory, it, move)
            if apply_update(engine, ctx.monitor, x_new, self._seen, move.a):
                break
            self._seen = 0
            it = _Iteration(engine.version, x_new.copy(), move.v_ref)
            await engine.asubmit(eval_kernel, None, kw)  # the partitions waiting
            await self._wait(ctx, table, it)
        await engine.acancel_in_flight()
        return x_new

    async def _receive(self, ctx: RunContext, table: PartitionGradients, it: _Iteration,
                       item: Any) -> None:
        """Store one result; a partition that was behind gets the current iterate."""
        value, attrs = item
        p = attrs.partition
        if attrs.dropped:  # staler than the barrier's tau: computed again on the newest
            await ctx.engine.asubmit(eval_kernel, [p], ctx.problem.kernel_kwargs)
            return
        before_version, before_grad = table.store(p, attrs.version, value[0], value[1])
        self._seen += int(value[2])
        if attrs.version != it.version:
            await ctx.engine.asubmit(eval_kernel, [p], ctx.problem.kernel_kwargs)
            return
        it.fresh.add(p)
        it.fresh_rows += int(self._rows[p])
        it.arrivals.append(time.perf_counter() - it.started)
        if it.quorum_at is None and it.fresh_rows >= self.options.quorum * self._rows.sum():
            it.quorum_at = time.perf_counter()
        if before_version == it.ref_version:
            it.pair_rows += int(self._rows[p])
            it.pair_dgrad = it.pair_dgrad + (value[1] - before_grad)

    async def _wait(self, ctx: RunContext, table: PartitionGradients, it: _Iteration) -> None:
        """Collect results until the iteration may end: all fresh, or a quorum fresh and
        the others late."""
        engine = ctx.engine
        while len(it.fresh) < engine.n_partitions:
            timeout = None
            if it.quorum_at is not None and not engine.batch_pending():
                timeout = it.started + self._late(it.arrivals) - time.perf_counter()
                if timeout <= 0:
                    return
            item = await engine.anext_result(timeout)
            if item is None:
                return
            await self._receive(ctx, table, it, item)

    def _late(self, arrivals: list[float]) -> float:
        """Seconds from the start after which a partition is late: the median arrival so
        far plus ``patience`` times its distance to the first."""
        ordered = sorted(arrivals)
        median = ordered[(len(ordered) - 1) // 2]
        return median + self.options.patience * (median - ordered[0])

    def _look_back(self, ctx: RunContext, table: PartitionGradients, it: _Iteration,
                   move: _Move) -> bool:
        """Armijo's test of the last move on the partitions fresh at both ends (their
        average loss, plus the exact penalty); ``True`` when no partition has both."""
        problem = ctx.problem
        rows = now = before = 0.0
        for p in it.fresh:
            ref = table.loss_at(p, move.v_ref)
            if ref is not None:
                rows += self._rows[p]
                now += table.losses[p]
                before += ref
        if rows == 0:
            return True
        f_now = now / rows + problem.penalty.value(problem.coef(it.x))
        f_before = before / rows + problem.penalty.value(problem.coef(move.x_ref))
        return armijo(f_now, f_before, move.a, move.slope)

    def _advance(self, ctx: RunContext, table: PartitionGradients, memory: CurvatureMemory,
                 it: _Iteration, move: _Move | None) -> tuple[_Move, np.ndarray]:
        """End the iteration: test the last move (retreat to half of it if it fails), else
        store its curvature pair and move along the new direction from ``it.x``."""
        problem = ctx.problem
        if move is not None and not self._look_back(ctx, table, it, move):
            half = replace(move, a=0.5 * move.a)
            return half, half.x_ref + half.a * half.d
        if move is not None and it.pair_rows > 0:
            y = it.pair_dgrad / it.pair_rows + (problem.smooth_gradient(it.x)
                                                 - problem.smooth_gradient(move.x_ref))
            memory.push(it.x - move.x_ref, y)
            self.state = LbfgsState(*memory.arrays())
        grad = table.gradient() / problem.n + problem.smooth_gradient(it.x)
        d = memory.direction(grad)
        slope = float(np.vdot(grad, d))
        if not slope < 0:
            memory.reset()
            d, slope = -grad, -float(np.vdot(grad, grad))
        a = ctx.schedule(ctx.engine.clock) * (1.0 if len(memory) else first_step(grad))
        return _Move(it.x, it.version, d, a, slope), it.x + a * d
