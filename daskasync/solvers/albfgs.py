"""Asynchronous L-BFGS on the partitions' aggregated, delay-compensated gradients.

ASYNC's history at the partition level: the driver keeps every partition's latest loss and
gradient (:class:`PartitionGradients`) and steps on their sum along an L-BFGS direction
(Nocedal and Wright 2006, Algorithm 7.4), as incremental aggregated gradient methods do
(Blatt, Hero and Gauchman 2007; Vanli, Gurbuzbalaban and Ozdaglar 2018). Every partition
that returns gets the newest iterate at once, so no worker waits for another.

**Delay compensation.** A gradient computed at an older iterate ``x_p`` is carried to the
current one by a first-order expansion (Zheng et al. 2017, delay-compensated ASGD):
``g_p(x) ~ g_p(x_p) + H_p (x - x_p)``, where the Hessian-vector product is not modelled but
measured: along every step the driver records the change of the average gradient per row
of the partitions fresh at both ends (the same secant information as the curvature pairs;
:class:`GradientPath`), and a partition of ``r`` rows is moved by ``r`` times that change
summed over the steps since ``x_p``. Rows are dealt to the partitions at random (the
default of :meth:`PartitionedData.from_arrays`), so a partition's Hessian is ``r`` times
the average one up to sampling error: the stale error becomes second order (the sampling
error times the distance, plus the curvature change), instead of the full gradient change.

**Iterations.** An iteration at iterate ``x`` ends when every partition that is not a
straggler has returned its result at ``x`` (and at least ``quorum`` of the rows, default
one half, are fresh). Partitions of equal rows take equal expected times, so a partition
whose typical task time (the median of its last three) is above ``patience`` (default
1.5) times the median partition's, and more than scheduling noise above it, is a
straggler: the driver does not wait for it, and its compensated gradient enters the sum
until it returns. Nor, once the quorum is in, for a partition whose task in flight is
already late by the same rule (it has run ``patience`` times the median typical time), so
that a slow task is left behind in its first iteration, the very first included: there a
partition not yet heard from enters as the others' sum scaled by its rows (unbiased, rows
being dealt at random) until its own result arrives. Every other partition is waited
for, as a synchronous solver would, so without stragglers or late tasks every iteration
waits for every partition, the iterates do not depend on timing, and the method is L-BFGS
with unit steps.

**Safeguards, with their invariants.**

* The aggregate is always the sum of each partition's latest result (recomputed at every
  step); a result replaces its partition's previous one exactly once, in order of
  versions.
* Sufficient decrease is checked one iteration late, on the full objective: measured on
  the partitions fresh at both iterates, estimated on the others from their gradients
  carried to both iterates (the trapezoid rule, exact for a quadratic), the penalty exact.
  A move that fails Armijo's test is replaced by half of it from the previous iterate
  (:func:`retreat`). Halving converges when the gradient the move was computed from is
  exact. When it was not (stale partitions carried to the previous iterate) and the half
  fails too, the stale estimates' error, which does not shrink with the step, outweighs
  the gradient (as near the solution): the run goes back to the previous iterate and the
  next iteration waits for every partition, so that the next direction starts from exact
  gradients. At most two iterations are lost to a direction from an inexact gradient.
* Curvature pairs use only partitions fresh at both iterates and must satisfy ``s'y > 0``;
  a direction that is not a descent direction for the aggregate restarts from the
  gradient.

Smooth problems only (penalty ``"none"`` or ``"l2"``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..constraints import BOOLEAN, Interval, check
from ..engine.barriers import Barrier
from ..problem import RowStats
from ..tasks import eval_kernel
from .base import RunContext, Solver, apply_update
from .lbfgs import LbfgsState, initial_preconditioner
from .lbfgs_common import CurvatureMemory, LbfgsOptions, PairsInState, armijo, first_step

__all__ = ["ALBFGS", "AlbfgsOptions", "AlbfgsState", "GradientPath", "PartitionGradients",
           "late_after", "retreat", "stragglers"]

#: task times per partition whose median is its typical time (one slow task is not enough
#: to make a straggler; two of the last three are)
TIME_WINDOW = 3
#: seconds of difference between task times below which they are noise, not a straggler:
#: a thread switch, a garbage collection or a busy event loop on a loaded machine take tens
#: of milliseconds (Dask's own per-task overhead is about 1 ms by its documentation)
TIME_NOISE = 0.05


@dataclass(frozen=True)
class AlbfgsOptions(LbfgsOptions):
    """``memory`` curvature pairs; a step needs a ``quorum`` fraction of the rows fresh;
    a partition typically slower than ``patience`` times the median is a straggler (not
    waited for); ``compensate`` carries stale gradients to the current iterate."""

    quorum: float = 0.5
    patience: float = 1.5
    compensate: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check("quorum", self.quorum, Interval("real", 0, 1, closed="right"))
        check("patience", self.patience, Interval("real", 1))
        check("compensate", self.compensate, BOOLEAN)


@dataclass(frozen=True)
class AlbfgsState(LbfgsState):
    """The curvature pairs, and what the run did: steps taken, steps retreated (halved
    after the look-back test), steps abandoned (their half failed too: back to where they
    started, the next iteration exact), and the fresh rows over all rows, summed over
    steps."""

    steps: int = 0
    retreats: int = 0
    abandoned: int = 0
    fresh_sum: float = 0.0


class PartitionGradients:
    """Each partition's latest loss and gradient sums, the model version they were computed
    at, its losses at its last few versions, and its typical task time (cluster-free).

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
        self.times = np.full(n_partitions, np.nan)  #: typical task time (recent median)
        self.estimated = np.zeros(n_partitions, dtype=bool)  #: entries not measured yet
        self._recent: list[list[float]] = [[] for _ in range(n_partitions)]
        self._past: list[dict[int, float]] = [{} for _ in range(n_partitions)]

    def store(self, p: int, version: int, loss: float, grad: np.ndarray,
              seconds: float = float("nan")) -> tuple:
        """Replace partition ``p``'s entry by its result at ``version`` (a task of
        ``seconds``); returns the previous ``(version, gradient)`` (a copy)."""
        if version < self.versions[p] or (version == self.versions[p]
                                           and not self.estimated[p]):
            raise ValueError(f"partition {p}: a result of version {version} after "
                             f"{self.versions[p]} (each result is stored once, in order)")
        before = (-1 if self.estimated[p] else int(self.versions[p]), self.grads[p].copy())
        self.estimated[p] = False
        self.grads[p] = grad
        self.losses[p] = loss
        self.versions[p] = version
        if np.isfinite(seconds):
            recent = self._recent[p]
            recent.append(float(seconds))
            del recent[:-TIME_WINDOW]
            self.times[p] = float(np.median(recent))
        past = self._past[p]
        past[version] = float(loss)
        if len(past) > self.KEEP:
            del past[min(past)]
        return before

    def estimate(self, missing: list[int], version: int, rows: np.ndarray) -> None:
        """Fill the partitions never heard from with the fresh partitions' sums scaled by
        rows (unbiased when rows are dealt to partitions at random), as results at
        ``version``; each is replaced by its own result when it arrives."""
        known = [p for p in range(len(self.versions)) if p not in set(missing)]
        scale = rows[missing] / float(rows[known].sum())
        self.grads[missing] = np.multiply.outer(scale, self.grads[known].sum(axis=0))
        self.losses[missing] = scale * self.losses[known].sum()
        self.versions[missing] = version
        self.estimated[missing] = True

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


def late_after(typical: float, patience: float) -> float:
    """When a task of this typical time is late: ``patience`` times it, and at least
    :data:`TIME_NOISE` after it."""
    return max(patience * typical, typical + TIME_NOISE)


def stragglers(times: np.ndarray, patience: float) -> set[int]:
    """Partitions whose typical time is late by the median one's (:func:`late_after`).

    Examples
    --------
    >>> import numpy as np
    >>> sorted(stragglers(np.array([1.0, 1.1, 0.9, 3.0]), 1.5))
    [3]
    >>> sorted(stragglers(np.array([0.001, 0.001, 0.004]), 1.5))  # noise
    []
    """
    known = np.isfinite(times)
    if not known.any():
        return set()
    limit = late_after(float(np.median(times[known])), patience)
    return {int(p) for p in np.flatnonzero(known & (times > limit))}


class GradientPath:
    """The measured change of the average gradient per row along the iterates, by model
    version (``path[v]``: from the first iterate to version ``v``), to carry a stale
    partition gradient to the current iterate (cluster-free).

    Examples
    --------
    >>> import numpy as np
    >>> path = GradientPath((2,))
    >>> path.start(0); path.extend(1, 0, np.array([1.0, 0.0]))
    >>> path.extend(2, 1, np.array([0.0, 2.0]))
    >>> path.shift(0, 2).tolist(), path.shift(1, 2).tolist()
    ([1.0, 2.0], [0.0, 2.0])
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self._cum: dict[int, np.ndarray] = {}
        self._x: dict[int, np.ndarray] = {}  #: the iterate of each version

    def start(self, version: int) -> None:
        self._cum[version] = np.zeros(self.shape)

    def iterate(self, version: int, x: np.ndarray | None = None) -> np.ndarray:
        """The iterate of ``version`` (stored when ``x`` is given)."""
        if x is not None:
            self._x[version] = x
        return self._x[version]

    def extend(self, version: int, base: int, change: np.ndarray) -> None:
        """Version ``version`` is ``change`` (per row) away from version ``base``."""
        self._cum[version] = self._cum[base] + change

    def set(self, version: int, value: np.ndarray) -> None:
        """The path at ``version``, measured."""
        self._cum[version] = np.asarray(value, dtype=np.float64)

    def has(self, version: int) -> bool:
        return version in self._cum

    def at(self, version: int) -> np.ndarray:
        return self._cum[version]

    def shift(self, old: int, new: int) -> np.ndarray:
        """The change per row from version ``old`` to version ``new``."""
        return self._cum[new] - self._cum[old]

    def keep(self, versions: set[int]) -> None:
        """Forget the versions no longer needed."""
        for v in [v for v in self._cum if v not in versions]:
            del self._cum[v]
        for v in [v for v in self._x if v not in versions]:
            del self._x[v]


@dataclass(frozen=True)
class _Move:
    """The last move: from the reference iterate ``x_ref`` (version ``v_ref``) by ``a``
    along ``d``, whose slope on the aggregate was ``slope``."""

    x_ref: np.ndarray
    v_ref: int
    d: np.ndarray
    a: float
    slope: float
    exact: bool = True  #: computed from every partition's result at ``x_ref``
    halved: bool = False


def retreat(move: _Move) -> tuple[_Move, bool]:
    """The move that replaces ``move`` once the look-back test rejected it, and whether
    the next iteration must wait for every partition. Half of it from the same reference,
    as a backtracking line search; but a move computed from stale partitions' estimates
    whose half failed too is dropped (back to the reference), the next direction to be
    computed on exact gradients.

    Examples
    --------
    >>> import numpy as np
    >>> m = _Move(np.zeros(2), 3, np.ones(2), 1.0, -1.0, exact=False)
    >>> half, wait = retreat(m)
    >>> half.a, half.halved, wait
    (0.5, True, False)
    >>> back, wait = retreat(half)
    >>> back.a, wait
    (0.0, True)
    >>> retreat(retreat(replace(m, exact=True))[0])[0].a  # exact: halve on
    0.25
    """
    if move.halved and not move.exact:
        return replace(move, a=0.0), True
    return replace(move, a=0.5 * move.a, halved=True), False


class _Iteration:
    """The iteration in progress at iterate ``x`` (version ``version``): who is fresh, and
    the estimate of the gradient path at ``x`` from the fresh partitions (each: the path
    at its previous result's version plus its own gradient change per row since)."""

    def __init__(self, version: int, x: np.ndarray, ref_version: int) -> None:
        self.version, self.x, self.ref_version = version, x, ref_version
        self.started = time.perf_counter()
        self.fresh: set[int] = set()
        self.fresh_rows = 0
        self.path_rows = 0
        self.path_parts: dict[int, np.ndarray] = {}

    def path(self) -> np.ndarray | None:
        """The gradient path at ``x`` (average gradient change per row from the first
        iterate), if a fresh partition measured it; summed in partition order, so that
        it does not depend on the order the results arrived in."""
        if not self.path_rows:
            return None
        return sum(self.path_parts[p] for p in sorted(self.path_parts)) / self.path_rows


class ALBFGS(PairsInState, Solver):
    """Asynchronous L-BFGS on aggregated, delay-compensated partition gradients (see the
    module description).

    Options: ``memory`` (10), ``precondition`` (``"standardize"``), ``quorum`` (0.5),
    ``patience`` (1.5), ``compensate``
    (True); the step size is the trial step (``"auto"``: 1).
    """

    name = "albfgs"
    family = "lbfgs"
    synchronous = False
    default_schedule = "constant"
    penalties = ("none", "l2")
    Options = AlbfgsOptions
    State = AlbfgsState

    @classmethod
    def updates_per_epoch(cls, n_partitions: int, fraction: float) -> float:
        return 1.0

    def auto_step(self, stats: RowStats, n_partitions: int, barrier: Barrier,
                  staleness_aware: bool) -> float:
        return 1.0

    async def run(self, ctx: RunContext, theta: np.ndarray) -> np.ndarray:
        engine = ctx.engine
        P = engine.n_partitions
        self._rows = np.diff(np.asarray(engine.data.offsets))
        self._seen = 0
        self._submitted = np.zeros(P)
        self._flying: dict[int, int] = {}  # partition -> version of its task in flight
        self._verify = False  # the next iteration waits for every partition
        table = PartitionGradients(P, theta.shape)
        path = GradientPath(theta.shape)
        memory = self._attach(CurvatureMemory(self.options.memory,
                                              await initial_preconditioner(ctx, self.options)))
        ctx.monitor.record(theta, force=True)
        it = _Iteration(engine.publish(theta), theta.copy(), -1)
        path.start(it.version)
        path.iterate(it.version, it.x)
        ctx.monitor.self_judged = True
        await self._submit(ctx, None)
        await self._first(ctx, table, path, it)
        move: _Move | None = None
        while True:
            move, x_new = self._advance(ctx, table, path, memory, it, move)
            if self._judge(ctx, table, path, it):
                x_new = it.x  # the iterate the stop was decided on
                break
            if apply_update(engine, ctx.monitor, x_new, self._seen, move.a):
                break
            self._seen = 0
            it = _Iteration(engine.version, x_new.copy(), move.v_ref)
            path.iterate(it.version, it.x)
            path.keep({*table.versions.tolist(), *self._flying.values(), it.version,
                       move.v_ref})
            await self._submit(ctx, None)  # the partitions waiting for a new iterate
            await self._wait(ctx, table, path, it)
        await engine.acancel_in_flight()
        return x_new

    async def _submit(self, ctx: RunContext, partitions: list[int] | None) -> None:
        tickets = await ctx.engine.asubmit(eval_kernel, partitions, ctx.problem.kernel_kwargs)
        now = time.perf_counter()
        for t in tickets:
            self._submitted[t.partition] = now
            self._flying[t.partition] = t.version

    async def _receive(self, ctx: RunContext, table: PartitionGradients, path: GradientPath,
                       it: _Iteration, item: Any) -> None:
        """Store one result; a partition that was behind gets the current iterate."""
        value, attrs = item
        p = attrs.partition
        self._flying.pop(p, None)
        seconds = time.perf_counter() - self._submitted[p]
        if attrs.dropped:  # staler than the barrier's tau: computed again on the newest
            await self._submit(ctx, [p])
            return
        before_version, before_grad = table.store(p, attrs.version, value[0], value[1],
                                                  seconds)
        self._seen += int(value[2])
        if attrs.version != it.version:
            await self._submit(ctx, [p])
            return
        it.fresh.add(p)
        it.fresh_rows += int(self._rows[p])
        if path.has(before_version):
            rows = int(self._rows[p])
            it.path_rows += rows
            it.path_parts[p] = rows * path.at(before_version) + value[1] - before_grad

    async def _first(self, ctx: RunContext, table: PartitionGradients, path: GradientPath,
                     it: _Iteration) -> None:
        """The first iterate: every partition's result, except that once a quorum of the
        rows is in, partitions whose tasks are late are estimated from the others
        (:meth:`PartitionGradients.estimate`) instead of waited for."""
        engine = ctx.engine
        while not table.complete():
            missing = [p for p in range(engine.n_partitions) if table.versions[p] < 0]
            if self._quorum(it) and self._late(table, missing) == set(missing):
                table.estimate(missing, it.version, self._rows)
                return
            item = await engine.anext_result(self._until_late(table, missing, it))
            if item is not None:
                await self._receive(ctx, table, path, it, item)

    async def _wait(self, ctx: RunContext, table: PartitionGradients, path: GradientPath,
                    it: _Iteration) -> None:
        """Collect results until a quorum of the rows is fresh and every partition that
        is neither a straggler nor late in this iteration is."""
        engine = ctx.engine
        while len(it.fresh) < engine.n_partitions:
            slow = set() if self._verify else stragglers(table.times, self.options.patience)
            missing = [p for p in range(engine.n_partitions)
                       if p not in it.fresh and p not in slow]
            if self._quorum(it) and not engine.batch_pending() and (
                    not missing or (not self._verify
                                    and self._late(table, missing) == set(missing))):
                return
            timeout = None if self._verify else self._until_late(table, missing, it)
            item = await engine.anext_result(timeout)
            if item is not None:
                await self._receive(ctx, table, path, it, item)

    def _quorum(self, it: _Iteration) -> bool:
        return it.fresh_rows >= self.options.quorum * self._rows.sum()

    def _deadlines(self, table: PartitionGradients, partitions: list[int]) -> dict[int, float]:
        """When each partition's task in flight becomes late: :func:`late_after` the
        median partition's typical time, from its submission (none before any time is
        known)."""
        known = np.isfinite(table.times)
        if not known.any():
            return {}
        limit = late_after(float(np.median(table.times[known])), self.options.patience)
        return {p: self._submitted[p] + limit for p in partitions if p in self._flying}

    def _late(self, table: PartitionGradients, partitions: list[int]) -> set[int]:
        now = time.perf_counter()
        return {p for p, t in self._deadlines(table, partitions).items() if now > t}

    def _until_late(self, table: PartitionGradients, partitions: list[int],
                    it: _Iteration) -> float | None:
        """Seconds until every one of ``partitions`` is late, if that ends the wait (a
        quorum is in); None: wait for the next result."""
        deadlines = self._deadlines(table, partitions)
        if not deadlines or not self._quorum(it) or len(deadlines) < len(partitions):
            return None
        return max(0.0, max(deadlines.values()) - time.perf_counter()) + 1e-3

    def _look_back(self, ctx: RunContext, table: PartitionGradients, path: GradientPath,
                   it: _Iteration, move: _Move) -> bool:
        """Armijo's test of the last move on the full objective: its change is measured on
        the partitions fresh at both ends, and estimated on the others from their
        gradients carried to both ends (the trapezoid rule: exact for a quadratic), plus
        the exact penalty."""
        problem, P = ctx.problem, ctx.engine.n_partitions
        step = it.x - move.x_ref
        change = 0.0
        for p in range(P):
            ref = table.loss_at(p, move.v_ref)
            if p in it.fresh and ref is not None:
                change += table.losses[p] - ref
                continue
            v_p = int(table.versions[p])
            if not (path.has(v_p) and path.has(move.v_ref)):
                return True  # not measurable: accept (the next test will judge)
            g_now = table.grads[p] + self._rows[p] * path.shift(v_p, it.version)
            g_ref = table.grads[p] + self._rows[p] * path.shift(v_p, move.v_ref)
            change += 0.5 * float(np.vdot(g_now + g_ref, step))
        f_ref = table.loss() / problem.n + problem.penalty.value(problem.coef(move.x_ref))
        f_now = f_ref + change / problem.n + (problem.penalty.value(problem.coef(it.x))
                                              - problem.penalty.value(problem.coef(move.x_ref)))
        return armijo(f_now, f_ref, move.a, move.slope)

    def _judge(self, ctx: RunContext, table: PartitionGradients, path: GradientPath,
               it: _Iteration) -> str | None:
        """The stopping criteria on ``it.x``, exactly when every partition is fresh there.
        Otherwise the objective and gradient are estimated (stale partitions carried to
        ``it.x``: gradients along the path, losses by the trapezoid rule); if the estimate
        would stop the run, the next iteration waits for every partition (stragglers
        included), so that a stop is always decided on exact values. (It waits for every
        partition anyway after a dropped move: :func:`retreat`.)"""
        if len(it.fresh) == ctx.engine.n_partitions:
            return ctx.monitor.judge(it.x, table.loss(), table.gradient())
        if self._verify:
            return None
        loss, grad = table.loss(), table.gradient()
        for p in np.flatnonzero(table.versions != it.version):
            v_p = int(table.versions[p])
            shift = self._rows[p] * path.shift(v_p, it.version)
            loss += 0.5 * float(np.vdot(2 * table.grads[p] + shift,
                                        it.x - path.iterate(v_p)))
            grad += shift
        self._verify = ctx.monitor.would_stop(it.x, loss, grad)
        return None

    def _aggregate(self, ctx: RunContext, table: PartitionGradients, path: GradientPath,
                   it: _Iteration) -> np.ndarray:
        """The gradient at ``it.x``: the partitions' latest gradients, stale ones carried
        to ``it.x`` along the measured path (with ``compensate``), plus the penalty's."""
        total = table.gradient()
        if self.options.compensate:
            for p in np.flatnonzero(table.versions != it.version):
                total += self._rows[p] * path.shift(int(table.versions[p]), it.version)
        return total / ctx.problem.n + ctx.problem.smooth_gradient(it.x)

    def _advance(self, ctx: RunContext, table: PartitionGradients, path: GradientPath,
                 memory: CurvatureMemory, it: _Iteration,
                 move: _Move | None) -> tuple[_Move, np.ndarray]:
        """End the iteration: record the measured gradient change, test the last move
        (retreat to half of it if it fails), else store its curvature pair and move along
        the new direction from ``it.x``; :func:`retreat` says how, and whether the next
        iteration waits for every partition."""
        problem = ctx.problem
        self._verify = False
        fresh = it.fresh_rows / float(self._rows.sum())
        measured = it.path()
        if move is not None:
            if measured is not None:
                path.set(it.version, measured)
            else:
                path.extend(it.version, move.v_ref, 0.0)
            if not self._look_back(ctx, table, path, it, move):
                back, self._verify = retreat(move)
                self._state = replace(self._state, retreats=self._state.retreats + 1,
                                      abandoned=self._state.abandoned + int(self._verify),
                                      fresh_sum=self._state.fresh_sum + fresh)
                return back, back.x_ref + back.a * back.d
            if measured is not None:
                y = path.shift(move.v_ref, it.version) + (problem.smooth_gradient(it.x)
                                                           - problem.smooth_gradient(move.x_ref))
                memory.push(it.x - move.x_ref, y)
        grad = self._aggregate(ctx, table, path, it)
        d = memory.direction(grad)
        slope = float(np.vdot(grad, d))
        if not slope < 0:  # not a descent direction: restart from the scaled gradient
            memory.reset()
            d = memory.direction(grad)
            slope = float(np.vdot(grad, d))
        a = ctx.schedule(ctx.engine.clock) * (1.0 if len(memory) else first_step(slope))
        self._state = replace(self._state, steps=self._state.steps + 1,
                              fresh_sum=self._state.fresh_sum + fresh)
        exact = len(it.fresh) == ctx.engine.n_partitions
        return _Move(it.x, it.version, d, a, slope, exact), it.x + a * d
