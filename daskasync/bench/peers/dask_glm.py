"""dask-glm peers (``lbfgs``, ``gradient_descent``, ``admm``, ``proximal_grad``) on
persisted dask arrays: ``lbfgs`` traced by its loss evaluations in one run
(:func:`evaluation_trace`), the others by restarts. The ``lamduh`` mapping, and why the L2
term is added as extra rows (:class:`_RowPenaltyFamily`), are documented in
:mod:`daskasync.bench.peers`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import dask
import numpy as np
import scipy.sparse as sp

from .common import (
    MAX_ITER_CAP,
    PeerRun,
    RunContext,
    persisted_arrays,
    quiet_warnings,
    restart_trace,
)

__all__ = ["EvaluationRecorder", "dask_glm_runner", "evaluation_trace"]


class OutOfTime(Exception):
    """Raised inside a loss evaluation to end a traced run at its time budget."""


class EvaluationRecorder:
    """A dask-glm family: ``base``'s, recording ``(seconds since start, beta)`` at every
    loss evaluation of ``lbfgs`` (which calls the family's ``pointwise_loss`` once per
    point it evaluates, line-search trials included). The first evaluation starting
    ``budget`` seconds or more after :meth:`start` raises :class:`OutOfTime` instead.

    ``beta`` is kept as dask-glm passes it (with a distributed client, a dask array over
    the version it scattered), so recording costs the run nothing; it is computed after
    the run. dask-glm scatters under content-hashed keys, so an earlier run's points are
    held until :meth:`close`: releasing the warm-up's first point (``beta = 0``) while the
    next run scatters the same key again would race on the scheduler and lose that key."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.recorded: list[tuple[float, Any]] = []  #: every run's points, in order
        self.first = 0  #: where the current run's points start in ``recorded``
        self.budget = math.inf
        self.t0 = time.perf_counter()

    @property
    def points(self) -> list[tuple[float, Any]]:
        """The current run's ``(seconds, beta)``."""
        return self.recorded[self.first:]

    def start(self, budget: float = math.inf) -> None:
        """Start the clock of a run of ``budget`` seconds (earlier points are kept)."""
        self.first = len(self.recorded)
        self.budget = float(budget)
        self.t0 = time.perf_counter()

    def close(self) -> None:
        """Drop every point (which releases the versions they hold on the cluster)."""
        self.recorded, self.first = [], 0

    def pointwise_loss(self, beta: Any, X: Any, y: Any) -> Any:
        seconds = time.perf_counter() - self.t0
        if seconds >= self.budget:
            raise OutOfTime
        self.recorded.append((seconds, beta))
        return self.base.pointwise_loss(beta, X, y)

    def pointwise_gradient(self, beta: Any, X: Any, y: Any) -> Any:
        return self.base.pointwise_gradient(beta, X, y)


def evaluation_trace(ctx: RunContext, fit: Callable[[int], Any], recorder: EvaluationRecorder,
                     info: dict[str, Any]) -> PeerRun:
    """One timed run of ``fit(max_iter)`` (after an untimed ``fit(1)`` that absorbs
    imports and compilation) traced by ``recorder``: a point per loss evaluation, at the
    time the evaluation started, with the objective of the best point evaluated so far
    (computed on the cluster after the run, off the clock). The run ends when the solver
    stops or at ``ctx.time_budget``."""
    f0 = ctx.evaluate(np.zeros(ctx.d))
    with quiet_warnings():
        recorder.start()  # the warm-up runs to its end
        fit(1)
        recorder.start(ctx.time_budget)
        try:
            fit(ctx.max_iter if ctx.max_iter is not None else MAX_ITER_CAP)
            reason = "solver_stopped"
        except OutOfTime:
            reason = "time_budget"
    points = recorder.points
    try:
        with ctx.client.as_current():
            betas = dask.compute(*(b for _, b in points))
    finally:
        recorder.close()
    coefs = [np.asarray(b, dtype=float).ravel() for b in betas]
    evaluated = [ctx.evaluate(c) for c in coefs]
    best = np.minimum.accumulate([f0, *evaluated])
    k = int(np.argmin(evaluated)) if evaluated else -1
    info.update(trace="evaluations: one run; a point per loss evaluation (line-search trials "
                      "included) at the time it started, with the best objective so far",
                evaluations=len(evaluated), evaluated_objectives=evaluated, stopped=reason)
    return PeerRun(
        name=ctx.name, times=[0.0, *(t for t, _ in points)], objectives=best.tolist(),
        coef=coefs[k] if evaluated else np.zeros(ctx.d), intercept=0.0,
        iterations=len(evaluated), step_size=None, info=info,
    )


class _RowPenaltyFamily:
    """A dask-glm family: ``base`` on the first ``n`` rows plus ``||z||^2 / 2`` on the
    rows after them (``sqrt(lamduh) * I`` appended to ``X``, so that part is exactly
    ``lamduh * ||beta||^2 / 2``). ``y`` holds the ``n`` data labels only."""

    def __init__(self, base: Any, n: int) -> None:
        self.base, self.n = base, n

    def loglike(self, Xbeta: Any, y: Any) -> Any:
        n = self.n
        return self.base.loglike(Xbeta[:n], y) + 0.5 * (Xbeta[n:] ** 2).sum()

    def gradient(self, Xbeta: Any, X: Any, y: Any) -> Any:
        n = self.n
        return self.base.gradient(Xbeta[:n], X[:n], y) + X[n:].T.dot(Xbeta[n:])


def dask_glm_runner(algorithm: str) -> Callable[[RunContext], PeerRun]:
    def run(ctx: RunContext) -> PeerRun:
        import dask_glm
        from dask_glm import algorithms, families, regularizers

        scale = 1.0 if ctx.loss == "logistic" else 2.0
        lamduh = scale * ctx.n * ctx.lam
        base = families.Logistic if ctx.loss == "logistic" else families.Normal
        fmt = "coo" if ctx.data.is_sparse else "dense"
        opts = dict(ctx.options)
        # lbfgs and admm apply dask-glm's L2 correctly; gradient_descent has no regularizer
        # and proximal_grad's line search ignores it (module docstring): rows unless asked
        l2_mode = opts.pop("l2", "prox" if algorithm in ("lbfgs", "admm") else "rows")
        kw: dict[str, Any] = {"normalize": False}
        extra = None
        if l2_mode == "rows":
            kw["family"] = _RowPenaltyFamily(base, ctx.n)
            root = math.sqrt(lamduh)
            if ctx.data.is_sparse:
                import sparse

                extra = sparse.COO.from_scipy_sparse(root * sp.identity(ctx.d, format="csr"))
            else:
                extra = root * np.eye(ctx.d)
            if algorithm == "proximal_grad":
                kw.update(regularizer=regularizers.L2(), lamduh=0.0)
        else:
            kw.update(family=base, regularizer=regularizers.L2(), lamduh=lamduh)
        recorder = None
        if algorithm == "lbfgs" and l2_mode == "prox":
            recorder = kw["family"] = EvaluationRecorder(base)
        defaults = {
            "lbfgs": {"tol": 1e-12 * scale * ctx.n},
            "admm": {"abstol": 1e-12, "reltol": 1e-12},
            "gradient_descent": {"tol": 1e-15},
            "proximal_grad": {"tol": 1e-15},
        }[algorithm]
        kw.update({**defaults, **opts})
        solver = getattr(algorithms, algorithm)
        info: dict[str, Any] = {
            "package": f"dask-glm {dask_glm.__version__}", "lamduh": lamduh,
            "family": base.__name__, "l2": l2_mode, "x_chunks": fmt,
            "solver_kwargs": {k: v for k, v in kw.items() if k not in ("family", "regularizer")},
        }
        with persisted_arrays(ctx, fmt, zero_one=ctx.loss == "logistic", extra_rows=extra) as (X, y):
            def fit(k: int) -> tuple[np.ndarray, float, int | None]:
                with ctx.client.as_current():
                    beta = solver(X, y, max_iter=k, **kw)
                beta = beta.todense() if hasattr(beta, "todense") else beta
                return np.asarray(beta, dtype=float).ravel(), 0.0, None

            if recorder is not None:
                return evaluation_trace(ctx, fit, recorder, info)
            return restart_trace(ctx, fit, None, info)

    return run
