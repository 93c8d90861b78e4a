"""dask-glm peers (``lbfgs``, ``gradient_descent``, ``admm``, ``proximal_grad``) on
persisted dask arrays, traced by restarts. The ``lamduh`` mapping, and why the L2 term is
added as extra rows (:class:`_RowPenaltyFamily`), are documented in
:mod:`daskasync.bench.peers`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .common import PeerRun, RunContext, persisted_arrays, restart_trace

__all__ = ["dask_glm_runner"]


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

            return restart_trace(ctx, fit, None, info)

    return run
