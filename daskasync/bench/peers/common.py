"""What the peers share: their result (:class:`PeerRun`), their registry entry
(:class:`Peer`), the checked arguments of a run (:class:`RunContext`), our objective
evaluated on the cluster (:func:`evaluate_objective`), the data as persisted dask arrays
(:func:`persisted_arrays`) and the restart trace (:func:`restart_trace`). See the
:mod:`daskasync.bench.peers` docstring for how the peers are mapped and traced."""

from __future__ import annotations

import contextlib
import itertools
import math
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
from distributed import Client, futures_of, wait

from ...data import PartitionedData
from ...losses import get_loss
from ...problem import relative_suboptimality

__all__ = [
    "LOSSES",
    "MAX_ITER_CAP",
    "Fit",
    "Peer",
    "PeerRun",
    "RunContext",
    "evaluate_objective",
    "persisted_arrays",
    "quiet_warnings",
    "restart_trace",
]

LOSSES = ("logistic", "squared")
MAX_ITER_CAP = 2**24  # safety cap of the restart schedule when max_iter is None


# --------------------------------------------------------------------------- #
# Result, registry entry and run context
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
        ``"restart"`` (geometric ``max_iter`` schedule), ``"evaluations"`` (every loss
        evaluation of one run) or ``"passes"``.
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
    runner: Callable[[RunContext], PeerRun] = field(repr=False)


@dataclass
class RunContext:
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
def persisted_arrays(
    ctx: RunContext, fmt: str, zero_one: bool, extra_rows: Any = None
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
Fit = Callable[[int], tuple[np.ndarray, float, int | None]]


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*fuse_ave_width", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


#: refinement of a restart trace: a decade's crossing is bisected until the runs on either
#: side of it are within one iteration or an eighth of the shorter one's ``max_iter``
REFINE = 8
#: the finest power of ten located (a run at or below ``f*`` crosses every one down to it)
FINEST = 1e-12


def _run(ctx: RunContext, fit: Fit, k: int) -> dict[str, Any]:
    """``fit(k)`` timed on its own, with our objective at its result."""
    t0 = time.perf_counter()
    coef, intercept, n_iter = fit(k)
    seconds = time.perf_counter() - t0
    return {"max_iter": k, "iterations": n_iter, "seconds": seconds,
            "objective": ctx.evaluate(coef, intercept), "coef": coef, "intercept": intercept}


def _refine(ctx: RunContext, fit: Fit, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Extra runs bisecting, between each two consecutive runs of the schedule, the
    ``max_iter`` at which the relative suboptimality first reaches each power of ten it
    crosses there (to within :data:`REFINE`); the first of two runs on either side of a
    crossing already reached it, so the doubling alone can overstate the time to a target
    by up to twice."""
    extra: dict[int, dict[str, Any]] = {}
    for a, b in itertools.pairwise(runs):
        ra = relative_suboptimality(a["objective"], ctx.f_star)
        rb = max(relative_suboptimality(b["objective"], ctx.f_star), FINEST)
        if not ra > rb or b["max_iter"] - a["max_iter"] <= 1:
            continue
        for j in range(math.floor(-math.log10(ra)) + 1, math.floor(-math.log10(rb)) + 1):
            lo, hi = a["max_iter"], b["max_iter"]
            while hi - lo > max(1, lo // REFINE):
                mid = (lo + hi) // 2
                if mid not in extra:
                    extra[mid] = {**_run(ctx, fit, mid), "refined": True}
                if relative_suboptimality(extra[mid]["objective"], ctx.f_star) <= 10.0**-j:
                    hi = mid
                else:
                    lo = mid
    return list(extra.values())


def restart_trace(ctx: RunContext, fit: Fit, step_size: float | None,
                  info: dict[str, Any]) -> PeerRun:
    """Geometric ``max_iter`` schedule, each run from scratch and timed on its own; with
    ``ctx.f_star``, each power of ten crossed between two runs is then located by
    bisection (:func:`_refine`).

    ``fit(k)`` returns ``(coef, intercept, iterations or None)``.
    """
    cap = ctx.max_iter if ctx.max_iter is not None else MAX_ITER_CAP
    f0 = ctx.evaluate(np.zeros(ctx.d))
    runs: list[dict[str, Any]] = []
    with quiet_warnings():
        t0 = time.perf_counter()
        fit(1)
        info["warmup_seconds"] = time.perf_counter() - t0
        k, reason = 1, "max_iter"
        while True:
            run = _run(ctx, fit, k)
            prev = runs[-1] if runs else None
            runs.append(run)
            same = prev is not None and np.array_equal(run["coef"], prev["coef"]) \
                and run["intercept"] == prev["intercept"]
            if ctx.reached(run["objective"]):
                reason = "target"
            elif (run["iterations"] is not None and run["iterations"] < k) or same:
                reason = "solver_stopped"
            elif run["seconds"] >= ctx.time_budget:
                reason = "time_budget"
            elif k >= cap:
                reason = "max_iter"
            else:
                k = min(2 * k, cap)
                continue
            break
        last = runs[-1]
        if ctx.f_star is not None:
            runs = sorted(runs + _refine(ctx, fit, runs), key=lambda r: r["max_iter"])
    times = np.maximum.accumulate([0.0, *(r["seconds"] for r in runs)]).tolist()
    info.update(trace="restart: max_iter = 1, 2, 4, ... from scratch, each run timed alone, "
                      "each power of ten crossed between two runs bisected; times are the "
                      "running maximum of the run lengths",
                runs=[{k: v for k, v in r.items() if k not in ("coef", "intercept")}
                      for r in runs],
                stopped=reason)
    return PeerRun(
        name=ctx.name, times=times, objectives=[f0, *(r["objective"] for r in runs)],
        coef=np.asarray(last["coef"], dtype=float).ravel(), intercept=float(last["intercept"]),
        iterations=k if last["iterations"] is None else int(last["iterations"]),
        step_size=step_size, info=info,
    )
