"""scikit-learn peers on the driver: ``LogisticRegression`` (``C = 1 / (lam n)``) and
``Ridge`` (``alpha = n lam``) with the ``saga`` or ``lbfgs`` solver, traced by restarts; see
:mod:`daskasync.bench.peers`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .common import PeerRun, RunContext, restart_trace

__all__ = ["logistic_penalty", "sklearn_runner"]


def logistic_penalty(l1_ratio: float) -> dict[str, Any]:
    """Keyword arguments of scikit-learn's ``LogisticRegression`` for the elastic-net mix
    ``l1_ratio`` (0: L2, 1: L1) in the installed scikit-learn: 1.8 deprecated ``penalty``
    in favour of ``l1_ratio`` alone, while before 1.8 ``l1_ratio`` is read only with
    ``penalty="elasticnet"`` (and ignored, leaving L2, otherwise)."""
    from sklearn.linear_model import LogisticRegression

    if inspect.signature(LogisticRegression).parameters["penalty"].default == "deprecated":
        return {"l1_ratio": l1_ratio}
    if l1_ratio in (0.0, 1.0):
        return {"penalty": "l1" if l1_ratio == 1.0 else "l2"}
    return {"penalty": "elasticnet", "l1_ratio": l1_ratio}


def sklearn_runner(solver: str) -> Callable[[RunContext], PeerRun]:
    def run(ctx: RunContext) -> PeerRun:
        import sklearn
        from sklearn.linear_model import LogisticRegression, Ridge

        X, y = ctx.data.gather()
        tol = ctx.options.get("tol", 1e-12)
        info: dict[str, Any] = {"package": f"scikit-learn {sklearn.__version__}",
                                "data": "gathered on the driver (not timed)"}
        if ctx.loss == "logistic":
            C = 1.0 / (ctx.lam * ctx.n)
            info["C"] = C

            def make(k: int) -> Any:
                return LogisticRegression(C=C, **logistic_penalty(0.0), solver=solver, tol=tol,
                                          max_iter=k, fit_intercept=ctx.fit_intercept,
                                          random_state=ctx.seed)
        else:
            alpha = ctx.n * ctx.lam
            info["alpha"] = alpha

            def make(k: int) -> Any:
                return Ridge(alpha=alpha, solver=solver, tol=tol, max_iter=k,
                             fit_intercept=ctx.fit_intercept, random_state=ctx.seed)

        def fit(k: int) -> tuple[np.ndarray, float, int | None]:
            est = make(k).fit(X, y)
            n_iter = int(np.max(est.n_iter_)) if est.n_iter_ is not None else None
            return (np.asarray(est.coef_, dtype=float).ravel(),
                    float(np.ravel(est.intercept_)[0]) if ctx.fit_intercept else 0.0, n_iter)

        return restart_trace(ctx, fit, None, info)

    return run
