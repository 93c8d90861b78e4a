"""Asynchronous SAGA with the gradient history (ASYNC's ASAGA).

Each partition's result is applied as it arrives, with the engine's barrier (quorum,
``tau``, SSP, predicates). ``inner="batch"`` takes a step of ``schedule(k / P)`` (divided by
``1 + staleness`` when ``staleness_aware``); ``inner="sequential"`` adds the task's model
change weighted ``combine`` (default ``1 / P``; times ``P / (1 + staleness)`` when
``staleness_aware``).

``combine="adaptive"`` weighs each change ``eta / P`` and adapts ``eta`` in ``[1, P]`` from
the full-objective checks that run alongside (:class:`BoldDriver`).

``momentum`` (sequential form): every ``P`` applied results make a virtual round after which
the model jumps by ``mu`` times the velocity, with a restart safeguard
(:class:`HeavyBall`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..engine.barriers import Barrier
from ..problem import Problem, RowStats
from .base import RunContext, Solver, SolverState, apply_update
from .saga_common import (
    SagaOptions,
    SagaTasks,
    batch_step,
    check_saga_options,
    saga_auto_step,
)

__all__ = ["ASAGA", "AsagaState", "BoldDriver", "HeavyBall"]

#: after this many consecutive checks at a new best, a ``mu`` halved by earlier rises
#: moves halfway back to the requested momentum
MOMENTUM_RECOVERY_CHECKS = 10


@dataclass(frozen=True)
class AsagaState(SolverState):
    """What ASAGA keeps besides the model and the history."""

    eta: float = 1.0  #: the adaptive multiplier (``combine="adaptive"``)
    momentum: float | None = None  #: the momentum the safeguard has reached
    restarts: int = 0  #: restarts of the momentum safeguard so far


class BoldDriver:
    """``eta`` in ``[1, cap]``: up by half after a check lower than the previous one,
    halved after a higher one (a "bold driver" rule; asynchronous results cannot be
    line-searched one by one as synchronous rounds are).

    Examples
    --------
    >>> b = BoldDriver(1.0, cap=4.0)
    >>> b.update(0.5, 0.6), b.update(0.7, 0.5)
    (1.5, 1.0)
    """

    def __init__(self, eta: float, cap: float) -> None:
        self.eta, self.cap = float(eta), float(cap)

    def update(self, f_new: float, f_old: float) -> float:
        down = f_new < f_old
        self.eta = min(self.cap, 1.5 * self.eta) if down else max(1.0, 0.5 * self.eta)
        return self.eta


class HeavyBall:
    """Momentum over virtual rounds of ``P`` applied results, with a restart safeguard.

    After each virtual round the velocity ``v <- mu v + (round's change)`` is added times
    ``mu``. Safeguard (adaptive restart, O'Donoghue and Candes 2015): when a check finds
    the objective above the best checked one, the run restarts from that best model
    without velocity (SAGA's history may come from any points, so it stays consistent);
    a second rise before any improvement halves ``mu``; after
    :data:`MOMENTUM_RECOVERY_CHECKS` consecutive checks at a new best, a halved ``mu``
    moves halfway back to the requested momentum (the rises come mostly from the early,
    nonlinear phase).
    """

    def __init__(self, target: float, current: float, theta: np.ndarray,
                 n_partitions: int) -> None:
        self.target, self.current, self.P = target, current, n_partitions
        self.velocity = np.zeros_like(theta)
        self.start = theta.copy()
        self.in_round = self.rises = self.gains = self.restarts = 0

    def on_check(self, f: float, best: tuple[float, np.ndarray], theta: np.ndarray) -> None:
        """A full-objective check finished with value ``f``; ``best`` is the best one."""
        if f <= best[0]:
            self.rises = 0
            self.gains += 1
            if self.gains >= MOMENTUM_RECOVERY_CHECKS and self.current < self.target:
                self.gains = 0
                self.current += 0.5 * (self.target - self.current)
            return
        self.rises += 1
        self.gains = 0
        if self.rises >= 2:  # again: momentum is too strong here
            self.current *= 0.5
            self.rises = 0
        self.velocity[...] = 0.0
        theta[...] = best[1]
        self.start[...] = theta
        self.in_round = 0
        self.restarts += 1

    def after_result(self, theta: np.ndarray) -> None:
        """One more applied result; the jump at the end of a virtual round."""
        self.in_round += 1
        if self.in_round == self.P:
            self.in_round = 0
            self.velocity *= self.current
            self.velocity += theta - self.start
            theta += self.current * self.velocity
            self.start[...] = theta


class ASAGA(Solver):
    """Asynchronous SAGA (see the module description).

    Automatic step: ``1 / (3 L)`` per sample, divided by ``1 + min(P - 1, tau)`` in the
    batch form (see :func:`~daskasync.solvers.saga_common.saga_auto_step`).
    """

    name = "asaga"
    family = "saga"
    synchronous = False
    history = True
    default_schedule = "constant"
    Options = SagaOptions
    State = AsagaState

    @classmethod
    def make_options(cls, problem: Problem, n_partitions: int, **given: Any) -> SagaOptions:
        return check_saga_options(cls.name, False, problem, n_partitions, **given)

    def auto_step(self, stats: RowStats, n_partitions: int, barrier: Barrier,
                  staleness_aware: bool) -> float:
        tau = barrier.max_staleness
        tau_bar = min(n_partitions - 1, tau if tau is not None else n_partitions)
        return saga_auto_step(self.problem, self.options, stats, n_partitions,
                              synchronous=False, tau_bar=tau_bar,
                              staleness_aware=staleness_aware)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.options.inner == "batch":
            del out["combine"]
        elif out["combine"] is None:
            out["combine"] = "1/P"
        return out

    async def run(self, ctx: RunContext, theta: np.ndarray) -> np.ndarray:
        engine, monitor = ctx.engine, ctx.monitor
        tasks = SagaTasks(engine, ctx.problem, ctx.history, ctx.fraction,
                          self.options.inner, ctx.schedule(0))
        step_rule = self._sequential if self.options.inner == "sequential" else self._batch
        apply = step_rule(ctx, theta, tasks)
        engine.publish(tasks.model(theta))
        monitor.record(theta, force=True)
        await engine.asubmit(tasks.kernel, None, tasks.args)
        while True:
            value, attrs = await engine.anext_result()
            if attrs.dropped:
                tasks.forget(attrs.partition, attrs.task_index)
                if monitor.check_time():
                    break
            else:
                count, step = apply(tasks.decode(value, attrs.version), attrs)
                if apply_update(engine, monitor, theta, count, step, model=tasks.model(theta)):
                    break
            if not engine.batch_pending():
                await engine.asubmit(tasks.kernel, None, tasks.args)
        await engine.acancel_in_flight()
        return theta

    def _batch(self, ctx: RunContext, theta: np.ndarray, tasks: SagaTasks):
        """The batch form's update of one result (ASYNC's ASAGA step)."""
        P = ctx.engine.n_partitions

        def apply(value: Any, attrs: Any) -> tuple[int, float]:
            diff_sum, new, count = value
            step = ctx.schedule(ctx.engine.clock / P)
            if ctx.staleness_aware:
                step /= 1.0 + attrs.staleness
            batch_step(theta, diff_sum, count, step, ctx.problem, ctx.history)
            tasks.store(attrs.partition, attrs.task_index, new, diff_sum / ctx.problem.n)
            return count, step

        return apply

    def _sequential(self, ctx: RunContext, theta: np.ndarray, tasks: SagaTasks):
        """The sequential form's update of one result: its weighted model change (or its
        smooth movement and the prox, with an L1 part), the multiplier and momentum rules."""
        monitor, problem, P = ctx.monitor, ctx.problem, ctx.engine.n_partitions
        opts, step0 = self.options, ctx.schedule(0)
        driver = BoldDriver(self.state.eta, P) if opts.combine == "adaptive" else None
        ball = None
        if opts.momentum:
            saved = self.state.momentum
            mu = opts.momentum if saved is None else min(opts.momentum, saved)
            ball = HeavyBall(opts.momentum, mu, theta, P)
            self.state = replace(self.state, momentum=mu)
            monitor.watch = True
        if driver is not None:
            monitor.watch = True
        seen = [len(monitor.checked)]

        def apply(value: Any, attrs: Any) -> tuple[int, float]:
            d_theta, d_mean, new, count, smooth = value
            checked = len(monitor.checked) > seen[0]  # a check finished since
            seen[0] = len(monitor.checked)
            if driver is not None and checked and seen[0] >= 2:
                self.state = replace(self.state, eta=driver.update(*monitor.checked[-1:-3:-1]))
            weight = opts.weight(P) * (driver.eta if driver is not None else 1.0)
            if ctx.staleness_aware:
                weight = min(1.0, weight * P / (1.0 + attrs.staleness))
            if problem.penalty.has_prox:
                # a result computed on a stale model: add its smooth movement and apply the
                # prox here, with the step it accumulated (exact zeros; the optimum is a
                # fixed point for any step)
                np.add(theta, weight * smooth, out=theta)
                problem.prox(theta, weight * count * step0)
            else:
                np.add(theta, weight * d_theta, out=theta)
            if ball is not None:
                if checked and monitor.best_checked is not None:
                    ball.on_check(monitor.checked[-1], monitor.best_checked, theta)
                ball.after_result(theta)
                self.state = replace(self.state, momentum=ball.current, restarts=ball.restarts)
            tasks.store(attrs.partition, attrs.task_index, new, d_mean)
            return count, step0 * weight

        return apply
