"""Mini-batch SGD (synchronous rounds) and ASGD (asynchronous, one result per update).

Both are thin loops over the engine: all bookkeeping is in the engine's coordinator and the
run monitor. The update rule is the same function for both (:func:`sgd_step`).
"""

from __future__ import annotations

import numpy as np

from ..engine.driver import Engine
from ..schedules import Schedule
from ..tasks import grad_kernel
from .base import Monitor, Problem, apply_update, sum_results

__all__ = ["sgd_step", "run_sgd", "run_asgd"]


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


async def run_sgd(
    engine: Engine,
    problem: Problem,
    theta: np.ndarray,
    schedule: Schedule,
    fraction: float,
    monitor: Monitor,
    *,
    staleness_aware: bool = False,
) -> np.ndarray:
    """Synchronous mini-batch SGD: every round, every partition samples a fraction of its
    rows on model version ``k``; a gather barrier waits for all; one update."""
    kw = {"fraction": fraction, **problem.kernel_kwargs}
    engine.publish(theta)
    monitor.record(theta, force=True)
    while True:
        values, _ = await engine._round(grad_kernel, kw)
        grad_sum, count = sum_results(values, 0, 1)
        step = schedule(engine.clock)
        sgd_step(theta, grad_sum, count, step, problem)
        if apply_update(engine, monitor, theta, count, step) or await monitor.wait_check():
            return theta


async def run_asgd(
    engine: Engine,
    problem: Problem,
    theta: np.ndarray,
    schedule: Schedule,
    fraction: float,
    monitor: Monitor,
    *,
    staleness_aware: bool = False,
) -> np.ndarray:
    """Asynchronous SGD: each partition's result is applied as it arrives (ASYNC's ASGD,
    ``step = schedule(k / P)``); results staler than the barrier's ``tau`` are dropped and
    their partitions handed new work; the barrier decides who gets work and when. With
    ``staleness_aware`` the step of a result is divided by ``1 + staleness``."""
    kw = {"fraction": fraction, **problem.kernel_kwargs}
    P = engine.n_partitions
    engine.publish(theta)
    monitor.record(theta, force=True)
    await engine._submit(grad_kernel, None, kw)
    while True:
        (grad_sum, count), attrs = await engine._next()
        if not attrs.dropped:
            step = schedule(engine.clock / P)
            if staleness_aware:
                step /= 1.0 + attrs.staleness
            sgd_step(theta, grad_sum, count, step, problem)
            if apply_update(engine, monitor, theta, count, step):
                break
        elif monitor.check_time():
            break
        if not engine._batch_pending():
            await engine._submit(grad_kernel, None, kw)
    await engine._cancel_in_flight()
    return theta
