"""Synchronous L-BFGS: every iteration waits for the full loss and gradient of every
partition (a gather barrier), as dask-glm's and scikit-learn's L-BFGS do.

Each iteration moves along the two-loop direction (:class:`CurvatureMemory`) from a unit
trial step (the first iteration: a step of unit length along ``-g``), halved until
Armijo's sufficient decrease holds; every trial point costs one pass over the data, which
also gives the gradient the next iteration starts from. The exact objective of every
iterate is known, so ``tol``, ``gtol`` and ``target_objective`` need no extra pass.
Smooth problems only (penalty ``"none"`` or ``"l2"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.barriers import Barrier
from ..problem import Problem, RowStats
from ..tasks import column_sums_kernel, eval_kernel
from .base import RunContext, Solver, SolverState, apply_update
from .lbfgs_common import CurvatureMemory, LbfgsOptions, PairsInState, armijo, first_step
from .preconditioners import from_column_sums

__all__ = ["LBFGS", "LbfgsState", "MAX_HALVINGS", "initial_preconditioner"]

#: trial steps halved at most this many times in one iteration (then the run stops)
MAX_HALVINGS = 40


@dataclass(frozen=True)
class LbfgsState(SolverState):
    """The curvature pairs (``s`` and ``y`` stacked), so a continued run keeps them."""

    s: np.ndarray | None = None
    y: np.ndarray | None = None


def objective_and_gradient(problem: Problem, theta: np.ndarray, values: list) -> tuple:
    """``(f, gradient, loss_sum, grad_sum)`` at ``theta`` from a round of evaluation
    results ``(loss_sum, grad_sum, rows)`` per partition."""
    loss_sum = float(sum(v[0] for v in values))
    grad_sum = values[0][1].copy()
    for v in values[1:]:
        grad_sum += v[1]
    grad = grad_sum / problem.n + problem.smooth_gradient(theta)
    return problem.objective(loss_sum, theta), grad, loss_sum, grad_sum


async def initial_preconditioner(ctx: RunContext, options: LbfgsOptions) -> Any:
    """The initial inverse Hessian ``options.precondition`` asks for
    (:func:`~daskasync.solvers.preconditioners.from_column_sums`, from one pass over the
    data computing every column's sum and sum of squares), or None (``"none"``)."""
    if options.precondition == "none":
        return None
    sums = await ctx.engine.amap_partitions(column_sums_kernel, None, "colsums")
    return from_column_sums(options.precondition, ctx.problem, np.sum(sums, axis=0))


class LBFGS(PairsInState, Solver):
    """Synchronous L-BFGS with an Armijo backtracking line search.

    Options: ``memory`` (curvature pairs, default 10), ``precondition`` (``"standardize"``, see
    :class:`~daskasync.solvers.lbfgs_common.LbfgsOptions`). The step size is the trial step of
    each iteration (``"auto"``: 1, the natural step of a quasi-Newton direction).
    """

    name = "lbfgs"
    synchronous = True
    default_schedule = "constant"
    penalties = ("none", "l2")
    Options = LbfgsOptions
    State = LbfgsState

    @classmethod
    def updates_per_epoch(cls, n_partitions: int, fraction: float) -> float:
        return 1.0  # full passes, whatever the batch fraction

    def auto_step(self, stats: RowStats, n_partitions: int, barrier: Barrier,
                  staleness_aware: bool) -> float:
        return 1.0

    async def _evaluate(self, ctx: RunContext, theta: np.ndarray) -> tuple:
        ctx.engine.publish(theta)
        values, _ = await ctx.engine.around(eval_kernel, ctx.problem.kernel_kwargs)
        return objective_and_gradient(ctx.problem, theta, values)

    async def run(self, ctx: RunContext, theta: np.ndarray) -> np.ndarray:
        engine, monitor, problem = ctx.engine, ctx.monitor, ctx.problem
        h0 = await initial_preconditioner(ctx, self.options)
        memory = self._attach(CurvatureMemory(self.options.memory, h0))
        monitor.record(theta, force=True)
        f, g, _, _ = await self._evaluate(ctx, theta)
        while True:
            d = memory.direction(g)
            slope = float(np.vdot(g, d))
            if not slope < 0:  # not a descent direction: restart from the scaled gradient
                memory.reset()
                d = memory.direction(g)
                slope = float(np.vdot(g, d))
            step = ctx.schedule(engine.clock) * (first_step(slope) if not len(memory) else 1.0)
            for _ in range(MAX_HALVINGS):
                trial = theta + step * d
                f_t, g_t, loss_sum, grad_sum = await self._evaluate(ctx, trial)
                if armijo(f_t, f, step, slope):
                    break
                monitor.add_rows(problem.n)
                step *= 0.5
            else:
                monitor.stop_reason = "line_search"
                return theta
            memory.push(trial - theta, g_t - g)
            theta[...] = trial
            f, g = f_t, g_t
            if apply_update(engine, monitor, theta, problem.n, step, (loss_sum, grad_sum)):
                return theta
