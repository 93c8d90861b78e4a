"""Asynchronous SAGA with the gradient history (ASYNC's ASAGA).

Each partition's result is applied as it arrives, with the engine's barrier (quorum,
``tau``, SSP, predicates). ``inner="batch"`` takes a step of ``schedule(k / P)`` (divided by
``1 + staleness`` when ``staleness_aware``); ``inner="sequential"`` adds the task's model
change weighted ``combine`` (default ``1 / P``; times ``P / (1 + staleness)`` when
``staleness_aware``). With an L1 part the driver adds the result's smooth movement and
applies the prox with the step it accumulated, so the model stays exactly sparse.
"""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["ASAGA", "AsagaState"]

@dataclass(frozen=True)
class AsagaState(SolverState):
    """ASAGA keeps nothing between results besides the model and the history."""


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
        return saga_auto_step(self.problem, self.options, stats, synchronous=False,
                              tau_bar=tau_bar, staleness_aware=staleness_aware)

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
        await tasks.arestrict()
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
        """The sequential form's update of one result: its weighted model change, or, with
        an L1 part, its smooth movement and the prox with the step it accumulated."""
        problem, P = ctx.problem, ctx.engine.n_partitions
        base, step0 = self.options.weight(P), ctx.schedule(0)

        def apply(change: Any, attrs: Any) -> tuple[int, float]:
            weight = base
            if ctx.staleness_aware:
                weight = min(1.0, weight * P / (1.0 + attrs.staleness))
            if problem.penalty.has_prox:
                # a result computed on a stale model: add its smooth movement and apply the
                # prox here, with the step it accumulated (exact zeros; the optimum is a
                # fixed point for any step)
                change.add_smooth(theta, weight)
                problem.prox(theta, weight * change.count * step0)
            else:
                change.add_model(theta, weight)
            tasks.store_change(attrs.partition, attrs.task_index, change)
            return change.count, step0 * weight

        return apply
