"""Synchronous SAGA with the gradient history: every round all partitions compute on the
same model version behind a gather barrier.

``inner="batch"`` is ASYNC's SAGA: one step with the summed history-corrected gradient.
``inner="sequential"`` runs a sequential SAGA pass on each partition (as scikit-learn's
SAGA does) and combines the passes; their ``alpha_bar`` changes are summed, so the history
stays exact.

Combination of the passes (``combine``): a number ``c`` adds each pass with weight ``c``
(``1 / P`` averages them, always stable); ``"search"`` (the default for smooth penalties)
moves along their average ``r`` by the best of three multipliers around the last one
(``eta / 2, eta, 2 eta`` within ``[1, 4 P]``), judged by one full-objective pass over the
three candidates. Averaging advances about one partition's worth of steps per round; on
ill-conditioned problems, where the passes agree on the slow directions, the search
recovers the other partitions' progress, and where they disagree it stays at the average.

``momentum`` ``mu`` (heavy ball, Polyak 1964): each round starts from
``theta + mu (theta - theta_prev)`` and applies the round's update (searched from that
point) there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..engine.barriers import Barrier
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
    """What synchronous SAGA keeps between rounds besides the model and the history."""

    eta: float = 1.0  #: the search's multiplier of the averaged change
    velocity: np.ndarray | None = None  #: ``theta - theta_prev`` (with momentum)


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
        return saga_auto_step(self.problem, self.options, stats, n_partitions,
                              synchronous=True, tau_bar=0, staleness_aware=staleness_aware)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if self.options.inner == "batch":
            del out["combine"]
        return out

    async def run(self, ctx: RunContext, theta: np.ndarray) -> np.ndarray:
        engine, monitor, problem = ctx.engine, ctx.monitor, ctx.problem
        opts = self.options
        P = engine.n_partitions
        search = opts.combine == "search" and opts.inner == "sequential"
        search = search and not problem.penalty.has_prox
        step0 = ctx.schedule(0)
        tasks = SagaTasks(engine, problem, ctx.history, ctx.fraction, opts.inner, step0)
        velocity = np.zeros_like(theta)
        if self.state.velocity is not None:
            velocity[...] = np.reshape(self.state.velocity, theta.shape)
        eta = float(self.state.eta)
        engine.publish(tasks.model(theta))
        monitor.record(theta, force=True)
        while True:
            values, attrs = await engine.around(tasks.kernel, tasks.args)
            values = [tasks.decode(v, a.version) for v, a in zip(values, attrs, strict=True)]
            if opts.momentum:
                before = theta.copy()
                theta += opts.momentum * velocity
            if opts.inner == "batch":
                diff_sum, count = sum_results(values, 0, 2)
                step = ctx.schedule(engine.clock)
                batch_step(theta, diff_sum, count, step, problem, ctx.history)
                for a, v in zip(attrs, values, strict=True):
                    tasks.store(a.partition, a.task_index, v[1], v[0] / problem.n)
            else:
                step = step0
                delta, count = sum_results(values, 0, 3)
                for a, (_d, d_mean, new, _c, _s) in zip(attrs, values, strict=True):
                    tasks.store(a.partition, a.task_index, new, d_mean)
                if search:
                    eta = await _search(engine, problem, theta, delta / P, eta, 4.0 * P)
                    theta += eta * (delta / P)
                    self.state = replace(self.state, eta=eta)
                elif problem.penalty.has_prox:
                    _combine_prox(theta, values, opts.weight(P), step0, problem)
                else:
                    theta += opts.weight(P) * delta
            if opts.momentum:
                np.subtract(theta, before, out=velocity)
                self.state = replace(self.state, velocity=velocity.copy())
            if apply_update(engine, monitor, theta, count, step, model=tasks.model(theta)):
                return theta


def _combine_prox(theta: np.ndarray, values: list, weight: float, step: float,
                  problem: Problem) -> None:
    """With an L1 part: the passes' smooth movements weighted ``weight``, then one prox
    with the threshold they accumulated (``weight`` times their steps), so the model stays
    exactly sparse; the optimum is a fixed point, as for each pass (its optimality
    condition holds for any step)."""
    smooth, count = sum_results(values, 4, 3)
    theta += weight * smooth
    problem.prox(theta, weight * count * step)


async def _search(
    engine: Any, problem: Problem, theta: np.ndarray, r: np.ndarray, eta: float, cap: float
) -> float:
    """The multiplier among ``eta / 2, eta, 2 eta`` (clipped to ``[1, cap]``) whose point
    ``theta + m r`` has the lowest full objective (one pass over the candidates)."""
    cands = sorted({max(1.0, eta / 2.0), eta, min(cap, 2.0 * eta)})
    thetas = np.stack([theta + c * r for c in cands])
    sums = await engine.aobjectives(thetas, **problem.kernel_kwargs)
    values = [problem.objective(float(sv), t) for sv, t in zip(sums, thetas, strict=True)]
    return cands[int(np.argmin(values))]
