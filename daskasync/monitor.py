"""The run monitor: counts updates and epochs, records the history, runs the full-data
checks (alongside the run) and decides when to stop; and the stopping criteria it applies.
Cluster-free except for the evaluation passes it asks the engine for."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .constraints import Interval, check
from .problem import Problem
from .result import FitResult, Record

__all__ = ["StopCriteria", "Monitor"]

_POSITIVE = Interval("real", 0, closed="neither")
_POSITIVE_INT = Interval("int", 1)


@dataclass(frozen=True)
class StopCriteria:
    """When to stop. The run stops at the first criterion met.

    Parameters
    ----------
    max_updates : int, optional
        Applied updates (one per synchronous round, one per applied asynchronous result).
    max_epochs : float, optional
        Passes over the data (rows processed / n).
    time_budget : float, optional
        Seconds of wall time.
    tol : float, optional
        Stop when the full objective changes by less than ``tol * max(1, |f|)`` between two
        checks.
    gtol : float, optional
        Stop when the sup-norm of the full (proximal) gradient is below ``gtol``.
    check_every : int, optional
        Updates between two full-data checks for ``tol``/``gtol`` (default: P).
    target_objective : float, optional
        Stop when a full-data check finds the objective at or below this value (for
        example ``f* * (1 + 1e-4)`` to stop at a relative suboptimality of ``1e-4``).
    """

    max_updates: int | None = None
    max_epochs: float | None = None
    time_budget: float | None = None
    tol: float | None = None
    gtol: float | None = None
    check_every: int | None = None
    target_objective: float | None = None

    def __post_init__(self) -> None:
        check("max_updates", self.max_updates, _POSITIVE_INT, None)
        for name in ("max_epochs", "time_budget", "tol", "gtol"):
            check(name, getattr(self, name), _POSITIVE, None)
        check("check_every", self.check_every, _POSITIVE_INT, None)
        check("target_objective", self.target_objective, Interval("real"), None)
        if not any(
            v is not None for v in (self.max_updates, self.max_epochs, self.time_budget)
        ) and self.tol is None and self.gtol is None and self.target_objective is None:
            raise ValueError(
                "stopping: give at least one of max_updates, max_epochs, time_budget, tol, "
                "gtol, target_objective"
            )


def _seen(task: asyncio.Future) -> None:
    """Mark ``task``'s error as seen (awaiting it later still raises it)."""
    if not task.cancelled():
        task.exception()


class Monitor:
    """Counts updates and epochs, records history, and checks the stopping criteria.

    Full-objective checks (for ``tol``, ``gtol``, ``target_objective``, a progress bar or a
    callback) run alongside the run, for synchronous and asynchronous solvers alike: no
    solver waits for one (a stop is decided when a check finishes, and the check's model
    is the one recorded), so a check costs every solver the same. Solvers that compute the
    exact objective as part of their algorithm (L-BFGS) pass it in and need none.

    History records are taken every ``record_every`` updates or ``record_interval`` seconds
    (model snapshots on the driver); their objectives are evaluated after the run in one
    pass over the data (``record_objective=True``), so recording does not slow the run.
    """

    def __init__(
        self,
        engine: Any,
        problem: Problem,
        stop: StopCriteria,
        *,
        record_every: int | None,
        record_interval: float | None = None,
        record_objective: bool = True,
        updates_per_epoch: int = 1,
        updates: int = 0,
        rows: int = 0,
        elapsed: float = 0.0,
        progress: Any = None,
        callback: Any = None,
    ) -> None:
        check("record_every", record_every, _POSITIVE_INT, None)
        check("record_interval", record_interval, _POSITIVE, None)
        self.engine = engine
        self.problem = problem
        self.stop = stop
        self.record_every = record_every
        self.record_interval = record_interval
        self.record_objective = record_objective
        self.check_every = stop.check_every or max(1, int(updates_per_epoch))
        self.updates = updates
        self.rows = rows
        self.t0 = time.perf_counter() - elapsed
        #: a ProgressBar, updated after every update (tqdm throttles the drawing)
        self.progress = progress
        #: called with a RunInfo at every history record and at the end
        self.callback = callback
        # a bar or a callback wants objectives during the run: check the full objective
        # once per epoch, alongside the run, as tolerances do
        self.watch = progress is not None or callback is not None
        #: set by a solver that evaluates its own iterates (:meth:`judge`): the monitor then
        #: runs no check passes of its own
        self.self_judged = False
        self._last_record_t = -math.inf
        self._times: list[float] = []
        self._updates: list[int] = []
        self._epochs: list[float] = []
        self._stale: list[tuple[float, int]] = []
        self._snaps: list[np.ndarray | None] = []
        self._known_obj: dict[int, float] = {}
        self._pending: asyncio.Future | None = None
        self._pending_theta: np.ndarray | None = None
        self._pending_idx = -1
        self._last_f: float | None = None
        self.stop_reason: str | None = None
        #: full objectives of the checks made during the run, in order
        self.checked: list[float] = []
        #: the model of the best check so far (lowest objective) and its objective
        self.best_checked: tuple[float, np.ndarray] | None = None
        self._ckpt: Any = None
        self._ckpt_every: int | None = None
        self._ckpt_interval: float | None = None
        self._ckpt_last_t = 0.0
        self.checkpoints = 0  #: checkpoints written during the run
        self.last_step = float("nan")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    @property
    def epochs(self) -> float:
        return self.rows / self.problem.n

    def record(self, theta: np.ndarray, force: bool = False) -> None:
        now = self.elapsed
        due = force or (
            (self.record_every is not None and self.updates % self.record_every == 0)
            or (self.record_interval is not None and now - self._last_record_t >= self.record_interval)
        )
        if not due or (self._updates and self._updates[-1] == self.updates):
            return
        self._last_record_t = now
        self._times.append(now)
        self._updates.append(self.updates)
        self._epochs.append(self.epochs)
        co = self.engine.coordinator if self.engine is not None else None
        self._stale.append(co.staleness_window() if co is not None else (0.0, 0))
        # a copy for the objective evaluated after the run (none when it is not asked for)
        self._snaps.append(theta.copy() if self.record_objective else None)
        if self.callback is not None:
            self._call(theta, done=False)

    def _call(self, theta: np.ndarray, done: bool) -> None:
        from .progress import RunInfo

        ms, mx = self._stale[-1] if self._stale else (0.0, 0)
        f = self._last_f if self._last_f is not None else float("nan")
        self.callback(
            RunInfo(self._times[-1], self.updates, self.epochs, f, ms, mx, theta.copy(), done)
        )

    def set_checkpoint(self, save: Any, every: int | None, interval: float | None) -> None:
        """Call ``save(theta)`` every ``every`` updates and/or ``interval`` seconds."""
        self._ckpt, self._ckpt_every, self._ckpt_interval = save, every, interval
        self._ckpt_last_t = self.elapsed

    def _maybe_checkpoint(self, theta: np.ndarray) -> None:
        now = self.elapsed
        due = (self._ckpt_every is not None and self.updates % self._ckpt_every == 0) or (
            self._ckpt_interval is not None and now - self._ckpt_last_t >= self._ckpt_interval
        )
        if due:
            self._ckpt(theta)
            self._ckpt_last_t = now
            self.checkpoints += 1

    def add_rows(self, rows: int) -> None:
        """Count rows a solver processed without an update (e.g. a rejected trial point)."""
        self.rows += rows

    def after_update(
        self, theta: np.ndarray, rows: int, exact: tuple[float, Any] | None = None
    ) -> str | None:
        """Count one applied update of ``rows`` sampled rows; return a stop reason or None.

        ``exact``: the full loss sum and gradient sum at ``theta``, when the solver computed
        them as part of its algorithm (L-BFGS): the stopping criteria use them at once,
        without a check pass."""
        self.updates += 1
        self.rows += rows
        self.record(theta)
        if self._ckpt is not None:
            self._maybe_checkpoint(theta)
        s = self.stop
        if s.max_updates is not None and self.updates >= s.max_updates:
            self.stop_reason = "max_updates"
        elif s.max_epochs is not None and self.epochs >= s.max_epochs - 1e-12:
            self.stop_reason = "max_epochs"
        elif s.time_budget is not None and self.elapsed >= s.time_budget:
            self.stop_reason = "time_budget"
        elif exact is not None and self.updates % self.check_every == 0:
            self._judge(theta, exact[0], exact[1], self.updates)
        elif (
            s.tol is not None or s.gtol is not None or s.target_objective is not None
            or self.watch
        ) and self.engine is not None and exact is None and not self.self_judged:
            self._maybe_check(theta)
        if self.progress is not None:
            ms = self.engine.coordinator.mean_recent_staleness if self.engine else 0.0
            f = self._last_f if self._last_f is not None else float("nan")
            self.progress.update(self.updates, epoch=self.epochs, objective=f, staleness=ms)
        if not np.isfinite(theta).all():
            raise FloatingPointError(
                f"the model diverged (non-finite values after {self.updates} updates): "
                "lower the step size"
            )
        return self.stop_reason

    def check_time(self) -> str | None:
        s = self.stop
        if s.time_budget is not None and self.elapsed >= s.time_budget:
            self.stop_reason = "time_budget"
        return self.stop_reason

    # -- full-data checks ------------------------------------------------------------------
    def _maybe_check(self, theta: np.ndarray) -> None:
        if self._pending is not None and self._pending.done():
            self._finish_check()
            if self.stop_reason:
                return
        if self._pending is None and self.updates % self.check_every == 0:
            self._pending_theta = theta.copy()
            self._pending_idx = self.updates
            self._pending = asyncio.ensure_future(
                self.engine.aevaluate(self._pending_theta, **self.problem.kernel_kwargs)
            )
            # a run that stops with an error cancels the check's tasks and never awaits it:
            # its error is seen here, not logged by asyncio as "never retrieved"
            self._pending.add_done_callback(_seen)

    def judge(self, theta: np.ndarray, loss_sum: float, grad_sum: Any) -> str | None:
        """A solver's own exact evaluation of the current model (after update
        ``updates``): recorded, and the stopping criteria apply to it at once."""
        self._judge(theta.copy(), loss_sum, grad_sum, self.updates)
        return self.stop_reason

    def would_stop(self, theta: np.ndarray, loss_sum: float, grad_sum: Any) -> bool:
        """Whether an evaluation with these values would stop the run (no record, no
        effect): a solver with an estimate asks before paying for an exact one."""
        return self._criteria(self.problem.objective(loss_sum, theta), grad_sum,
                              theta) is not None

    def _finish_check(self) -> None:
        fut, self._pending = self._pending, None
        assert fut is not None and self._pending_theta is not None
        loss_sum, grad_sum, _ = fut.result()
        self._judge(self._pending_theta, loss_sum, grad_sum, self._pending_idx)

    def _judge(self, theta: np.ndarray, loss_sum: float, grad_sum: Any,
               idx: int | None) -> None:
        """A full evaluation at ``theta`` (update ``idx``): record it, apply the criteria."""
        f = self.problem.objective(loss_sum, theta)
        if idx is not None:
            self._known_obj[idx] = f
        self.checked.append(f)
        if self.best_checked is None or f < self.best_checked[0]:
            self.best_checked = (f, theta)
        self.stop_reason = self._criteria(f, grad_sum, theta) or self.stop_reason
        self._last_f = f

    def _criteria(self, f: float, grad_sum: Any, theta: np.ndarray) -> str | None:
        """The stopping criterion that an evaluation ``f`` (and ``grad_sum``) meets."""
        s = self.stop
        if s.target_objective is not None and f <= s.target_objective:
            return "target_objective"
        if s.gtol is not None and self.problem.optimality(grad_sum, theta) <= s.gtol:
            return "gtol"
        if (s.tol is not None and self._last_f is not None
                and abs(self._last_f - f) <= s.tol * max(1.0, abs(f))):
            return "tol"
        return None

    async def cancel_check(self) -> None:
        """Let a pending check finish (one pass; cancelling it would leave a gather
        behind)."""
        if self._pending is not None:
            try:
                await self._pending
            finally:
                self._pending = None

    # -- result ----------------------------------------------------------------------------
    async def finish(
        self,
        engine: Any,
        theta: np.ndarray,
        *,
        solver: str,
        settings: dict,
        state: Any = None,
    ) -> FitResult:
        """Final record, deferred objectives, final full evaluation; build the result."""
        wall = self.elapsed
        await self.cancel_check()
        self.record(theta, force=True)
        kw = self.problem.kernel_kwargs
        loss_sum, grad_sum, _ = await engine.aevaluate(theta, **kw)
        final_f = self.problem.objective(loss_sum, theta)
        self._last_f = final_f
        if self.progress is not None:
            self.progress.update(self.updates, epoch=self.epochs, objective=final_f,
                                 staleness=engine.coordinator.mean_recent_staleness)
        if self.callback is not None:
            self._call(theta, done=True)
        objectives = np.full(len(self._updates), np.nan)
        todo = []
        for i, u in enumerate(self._updates):
            if u in self._known_obj:
                objectives[i] = self._known_obj[u]
            elif u == self.updates:
                objectives[i] = final_f
            else:
                todo.append(i)
        if self.record_objective and todo:
            sums = await engine.aobjectives(np.stack([self._snaps[i] for i in todo]), **kw)
            for i, s in zip(todo, sums, strict=True):
                objectives[i] = self.problem.objective(float(s), self._snaps[i])
        history = [
            Record(t, u, e, float(f), float(ms), int(mx))
            for t, u, e, f, (ms, mx) in zip(
                self._times, self._updates, self._epochs, objectives, self._stale, strict=True
            )
        ]
        co = engine.coordinator
        p = self.problem
        return FitResult(
            solver=solver,
            coef=p.coef(theta).copy(),
            intercept=p.intercept(theta),
            updates=self.updates,
            epochs=self.epochs,
            wall_time=wall,
            objective=final_f,
            history=history,
            worker_stats=co.worker_stats(),
            partition_stats=[
                {
                    "partition": s.partition,
                    "tasks": s.tasks_done,
                    "applied": s.applied,
                    "dropped": s.dropped,
                    "mean_task_time": s.avg_task_time,
                    "last_worker": s.worker,
                }
                for s in co.states
            ],
            dropped=co.n_dropped,
            stop_reason=self.stop_reason or "stopped",
            converged=self.stop_reason in ("tol", "gtol", "target_objective"),
            theta=theta.copy(),
            grad_norm=p.optimality(grad_sum, theta),
            step_size=self.last_step,
            settings=settings,
            staleness_counts=dict(sorted(co.staleness_counts.items())),
            state=state,
        )
