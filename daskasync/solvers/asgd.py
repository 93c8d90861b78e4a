"""Asynchronous SGD (ASYNC's ASGD).

Each partition's result is applied as it arrives with the step ``gamma / sqrt(k / P + 1)``;
results staler than the barrier's ``tau`` are dropped and their partitions handed new work;
the barrier decides who gets work and when. With ``staleness_aware`` the step of a result
is divided by ``1 + staleness`` (as ElasticDL modulates its learning rate).
"""

from __future__ import annotations

import numpy as np

from ..engine.barriers import Barrier
from ..problem import RowStats, lipschitz_constant
from ..tasks import grad_kernel
from .base import RunContext, Solver, apply_update
from .sgd import sgd_step

__all__ = ["ASGD"]


class ASGD(Solver):
    """Asynchronous SGD: one update per applied partition result.

    Automatic step: ``1 / L``, as SGD's, under the ``invsqrt`` schedule of ``k / P``.
    """

    name = "asgd"
    family = "sgd"
    default_fraction = 0.1
    synchronous = False

    def auto_step(self, stats: RowStats, n_partitions: int, barrier: Barrier,
                  staleness_aware: bool) -> float:
        return 1.0 / lipschitz_constant(stats.max_sq_norm, self.problem)

    async def run(self, ctx: RunContext, theta: np.ndarray) -> np.ndarray:
        engine, monitor, problem = ctx.engine, ctx.monitor, ctx.problem
        kw = {"fraction": ctx.fraction, **problem.kernel_kwargs}
        P = engine.n_partitions
        engine.publish(theta)
        monitor.record(theta, force=True)
        await engine.asubmit(grad_kernel, None, kw)
        while True:
            (grad_sum, count), attrs = await engine.anext_result()
            if not attrs.dropped:
                step = ctx.schedule(engine.clock / P)
                if ctx.staleness_aware:
                    step /= 1.0 + attrs.staleness
                sgd_step(theta, grad_sum, count, step, problem)
                if apply_update(engine, monitor, theta, count, step):
                    break
            elif monitor.check_time():
                break
            if not engine.batch_pending():
                await engine.asubmit(grad_kernel, None, kw)
        await engine.acancel_in_flight()
        return theta
