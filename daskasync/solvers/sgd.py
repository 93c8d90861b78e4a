"""Synchronous mini-batch SGD (Spark MLlib's, ASYNC's synchronous baseline).

Every round, every partition samples a fraction of its rows on model version ``k``; a
gather barrier waits for all; one update with the averaged gradient and the step
``gamma / sqrt(k + 1)``. The update rule :func:`sgd_step` is shared with ASGD.
"""

from __future__ import annotations

import numpy as np

from ..engine.barriers import Barrier
from ..problem import Problem, RowStats, lipschitz_constant
from ..tasks import grad_kernel
from .base import RunContext, Solver, apply_update, sum_results

__all__ = ["SGD", "sgd_step"]


def sgd_step(
    theta: np.ndarray, grad_sum: np.ndarray, count: int, step: float, problem: Problem
) -> np.ndarray:
    """``theta <- prox(theta - step * (grad_sum / count + smooth penalty gradient))`` in place.

    Examples
    --------
    >>> import numpy as np
    >>> from daskasync.losses import SquaredLoss
    >>> from daskasync.penalties import NoPenalty
    >>> p = Problem(SquaredLoss(), NoPenalty(), False, n=4, d=2)
    >>> sgd_step(np.zeros(2), np.array([2.0, 4.0]), 2, 0.5, p).tolist()
    [-0.5, -1.0]
    """
    g = grad_sum / count
    g += problem.smooth_gradient(theta)
    theta -= step * g
    return problem.prox(theta, step)


class SGD(Solver):
    """Synchronous mini-batch SGD: one update per round of all partitions.

    Automatic step: ``1 / L`` with ``L`` the largest per-sample smoothness constant
    (:func:`~daskasync.problem.lipschitz_constant`), under the ``invsqrt`` schedule.
    """

    name = "sgd"
    default_fraction = 0.1
    synchronous = True

    def auto_step(self, stats: RowStats, n_partitions: int, barrier: Barrier,
                  staleness_aware: bool) -> float:
        return 1.0 / lipschitz_constant(stats.max_sq_norm, self.problem)

    async def run(self, ctx: RunContext, theta: np.ndarray) -> np.ndarray:
        engine, monitor, problem = ctx.engine, ctx.monitor, ctx.problem
        kw = {"fraction": ctx.fraction, **problem.kernel_kwargs}
        engine.publish(theta)
        monitor.record(theta, force=True)
        while True:
            values, _ = await engine.around(grad_kernel, kw)
            grad_sum, count = sum_results(values, 0, 1)
            step = ctx.schedule(engine.clock)
            sgd_step(theta, grad_sum, count, step, problem)
            if apply_update(engine, monitor, theta, count, step):
                return theta
