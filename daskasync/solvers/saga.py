"""SAGA (synchronous rounds) and ASAGA (asynchronous) with the gradient history.

The history (one scalar per sample per output, plus ``alpha_bar``) lives on the driver in a
:class:`~daskasync.engine.history.GradientHistory`. Each task is shipped the scalars of the
rows it will sample (the driver draws the same seeded sample the task will), and its result
updates them. Dropped results (staler than ``tau``) change nothing: tasks are pure, so the
history stays consistent.
"""

from __future__ import annotations

import numpy as np

from ..engine.driver import Engine
from ..engine.history import GradientHistory
from ..kernels_saga import saga_batch_kernel, saga_sequential_kernel, sequential_loss_code
from ..schedules import Schedule
from ..tasks import sample_rows
from .base import Monitor, Problem, apply_update, sum_results

__all__ = ["run_saga", "run_asaga", "SagaTasks"]

#: ASAGA's momentum safeguard: after this many consecutive checks at a new best, a
#: ``beta`` halved by earlier rises moves halfway back to the requested momentum.
_MOMENTUM_RECOVERY_CHECKS = 10


class SagaTasks:
    """Builds per-task arguments (the history scalars of the sampled rows) and remembers
    which rows each in-flight task sampled, so its result can be stored back."""

    def __init__(
        self,
        engine: Engine,
        problem: Problem,
        history: GradientHistory,
        fraction: float,
        inner: str,
        step: float,
    ) -> None:
        self.engine = engine
        self.problem = problem
        self.history = history
        self.fraction = fraction
        self.inner = inner
        self.sizes = np.diff(engine.data.offsets)
        self._rows: dict[tuple[int, int], np.ndarray] = {}
        pen = problem.penalty
        self.kernel = saga_sequential_kernel if inner == "sequential" else saga_batch_kernel
        base = {"fraction": fraction, "fit_intercept": problem.fit_intercept}
        if inner == "sequential":
            base.update(
                loss_code=sequential_loss_code(problem.loss),
                lam2=pen.smooth_strength,
                lam1=pen.l1_strength,
                n=problem.n,
                step=step,
            )
        else:
            base["loss"] = problem.loss
        self.base = base

    def args(self, partition: int, task_index: int) -> dict:
        rows = sample_rows(
            int(self.sizes[partition]), self.fraction, self.engine.seed, partition, task_index
        )
        self._rows[(partition, task_index)] = rows
        kw = dict(self.base, old=self.history.scalars(partition, rows))
        if self.inner == "sequential":
            kw["mean"] = self.history.mean.copy()
        return kw

    def store(self, partition: int, task_index: int, new: np.ndarray, mean_delta) -> None:
        rows = self._rows.pop((partition, task_index))
        self.history.update(partition, rows, new, mean_delta)

    def forget(self, partition: int, task_index: int) -> None:
        self._rows.pop((partition, task_index), None)


def _batch_step(theta, diff_sum, count, step, problem: Problem, history: GradientHistory):
    """``theta <- prox(theta - step * (diff_sum / count + alpha_bar + smooth penalty grad))``."""
    v = diff_sum / count
    v += history.mean
    v += problem.smooth_gradient(theta)
    theta -= step * v
    return problem.prox(theta, step)


async def run_saga(
    engine: Engine,
    problem: Problem,
    theta: np.ndarray,
    schedule: Schedule,
    fraction: float,
    monitor: Monitor,
    *,
    history: GradientHistory,
    inner: str = "sequential",
    staleness_aware: bool = False,
    combine: float | str | None = None,
    eta0: float = 1.0,
    momentum: float = 0.0,
    velocity0: np.ndarray | None = None,
) -> np.ndarray:
    """Synchronous SAGA: every round all partitions compute on the same version behind a
    gather barrier. ``inner="batch"``: one step with the summed history-corrected gradient
    (ASYNC's SAGA); ``inner="sequential"``: the partitions' sequential SAGA passes are
    combined and their ``alpha_bar`` changes summed (exact history).

    Combination of the passes (``combine``): a number ``c`` adds each pass with weight
    ``c`` (``1 / P`` averages them, always stable); ``"search"`` (the default for smooth
    penalties) moves along their average ``r`` by the best of three multipliers around
    the last one (``eta / 2, eta, 2 eta`` within ``[1, 4 P]``), judged by one full-objective
    pass over the three candidates. Averaging advances about one partition's worth of
    steps per round; on ill-conditioned problems, where the passes agree on the slow
    directions, the search recovers the other partitions' progress (``eta`` near ``P`` or
    above), and where they disagree it stays at the average (``eta = 1``).

    ``momentum`` ``beta`` (heavy ball, Polyak 1964): each round starts from
    ``theta + beta (theta - theta_prev)`` and applies the round's update (searched from that
    point) there; ``velocity0`` is ``theta - theta_prev`` of a run being continued."""
    P = engine.n_partitions
    search = combine == "search" and inner == "sequential" and not problem.penalty.has_prox
    weight = 1.0 / P if combine is None or isinstance(combine, str) else float(combine)
    eta = float(eta0)
    n = problem.n
    step0 = schedule(0)
    tasks = SagaTasks(engine, problem, history, fraction, inner, step0)
    velocity = np.zeros_like(theta)
    if velocity0 is not None:
        velocity[...] = np.reshape(velocity0, theta.shape)
    engine.publish(theta)
    monitor.record(theta, force=True)
    while True:
        values, attrs = await engine._round(tasks.kernel, tasks.args)
        if momentum:
            before = theta.copy()
            theta += momentum * velocity
        if inner == "batch":
            diff_sum, count = sum_results(values, 0, 2)
            step = schedule(engine.clock)
            _batch_step(theta, diff_sum, count, step, problem, history)
            for a, v in zip(attrs, values, strict=True):
                tasks.store(a.partition, a.task_index, v[1], v[0] / n)
        else:
            step = step0
            delta, count = sum_results(values, 0, 3)
            for a, (_d_theta, d_mean, new, _c, _s) in zip(attrs, values, strict=True):
                tasks.store(a.partition, a.task_index, new, d_mean)
            if search:
                eta = await _search(engine, problem, theta, delta / P, eta, 4.0 * P)
                theta += eta * (delta / P)
            else:
                theta += weight * delta
        if search:
            monitor.info["combine_eta"] = eta
        if momentum:
            np.subtract(theta, before, out=velocity)
            monitor.info["momentum_velocity"] = velocity.copy()
        if apply_update(engine, monitor, theta, count, step) or await monitor.wait_check():
            return theta


async def _search(
    engine: Engine, problem: Problem, theta: np.ndarray, r: np.ndarray, eta: float, cap: float
) -> float:
    """The multiplier among ``eta / 2, eta, 2 eta`` (clipped to ``[1, cap]``) whose point
    ``theta + m r`` has the lowest full objective (one pass over the candidates)."""
    cands = sorted({max(1.0, eta / 2.0), eta, min(cap, 2.0 * eta)})
    thetas = np.stack([theta + c * r for c in cands])
    sums = await engine._objectives(thetas, **problem.kernel_kwargs)
    values = [problem.objective(float(sv), t) for sv, t in zip(sums, thetas, strict=True)]
    return cands[int(np.argmin(values))]


async def run_asaga(
    engine: Engine,
    problem: Problem,
    theta: np.ndarray,
    schedule: Schedule,
    fraction: float,
    monitor: Monitor,
    *,
    history: GradientHistory,
    inner: str = "sequential",
    staleness_aware: bool = False,
    combine: float | str | None = None,
    eta0: float = 1.0,
    momentum: float = 0.0,
    beta0: float | None = None,
) -> np.ndarray:
    """Asynchronous SAGA: each partition's result is applied as it arrives, with the
    engine's barrier (quorum, ``tau``, SSP, predicates). ``inner="batch"`` takes a step of
    ``schedule(k / P)`` (divided by ``1 + staleness`` when ``staleness_aware``);
    ``inner="sequential"`` adds the task's model change weighted ``combine`` (default
    ``1 / P``; times ``P / (1 + staleness)`` when ``staleness_aware``).

    ``combine="adaptive"`` weighs each change ``eta / P`` and adapts ``eta`` in
    ``[1, P]`` from the full-objective checks that run alongside (about one per epoch,
    never waited for): up by half when the objective went down since the previous check,
    halved when it went up (a "bold driver" rule; asynchronous results cannot be
    line-searched one by one as synchronous rounds are).

    ``momentum`` ``beta`` (sequential form): every ``P`` applied results make a virtual
    round, and the model jumps by ``beta`` times the velocity ``v <- beta v + (round's
    change)``. Safeguard (adaptive restart, O'Donoghue and Candes 2015): when a check finds
    the objective above the best checked one, the run restarts from that best model without
    velocity (the history stays consistent: SAGA's history may come from any points), and
    a second such rise before any improvement halves ``beta``. The rises come mostly from
    the early, nonlinear phase: after ``_MOMENTUM_RECOVERY_CHECKS`` consecutive checks at a
    new best, a halved ``beta`` moves halfway back to ``momentum`` (on a9a the tail then
    runs at about 0.7 instead of 0.24, and 1e-13 comes about twice as soon). ``beta0`` is
    the ``beta`` a continued run had reached (at most ``momentum``)."""
    P = engine.n_partitions
    adaptive = combine == "adaptive" and inner == "sequential"
    base_weight = 1.0 / P if combine is None or isinstance(combine, str) else float(combine)
    eta = float(eta0) if adaptive else 1.0
    seen_checks = len(monitor.checked)
    if adaptive or momentum:
        monitor.watch = True
    beta = float(momentum) if inner == "sequential" else 0.0
    if beta and beta0 is not None:
        beta = min(beta, float(beta0))
    if beta:
        monitor.info["momentum"] = beta  # the state of a run to continue
    velocity = np.zeros_like(theta)
    start = theta.copy()
    in_round = 0
    rises = 0
    gains = 0  # consecutive checks at a new best
    n = problem.n
    step0 = schedule(0)
    tasks = SagaTasks(engine, problem, history, fraction, inner, step0)
    engine.publish(theta)
    monitor.record(theta, force=True)
    await engine._submit(tasks.kernel, None, tasks.args)
    while True:
        value, attrs = await engine._next()
        if attrs.dropped:
            tasks.forget(attrs.partition, attrs.task_index)
            if monitor.check_time():
                break
        else:
            if inner == "batch":
                diff_sum, new, count = value
                step = schedule(engine.clock / P)
                if staleness_aware:
                    step /= 1.0 + attrs.staleness
                _batch_step(theta, diff_sum, count, step, problem, history)
                tasks.store(attrs.partition, attrs.task_index, new, diff_sum / n)
            else:
                d_theta, d_mean, new, count, smooth = value
                checked = len(monitor.checked) > seen_checks  # a check finished since
                seen_checks = len(monitor.checked)
                if adaptive and checked and seen_checks >= 2:
                    down = monitor.checked[-1] < monitor.checked[-2]
                    eta = min(float(P), 1.5 * eta) if down else max(1.0, 0.5 * eta)
                    monitor.info["combine_eta"] = eta
                weight = base_weight * eta
                if staleness_aware:
                    weight = min(1.0, weight * P / (1.0 + attrs.staleness))
                step = step0 * weight
                if problem.penalty.has_prox:
                    # a result computed on a stale model: add its smooth movement and apply
                    # the prox here, with the step it accumulated (exact zeros; the optimum
                    # is a fixed point for any step)
                    theta += weight * smooth
                    problem.prox(theta, weight * count * step0)
                else:
                    theta += weight * d_theta
                if momentum:
                    best = monitor.best_checked  # set by every finished check
                    if checked and best is not None:
                        if monitor.checked[-1] <= best[0]:
                            rises = 0  # this check is the best so far
                            gains += 1
                            if gains >= _MOMENTUM_RECOVERY_CHECKS and beta < momentum:
                                # a sustained descent: move beta halfway back to the
                                # initial momentum (the rises came from the transient)
                                gains = 0
                                beta += 0.5 * (momentum - beta)
                                monitor.info["momentum"] = beta
                        else:  # restart from the best checked model, without velocity
                            rises += 1
                            gains = 0
                            if rises >= 2:  # again: momentum is too strong here
                                beta *= 0.5
                                rises = 0
                            velocity[...] = 0.0
                            theta[...] = best[1]
                            start[...] = theta
                            in_round = 0
                            monitor.info["momentum"] = beta
                            monitor.info["momentum_restarts"] = (
                                monitor.info.get("momentum_restarts", 0) + 1
                            )
                    in_round += 1
                    if in_round == P:
                        in_round = 0
                        velocity *= beta
                        velocity += theta - start
                        theta += beta * velocity
                        start[...] = theta
                tasks.store(attrs.partition, attrs.task_index, new, d_mean)
            if apply_update(engine, monitor, theta, count, step):
                break
        if not engine._batch_pending():
            await engine._submit(tasks.kernel, None, tasks.args)
    await engine._cancel_in_flight()
    return theta
