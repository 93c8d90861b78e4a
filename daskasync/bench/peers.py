"""Peer solvers for the benchmark: dask-glm, dask-ml ``Incremental`` SGD and scikit-learn,
run on the same cluster and the same :class:`~daskasync.data.PartitionedData` as daskasync,
each recording a trace of (wall seconds, objective).

Every peer minimizes daskasync's objective

.. math:: f(w) = \\frac1n \\sum_i \\ell(x_i \\cdot w + b, y_i) + \\frac{\\lambda}{2} \\|w\\|^2

with the logistic loss ``log(1 + exp(-y z))`` (labels in ``{-1, +1}``) or the squared loss
``(z - y)^2 / 2``; the intercept ``b`` (``fit_intercept=True``, scikit-learn and dask-ml
peers only) is not penalized. Each peer's own objective is a positive multiple of ``f``
once ``lam`` is mapped as below, so it has the same minimizer and ``f`` is what the trace
records (evaluated by :func:`evaluate_objective`, on the cluster, block by block).

``lam`` mapping (read from the installed sources)
-------------------------------------------------
dask-glm 0.4.0 (``dask_glm/families.py``, ``regularizers.py``, ``algorithms.py``)
    ``Logistic.loglike(Xbeta, y) = (Xbeta + log1p(exp(-Xbeta))).sum() - dot(y, Xbeta)``: the
    SUM of the logistic loss with labels in ``{0, 1}`` (``y01 = (y + 1) / 2``).
    ``Normal.loglike = ((y - Xbeta) ** 2).sum()``: twice the sum of our squared loss.
    ``L2.f(beta) = (beta ** 2).sum() / 2`` and the penalty enters as ``lamduh * L2.f``
    (``Regularizer.add_reg_f`` in ``lbfgs``; ``proximal_operator(v, step * lamduh)`` in
    ``proximal_grad``; ``proximal_operator(ztilde, lamduh / (rho * nchunks))``, the z-update
    of consensus ADMM for ``lamduh * L2.f``, in ``admm``). Hence dask-glm minimizes
    ``s * n * f`` with ``lamduh = s * n * lam``, ``s = 1`` (logistic) or ``2`` (squared).
scikit-learn ``SGDClassifier`` / ``SGDRegressor`` (``linear_model/_sgd_fast.pyx.tp``)
    per sample ``w *= 1 - eta * alpha`` then ``w -= eta * dloss * x``: a stochastic gradient
    of ``mean loss + alpha / 2 ||w||^2`` (the source's own comment: "for the L2 term SGD
    optimizes 0.5 * L2**2"). ``log_loss`` is ``CyHalfBinomialLoss`` = ``log(1 + exp(z)) - y01
    z`` = our logistic loss; ``squared_error`` is ``CyHalfSquaredError`` = ``(z - y)^2 / 2``.
    Hence ``alpha = lam``.
scikit-learn ``LogisticRegression`` (``linear_model/_logistic.py``)
    ``C * sum(loss) + ||w||^2 / 2``: lbfgs uses ``l2_reg_strength = 1 / (C * n)`` on the mean
    loss, saga passes ``alpha = 1 / C`` to ``sag_solver`` which divides it by ``n``. Hence
    ``C = 1 / (lam * n)``. (scikit-learn 1.9 deprecates ``penalty``; ``l1_ratio=0`` is L2.)
scikit-learn ``Ridge(solver="saga")`` (squared loss)
    ``||y - Xw||^2 + alpha ||w||^2 = 2 n f``: ``alpha = n * lam``.

Incompatibilities and workarounds (dask-glm 0.4.0, dask-ml 2025.1.0 with dask/distributed
2026.8, numpy 2.4, scikit-learn 1.9)
------------------------------------------------------------------------------------------
* dask-glm's algorithms standardize ``X`` by default (the ``@normalize`` decorator), which
  moves the L2 penalty onto ``w * std``: the adapters pass ``normalize=False``.
* dask-glm fails on dask arrays of scipy.sparse chunks (``_tensordot_scipy_sparse``
  asserts 2-D operands; ADMM's local objective broadcasts wrongly) but works with
  ``sparse.COO`` chunks: sparse blocks are converted to ``sparse.COO`` for dask-glm.
* ``gradient_descent`` (and ``newton``) ignore ``regularizer``/``lamduh``: they minimize
  the unpenalized loss. Its ``family`` argument is public, so the adapter passes a family
  (:class:`_RowPenaltyFamily`) that adds ``||z_pen||^2 / 2`` over ``d`` extra rows
  ``sqrt(lamduh) * I`` appended to ``X`` (``z_pen = sqrt(lamduh) * beta``): exactly
  ``lamduh * L2.f(beta)``, inside dask-glm's own loglike/gradient/line search. Cost: ``d``
  more rows in every product (a dense ``d x d`` block, or a sparse diagonal).
* ``proximal_grad`` with ``regularizer="l2"`` stalls short of the optimum: its backtracking
  line search and its stopping test compare only the smooth part (``family.loglike``), not
  ``loglike + lamduh * L2.f``. Its first step (``stepSize=1`` on the summed gradient)
  overshoots to a large ``||w||``; from there each prox step toward the optimum raises the
  smooth loss, the search backtracks 100 times and the solver stops, for good. Measured
  relative suboptimality at the stall on Gaussian data: 0.45 (2000 x 20, ``lam = 1e-3``,
  any ``max_iter >= 32``), 0.068 (300 x 10, ``lam = 1e-3``), 0.12 (300 x 10,
  ``lam = 1e-2``), 0.38 (1000 x 10, ``lam = 1e-2``); the row form below reaches 1e-8 on
  each. By default the adapter therefore puts the L2 term in the smooth part with the same
  row family and passes ``regularizer=L2(), lamduh=0`` (identity prox), so the line search
  sees the whole objective; ``options={"l2": "prox"}`` runs dask-glm's native L2 prox
  (and reproduces the stall).
* dask-glm's ``fit_intercept`` (estimators only) penalizes the intercept: dask-glm peers
  raise ``ValueError`` for ``fit_intercept=True``.
* dask-glm's ``lbfgs`` sets the deprecated config key ``fuse_ave_width`` (a
  ``FutureWarning``); it and scikit-learn's ``ConvergenceWarning`` of deliberately short
  runs are silenced. dask-ml's ``Incremental`` works unchanged.

Traces
------
Restart peers (dask-glm, scikit-learn): none has a per-iteration callback, so each is run
from scratch with ``max_iter`` = 1, 2, 4, 8, ... (after one untimed warm-up run with
``max_iter=1``, which absorbs worker-side imports and numba compilation). Each run is timed
on its own and gives one point (seconds of that run, objective of its result). Runs stop
when one run lasted ``time_budget`` seconds or more (so the time axis spans the budget and
the total wall time is about 2-4 x ``time_budget``), when the target is reached, when the
solver stopped on its own (it reports fewer iterations than ``max_iter``, or returned
exactly the previous run's coefficients: dask-glm reports no iteration count) or when
``max_iter`` is reached. Points stay in run order and a point's time is the longest run so
far (running maximum): when noise makes a run faster than a shorter one (millisecond runs
of scikit-learn) its point is placed late, never early, and the trace stays monotone in
time; the raw lengths are in ``info["runs"]``. All peers start from ``w = 0``; the trace
starts with ``(0, f(0))``.

``dask-ml-sgd``: passes of ``Incremental.partial_fit`` over all row blocks (blocks in a
seeded random order, rows shuffled within each block by scikit-learn); the clock runs only
during passes, the objective is evaluated between them. One untimed ``partial_fit`` of a
throw-away copy on the first block warms the workers up.

Data: the peers take the row blocks of a :class:`~daskasync.data.PartitionedData`; dask
arrays are built from them (dense or ``sparse.COO`` chunks for dask-glm, the blocks as they
are for dask-ml) and persisted on the workers before the clock starts; the scikit-learn
peers gather the data on the driver first. Everything created on the cluster is released
before :func:`run_peer` returns.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import numbers
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from distributed import Client, futures_of, wait

from ..data import PartitionedData
from ..losses import get_loss
from .metrics import relative_suboptimality

__all__ = ["PEERS", "Peer", "PeerRun", "evaluate_objective", "run_peer"]

_LOSSES = ("logistic", "squared")
_MAX_ITER_CAP = 2**24  # safety cap of the restart schedule when max_iter is None


# --------------------------------------------------------------------------- #
# Result and registry
# --------------------------------------------------------------------------- #
@dataclass
class PeerRun:
    """Trace and result of one peer run.

    Attributes
    ----------
    name : str
        Peer name (a key of :data:`PEERS`).
    times : list of float
        Wall seconds of solver work for each point, objective evaluation excluded:
        restart peers, the length of the run that produced the point (or of an earlier,
        shorter run that took longer: running maximum); ``dask-ml-sgd``, the cumulative
        time of the passes so far. Non-decreasing, starting at 0.
    objectives : list of float
        Our objective ``f`` at each point (``f(0)`` first).
    coef : numpy.ndarray
        Coefficients of the last run / pass.
    intercept : float
        Intercept of the last run / pass (0 unless ``fit_intercept``).
    iterations : int
        Iterations of the last run (restart peers; for dask-glm, which does not report
        them, the ``max_iter`` it was given) or passes done (``dask-ml-sgd``).
    step_size : float or None
        The peer's step size if it has one (SGD: ``eta0``, or the first step of
        scikit-learn's ``"optimal"`` schedule ``alpha ** -0.25``).
    info : dict
        How the trace was built, the mapped regularization, versions, each run
        (``"runs"``: ``max_iter``, iterations if reported, seconds, objective) and why it
        stopped (``"stopped"``: ``"target"``, ``"time_budget"``, ``"max_iter"``,
        ``"solver_stopped"`` when the solver stopped before ``max_iter`` or returned the
        previous run's coefficients, ``"diverged"``).
    """

    name: str
    times: list[float]
    objectives: list[float]
    coef: np.ndarray
    iterations: int
    step_size: float | None
    info: dict[str, Any] = field(default_factory=dict)
    intercept: float = 0.0

    def relative_suboptimality(self, f_star: float) -> np.ndarray:
        """``(f - f_star) / |f_star|`` at each point (as :mod:`daskasync.plotting`)."""
        return relative_suboptimality(np.asarray(self.objectives, dtype=float), f_star)


@dataclass(frozen=True)
class Peer:
    """A registered peer solver.

    Attributes
    ----------
    name : str
        Registry key.
    package : str
        Distribution providing it.
    module : str
        Module imported to run it.
    trace : str
        ``"restart"`` (geometric ``max_iter`` schedule) or ``"passes"``.
    losses : tuple of str
        Supported losses.
    fit_intercept : bool
        Whether ``fit_intercept=True`` is supported.
    options : frozenset of str
        Keys accepted in ``run_peer(..., options=...)``.
    runner : callable
        ``runner(ctx) -> PeerRun``; internal.
    """

    name: str
    package: str
    module: str
    trace: str
    losses: tuple[str, ...]
    fit_intercept: bool
    options: frozenset[str]
    runner: Callable[[_Context], PeerRun] = field(repr=False)


@dataclass
class _Context:
    """Validated arguments of one run."""

    name: str
    data: PartitionedData
    client: Client
    lam: float
    loss: str
    time_budget: float
    f_star: float | None
    target: float | None
    seed: int
    fit_intercept: bool
    max_iter: int | None
    options: dict[str, Any]

    @property
    def n(self) -> int:
        return self.data.n

    @property
    def d(self) -> int:
        return self.data.d

    def evaluate(self, coef: np.ndarray, intercept: float = 0.0) -> float:
        return evaluate_objective(
            self.data, coef, lam=self.lam, loss=self.loss, intercept=intercept,
            client=self.client,
        )

    def reached(self, f: float) -> bool:
        if self.target is None or self.f_star is None:
            return False
        return relative_suboptimality(f, self.f_star) <= self.target


# --------------------------------------------------------------------------- #
# Objective on the cluster
# --------------------------------------------------------------------------- #
def _block_loss_sum(block: tuple[Any, np.ndarray], coef: np.ndarray, intercept: float,
                    loss: str) -> float:
    """Worker task: sum of the per-sample loss over one block."""
    X, y = block
    z = np.asarray(X @ coef).ravel() + intercept
    return float(get_loss(loss).value(z, y).sum())


def evaluate_objective(
    data: PartitionedData,
    coef: np.ndarray,
    *,
    lam: float,
    loss: str = "logistic",
    intercept: float = 0.0,
    client: Client | None = None,
) -> float:
    """Our objective ``mean loss + lam / 2 ||coef||^2`` over the blocks of ``data``.

    One task per block sums the loss where the block lives; the sums are combined on
    the driver.

    Parameters
    ----------
    data : PartitionedData
        The data.
    coef : numpy.ndarray, shape (d,)
        Coefficients.
    lam : float
        L2 strength.
    loss : {"logistic", "squared"}
        Loss.
    intercept : float, default 0
        Unpenalized intercept.
    client : distributed.Client, optional
        Defaults to ``data.client``.

    Returns
    -------
    float
    """
    client = data.client if client is None else client
    coef = np.ascontiguousarray(coef, dtype=np.float64).ravel()
    token = uuid.uuid4().hex
    futs = [
        client.submit(_block_loss_sum, part, coef, float(intercept), loss,
                      key=f"daskasync-objective-peer-{token}-{i}")
        for i, part in enumerate(data.parts)
    ]
    try:
        total = math.fsum(client.gather(futs))
    finally:
        client.cancel(futs)
    return total / data.n + 0.5 * lam * float(coef @ coef)


# --------------------------------------------------------------------------- #
# Dask arrays built from the blocks
# --------------------------------------------------------------------------- #
def _block_x(block: tuple[Any, np.ndarray], fmt: str) -> Any:
    """Worker task: the X block as ``fmt`` ("native", "dense" or "coo")."""
    X = block[0]
    if fmt == "dense":
        return X.toarray() if sp.issparse(X) else X
    if fmt == "coo":
        import sparse

        return sparse.COO.from_scipy_sparse(X) if sp.issparse(X) else sparse.COO(X)
    return X


def _block_y(block: tuple[Any, np.ndarray], zero_one: bool) -> np.ndarray:
    """Worker task: the labels, mapped from {-1, +1} to {0, 1} if ``zero_one``."""
    y = block[1]
    return (y > 0).astype(np.float64) if zero_one else y


def _meta(fmt: str, is_sparse: bool) -> Any:
    if fmt == "coo":
        import sparse

        return sparse.COO.from_numpy(np.empty((0, 0)))
    if fmt == "native" and is_sparse:
        return sp.csr_matrix((0, 0))
    return np.empty((0, 0))


@contextlib.contextmanager
def _persisted(
    ctx: _Context, fmt: str, zero_one: bool, extra_rows: Any = None
) -> Iterator[tuple[da.Array, da.Array]]:
    """Row-chunked ``(X, y)`` dask arrays, one chunk per block (plus ``extra_rows`` as
    a last X chunk), persisted and waited for; cancelled on exit."""
    client, data = ctx.client, ctx.data
    meta = _meta(fmt, data.is_sparse)
    token = uuid.uuid4().hex  # fresh keys: a previous run's cancellation cannot hit them
    xs, ys = [], []
    for i, (part, m) in enumerate(zip(data.parts, data.rows_per_partition, strict=True)):
        m = int(m)
        bx = dask.delayed(_block_x)(part, fmt, dask_key_name=f"daskasync-peer-x-{token}-{i}")
        by = dask.delayed(_block_y)(part, zero_one,
                                    dask_key_name=f"daskasync-peer-y-{token}-{i}")
        xs.append(da.from_delayed(bx, shape=(m, ctx.d), dtype=np.float64, meta=meta))
        ys.append(da.from_delayed(by, shape=(m,), dtype=np.float64, meta=np.empty(0)))
    if extra_rows is not None:
        xs.append(da.from_array(extra_rows, chunks=extra_rows.shape, asarray=False,
                                name=f"daskasync-peer-penalty-{token}"))
    X, y = client.persist([da.concatenate(xs, axis=0), da.concatenate(ys, axis=0)])
    futs = futures_of(X) + futures_of(y)
    try:
        wait(futs)
        yield X, y
    finally:
        client.cancel(futs)


# --------------------------------------------------------------------------- #
# Trace builders
# --------------------------------------------------------------------------- #
_Fit = Callable[[int], tuple[np.ndarray, float, int | None]]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*fuse_ave_width", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def _restart_trace(ctx: _Context, fit: _Fit, step_size: float | None,
                   info: dict[str, Any]) -> PeerRun:
    """Geometric ``max_iter`` schedule, each run from scratch and timed on its own.

    ``fit(k)`` returns ``(coef, intercept, iterations or None)``.
    """
    cap = ctx.max_iter if ctx.max_iter is not None else _MAX_ITER_CAP
    f0 = ctx.evaluate(np.zeros(ctx.d))
    points: list[tuple[float, float]] = [(0.0, f0)]
    runs: list[dict[str, Any]] = []
    with _quiet():
        t0 = time.perf_counter()
        fit(1)
        info["warmup_seconds"] = time.perf_counter() - t0
        k, prev, reason = 1, None, "max_iter"
        coef, intercept, iters = np.zeros(ctx.d), 0.0, 0
        while True:
            t0 = time.perf_counter()
            coef, intercept, n_iter = fit(k)
            seconds = time.perf_counter() - t0
            f = ctx.evaluate(coef, intercept)
            iters = k if n_iter is None else int(n_iter)
            points.append((seconds, f))
            runs.append({"max_iter": k, "iterations": n_iter, "seconds": seconds,
                         "objective": f})
            same = prev is not None and np.array_equal(coef, prev[0]) and intercept == prev[1]
            if ctx.reached(f):
                reason = "target"
            elif (n_iter is not None and n_iter < k) or same:
                reason = "solver_stopped"
            elif seconds >= ctx.time_budget:
                reason = "time_budget"
            elif k >= cap:
                reason = "max_iter"
            else:
                prev, k = (coef, intercept), min(2 * k, cap)
                continue
            break
    times = np.maximum.accumulate([p[0] for p in points]).tolist()
    info.update(trace="restart: max_iter = 1, 2, 4, ... from scratch, each run timed alone; "
                      "times are the running maximum of the run lengths",
                runs=runs, stopped=reason)
    return PeerRun(
        name=ctx.name, times=times, objectives=[p[1] for p in points],
        coef=np.asarray(coef, dtype=float).ravel(), intercept=float(intercept),
        iterations=iters, step_size=step_size, info=info,
    )


# --------------------------------------------------------------------------- #
# dask-glm
# --------------------------------------------------------------------------- #
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


def _dask_glm_runner(algorithm: str) -> Callable[[_Context], PeerRun]:
    def run(ctx: _Context) -> PeerRun:
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
        with _persisted(ctx, fmt, zero_one=ctx.loss == "logistic", extra_rows=extra) as (X, y):
            def fit(k: int) -> tuple[np.ndarray, float, int | None]:
                with ctx.client.as_current():
                    beta = solver(X, y, max_iter=k, **kw)
                beta = beta.todense() if hasattr(beta, "todense") else beta
                return np.asarray(beta, dtype=float).ravel(), 0.0, None

            return _restart_trace(ctx, fit, None, info)

    return run


# --------------------------------------------------------------------------- #
# dask-ml Incremental + scikit-learn SGD
# --------------------------------------------------------------------------- #
def _run_dask_ml_sgd(ctx: _Context) -> PeerRun:
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
    cap = ctx.max_iter if ctx.max_iter is not None else _MAX_ITER_CAP
    inc = Incremental(est, shuffle_blocks=True, random_state=np.random.RandomState(ctx.seed))
    with _persisted(ctx, "native", zero_one=False) as (X, y), ctx.client.as_current(), _quiet():
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


# --------------------------------------------------------------------------- #
# scikit-learn on the driver
# --------------------------------------------------------------------------- #
def _sklearn_runner(solver: str) -> Callable[[_Context], PeerRun]:
    def run(ctx: _Context) -> PeerRun:
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
                return LogisticRegression(C=C, l1_ratio=0.0, solver=solver, tol=tol,
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

        return _restart_trace(ctx, fit, None, info)

    return run


# --------------------------------------------------------------------------- #
# Registry and entry point
# --------------------------------------------------------------------------- #
def _peer(name: str, package: str, trace: str, losses: tuple[str, ...], fit_intercept: bool,
          options: set[str], runner: Callable[[_Context], PeerRun]) -> Peer:
    module = {"dask-glm": "dask_glm", "dask-ml": "dask_ml", "scikit-learn": "sklearn"}[package]
    return Peer(name, package, module, trace, losses, fit_intercept, frozenset(options), runner)


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        _peer("dask-glm-lbfgs", "dask-glm", "restart", _LOSSES, False, {"tol"},
              _dask_glm_runner("lbfgs")),
        _peer("dask-glm-gradient_descent", "dask-glm", "restart", _LOSSES, False, {"tol"},
              _dask_glm_runner("gradient_descent")),
        _peer("dask-glm-admm", "dask-glm", "restart", _LOSSES, False,
              {"rho", "over_relax", "abstol", "reltol"}, _dask_glm_runner("admm")),
        _peer("dask-glm-proximal_grad", "dask-glm", "restart", _LOSSES, False, {"tol", "l2"},
              _dask_glm_runner("proximal_grad")),
        _peer("dask-ml-sgd", "dask-ml", "passes", _LOSSES, True,
              {"learning_rate", "eta0", "power_t", "average"}, _run_dask_ml_sgd),
        _peer("sklearn-saga", "scikit-learn", "restart", _LOSSES, True, {"tol"},
              _sklearn_runner("saga")),
        # Ridge's lbfgs solver requires positive=True: logistic loss only
        _peer("sklearn-lbfgs", "scikit-learn", "restart", ("logistic",), True, {"tol"},
              _sklearn_runner("lbfgs")),
    )
}
"""Registered peers by name."""


def _positive_float(value: Any, name: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(float(value)) or float(value) <= 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def run_peer(
    name: str,
    data: PartitionedData,
    *,
    lam: float,
    loss: str = "logistic",
    time_budget: float = 60.0,
    f_star: float | None = None,
    target: float | None = None,
    seed: int = 0,
    client: Client | None = None,
    fit_intercept: bool = False,
    max_iter: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> PeerRun:
    """Run peer ``name`` on ``data`` and trace our objective against its solver time.

    Parameters
    ----------
    name : str
        A key of :data:`PEERS`.
    data : PartitionedData
        Row blocks on the cluster (labels in ``{-1, +1}`` for the logistic loss).
    lam : float
        L2 strength of our objective (``> 0``); mapped to each peer's parameter.
    loss : {"logistic", "squared"}, default "logistic"
        Loss.
    time_budget : float, default 60
        Seconds of solver time: restart peers stop after a run lasting at least this
        long, ``dask-ml-sgd`` after the pass that brings its clock past it.
    f_star : float, optional
        Optimal value of the objective (needed by ``target``).
    target : float, optional
        Stop once ``(f - f_star) / |f_star| <= target``.
    seed : int, default 0
        Seed of the stochastic peers (SGD, saga).
    client : distributed.Client, optional
        Defaults to ``data.client``; must be connected to the same scheduler.
    fit_intercept : bool, default False
        Unpenalized intercept (scikit-learn and dask-ml peers only).
    max_iter : int, optional
        Largest ``max_iter`` of the restart schedule / number of passes.
    options : mapping, optional
        Peer settings overriding the defaults, see :attr:`Peer.options` (for example
        ``{"rho": 10.0}`` for ADMM, ``{"learning_rate": "constant", "eta0": 0.1}`` for SGD,
        ``{"l2": "prox"}`` for dask-glm's native L2 proximal gradient).

    Returns
    -------
    PeerRun

    Raises
    ------
    ValueError
        Unknown peer (the message lists them), non-positive ``lam``/``time_budget``/
        ``target``/``max_iter``, an unsupported loss or intercept, labels not in
        ``{-1, +1}`` for the logistic loss, unknown options, released data, or a client
        of another scheduler. Raised before anything is submitted.
    ImportError
        The peer's package is not installed.
    """
    if name not in PEERS:
        raise ValueError(f"name: unknown peer {name!r}; choose one of {sorted(PEERS)}")
    peer = PEERS[name]
    lam = _positive_float(lam, "lam")
    time_budget = _positive_float(time_budget, "time_budget")
    if loss not in _LOSSES:
        raise ValueError(f"loss: must be one of {list(_LOSSES)}, got {loss!r}")
    if loss not in peer.losses:
        raise ValueError(f"loss: {name} supports {list(peer.losses)} only, got {loss!r}")
    if not isinstance(data, PartitionedData):
        raise TypeError(f"data must be a PartitionedData, got {type(data).__name__}")
    if not data.parts:
        raise ValueError("data has been released")
    if fit_intercept and not peer.fit_intercept:
        raise ValueError(f"fit_intercept: {name} does not support an unpenalized intercept "
                         "(dask-glm penalizes it)")
    if target is not None:
        target = _positive_float(target, "target")
        if f_star is None:
            raise ValueError("target needs f_star")
    if f_star is not None and (isinstance(f_star, bool) or not isinstance(f_star, numbers.Real)
                               or not math.isfinite(float(f_star))):
        raise ValueError(f"f_star must be a finite number, got {f_star!r}")
    if max_iter is not None and (isinstance(max_iter, bool)
                                 or not isinstance(max_iter, numbers.Integral)
                                 or max_iter < 1):
        raise ValueError(f"max_iter must be a positive int or None, got {max_iter!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    opts = dict(options or {})
    unknown = sorted(set(opts) - peer.options)
    if unknown:
        raise ValueError(f"options: {name} does not accept {unknown}; "
                         f"accepted: {sorted(peer.options)}")
    if opts.get("l2", "rows") not in ("rows", "prox"):
        raise ValueError(f"options: 'l2' must be 'rows' or 'prox', got {opts['l2']!r}")
    if loss == "logistic":
        labels = data.label_values
        if labels is None or not np.isin(labels, (-1.0, 1.0)).all():
            raise ValueError("data: the logistic loss needs labels in {-1, +1}")
    if importlib.util.find_spec(peer.module) is None:
        raise ImportError(f"{name} needs the package {peer.package!r}: "
                          "pip install 'daskasync[bench]'")
    if client is None:
        client = data.client
    elif client is not data.client and client.scheduler.address != data.client.scheduler.address:
        raise ValueError("client is connected to another scheduler than data's")
    ctx = _Context(name=name, data=data, client=client, lam=lam, loss=loss,
                   time_budget=time_budget, f_star=None if f_star is None else float(f_star),
                   target=target, seed=int(seed), fit_intercept=bool(fit_intercept),
                   max_iter=None if max_iter is None else int(max_iter), options=opts)
    run = peer.runner(ctx)
    run.info.update(lam=lam, loss=loss, n=data.n, d=data.d, data=data.name,
                    fit_intercept=bool(fit_intercept))
    return run
