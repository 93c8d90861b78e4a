"""Synchronous SAGA with the gradient history: every round all partitions compute on the
same model version behind a gather barrier.

``inner="batch"`` is ASYNC's SAGA: one step with the summed history-corrected gradient.
``inner="sequential"`` runs a sequential SAGA pass on each partition (as scikit-learn's
SAGA does) and combines the passes; their ``alpha_bar`` changes are summed, so the history
stays exact. ``combine`` is the weight of each pass (``"average"``, the default, is
``1 / P``: always stable; larger weights add the passes up and can diverge). With an L1
part the passes' smooth movements are combined and one prox with the threshold they
accumulated keeps the model exactly sparse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.barriers import Barrier
from ..kernels_saga_apply import add_model_changes
from ..problem import Problem, RowStats
from .base import RunContext, Solver, SolverState, apply_update, sum_results
from .saga_common import (
    SagaOptions,
    SagaTasks,
    batch_step,
    check_saga_options,
    saga_auto_step,
)

__all__ = ["SAGA", "SagaState"]


@dataclass(frozen=True)
class SagaState(SolverState):
    """Synchronous SAGA keeps nothing between rounds besides the model and the history."""


class SAGA(Solver):
    """Synchronous SAGA (see the module description).

    Automatic step: ``1 / (3 L)`` per sample (see
    :func:`~daskasync.solvers.saga_common.saga_auto_step`), constant schedule.
    """

    name = "saga"
    synchronous = True
    history = True
    default_schedule = "constant"
    Options = SagaOptions
    State = SagaState

    @classmethod
    def make_options(cls, problem: Problem, n_partitions: int, **given: Any) -> SagaOptions:
        return check_saga_options(cls.name, True, problem, n_partitions, **given)

    def auto_step(self, stats: RowStats, n_partitions: int, barrier: Barrier,
                  staleness_aware: bool) -> float:
        return saga_auto_step(self.problem, self.options, stats, synchronous=True, tau_bar=0,
                              staleness_aware=staleness_aware)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.options.inner == "batch":
            del out["combine"]
        elif out["combine"] is None:
            out["combine"] = "1/P"
        return out

    async def run(self, ctx: RunContext, theta: np.ndarray) -> np.ndarray:
        engine, monitor, problem = ctx.engine, ctx.monitor, ctx.problem
        opts = self.options
        weight = opts.weight(engine.n_partitions)
        step0 = ctx.schedule(0)
        tasks = SagaTasks(engine, problem, ctx.history, ctx.fraction, opts.inner, step0)
        await tasks.arestrict()
        engine.publish(tasks.model(theta))
        monitor.record(theta, force=True)
        while True:
            values, attrs = await engine.around(tasks.kernel, tasks.args)
            values = [tasks.decode(v, a.version) for v, a in zip(values, attrs, strict=True)]
            if opts.inner == "batch":
                diff_sum, count = sum_results(values, 0, 2)
                step = ctx.schedule(engine.clock)
                batch_step(theta, diff_sum, count, step, problem, ctx.history)
                for a, v in zip(attrs, values, strict=True):
                    tasks.store(a.partition, a.task_index, v[1], v[0] / problem.n)
            else:
                step = step0
                count = _apply_changes(theta, attrs, values, tasks, weight, step0, problem)
            if apply_update(engine, monitor, theta, count, step, model=tasks.model(theta)):
                return theta


def _apply_changes(theta: np.ndarray, attrs: list, changes: list, tasks: SagaTasks,
                   weight: float, step: float, problem: Problem) -> int:
    """A sequential round: store every pass's scalars and ``alpha_bar`` change, then add
    ``weight`` times the sum of their model changes (:func:`add_model_changes`: one pass
    over the columns for the round). With an L1 part, the sum of their smooth movements
    instead, then one prox with the threshold they accumulated (``weight`` times their
    steps), so the model stays exactly sparse; the optimum is a fixed point, as for each
    pass (its optimality condition holds for any step). Returns the rows the round
    sampled."""
    for a, change in zip(attrs, changes, strict=True):
        tasks.store_change(a.partition, a.task_index, change)
    count = sum(change.count for change in changes)
    if not problem.penalty.has_prox:  # one pass over the columns for the round
        add_model_changes(theta, changes, weight)
        return count
    total = tasks.zeros_like(theta)
    for change in changes:
        change.add_smooth(total)
    total *= weight
    theta += total
    problem.prox(theta, weight * count * step)
    return count
