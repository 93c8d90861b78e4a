"""The dask-ml peer: ``Incremental`` over scikit-learn's ``SGDClassifier`` /
``SGDRegressor`` (``alpha = lam``), traced pass by pass; see :mod:`daskasync.bench.peers`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .common import MAX_ITER_CAP, PeerRun, RunContext, persisted_arrays, quiet_warnings

__all__ = ["run_dask_ml_sgd"]


def run_dask_ml_sgd(ctx: RunContext) -> PeerRun:
    import dask_ml
    import sklearn
    from dask_ml.wrappers import Incremental
    from sklearn.base import clone
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    common = {"penalty": "l2", "alpha": ctx.lam, "fit_intercept": ctx.fit_intercept,
              "random_state": ctx.seed}
    if ctx.loss == "logistic":
        est: Any = SGDClassifier(loss="log_loss", **common, **ctx.options)
        fit_kw: dict[str, Any] = {"classes": np.array([-1.0, 1.0])}
    else:
        est = SGDRegressor(loss="squared_error", **common, **ctx.options)
        fit_kw = {}
    rate = est.learning_rate
    step = ctx.lam ** -0.25 if rate == "optimal" else float(est.eta0)
    info: dict[str, Any] = {
        "package": f"dask-ml {dask_ml.__version__}, scikit-learn {sklearn.__version__}",
        "estimator": repr(est), "alpha": ctx.lam, "learning_rate": rate,
        "trace": "passes of Incremental.partial_fit over all blocks; clock stopped while "
                 "the objective is evaluated",
    }
    cap = ctx.max_iter if ctx.max_iter is not None else MAX_ITER_CAP
    inc = Incremental(est, shuffle_blocks=True, random_state=np.random.RandomState(ctx.seed))
    with persisted_arrays(ctx, "native", zero_one=False) as (X, y), ctx.client.as_current(), quiet_warnings():
        m0 = int(ctx.data.rows_per_partition[0])
        t0 = time.perf_counter()
        Incremental(clone(est), shuffle_blocks=False).partial_fit(X[:m0], y[:m0], **fit_kw)
        info["warmup_seconds"] = time.perf_counter() - t0
        times, objs = [0.0], [ctx.evaluate(np.zeros(ctx.d))]
        clock, epochs, reason = 0.0, 0, "max_iter"
        coef, intercept = np.zeros(ctx.d), 0.0
        while epochs < cap:
            t0 = time.perf_counter()
            inc.partial_fit(X, y, **fit_kw)
            clock += time.perf_counter() - t0
            epochs += 1
            coef = np.asarray(inc.estimator_.coef_, dtype=float).ravel()
            intercept = float(np.ravel(inc.estimator_.intercept_)[0])
            f = ctx.evaluate(coef, intercept)
            times.append(clock)
            objs.append(f)
            if not np.isfinite(f):
                reason = "diverged"
                break
            if ctx.reached(f):
                reason = "target"
                break
            if clock >= ctx.time_budget:
                reason = "time_budget"
                break
    info["stopped"] = reason
    return PeerRun(name=ctx.name, times=times, objectives=objs, coef=coef,
                   intercept=intercept, iterations=epochs, step_size=step, info=info)
