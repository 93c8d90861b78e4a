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
    ``C = 1 / (lam * n)``; the penalty is spelled for the installed scikit-learn
    (:func:`daskasync.bench.peers.sklearn.logistic_penalty`).
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
  (:class:`~daskasync.bench.peers.dask_glm._RowPenaltyFamily`) that adds
  ``||z_pen||^2 / 2`` over ``d`` extra rows ``sqrt(lamduh) * I`` appended to ``X``
  (``z_pen = sqrt(lamduh) * beta``): exactly ``lamduh * L2.f(beta)``, inside dask-glm's
  own loglike/gradient/line search. Cost: ``d`` more rows in every product (a dense
  ``d x d`` block, or a sparse diagonal).
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
``dask-glm-lbfgs`` is traced in one run: the family it is given records the point of
every loss evaluation (line-search trials included) and the time it started
(:class:`~daskasync.bench.peers.dask_glm.EvaluationRecorder`); the points' objectives are
computed on the cluster after the run, and a point's objective in the trace is the best
one evaluated so far. The run ends when the solver stops or at the first evaluation
after ``time_budget``. Its time to a target is thus when it first held a point at least
that good, as for daskasync's own solvers, not the length of a whole restarted run (the
restart schedule overstates it by up to its factor of 2).

Restart peers (the other dask-glm solvers, scikit-learn): none has a per-iteration
callback, so each is run from scratch with ``max_iter`` = 1, 2, 4, 8, ... (after one
untimed warm-up run with ``max_iter=1``, which absorbs worker-side imports and numba
compilation). Each run is timed on its own and gives one point (seconds of that run,
objective of its result). Runs stop
when one run lasted ``time_budget`` seconds or more (so the time axis spans the budget and
the total wall time is about 2-4 x ``time_budget``), when the target is reached, when the
solver stopped on its own (it reports fewer iterations than ``max_iter``, or returned
exactly the previous run's coefficients: dask-glm reports no iteration count) or when
``max_iter`` is reached. Then, with ``f_star`` given, every power of ten of the relative
suboptimality (down to 1e-12) crossed between two consecutive runs is located by bisection
on ``max_iter``, until the runs on either side of it are one iteration or an eighth of the
shorter one's ``max_iter`` apart: without it, the time to a target would be the length of
the first doubled run that reached it, up to twice the time the solver needed. Points are
in order of ``max_iter`` and a point's time is the longest run so far (running maximum):
when noise makes a run faster than a shorter one (millisecond runs of scikit-learn) its
point is placed late, never early, and the trace stays monotone in time; the raw lengths
are in ``info["runs"]``. All peers start from ``w = 0``; the trace starts with
``(0, f(0))``.

``dask-ml-sgd``: passes of ``Incremental.partial_fit`` over all row blocks (blocks in a
seeded random order, rows shuffled within each block by scikit-learn); the clock runs only
during passes, the objective is evaluated between them. One untimed ``partial_fit`` of a
throw-away copy on the first block warms the workers up.

Data: the peers take the row blocks of a :class:`~daskasync.data.PartitionedData`; dask
arrays are built from them (dense or ``sparse.COO`` chunks for dask-glm, the blocks as they
are for dask-ml) and persisted on the workers before the clock starts; the scikit-learn
peers gather the data on the driver first. Everything created on the cluster is released
before :func:`run_peer` returns.

Modules: ``common`` (:class:`PeerRun`, :class:`Peer`, the objective on the cluster, the
persisted dask arrays, the restart trace), ``dask_glm``, ``dask_ml`` and ``sklearn`` (one
runner per package); this one holds the registry :data:`PEERS` and :func:`run_peer`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from distributed import Client

from ...constraints import Instance, Interval, Options, check, check_all
from ...data import PartitionedData
from .common import LOSSES, Peer, PeerRun, RunContext, evaluate_objective
from .dask_glm import dask_glm_runner
from .dask_ml import run_dask_ml_sgd
from .sklearn import sklearn_runner

__all__ = ["PEERS", "Peer", "PeerRun", "evaluate_objective", "run_peer"]


# --------------------------------------------------------------------------- #
# Registry and entry point
# --------------------------------------------------------------------------- #
def _peer(name: str, package: str, trace: str, losses: tuple[str, ...], fit_intercept: bool,
          options: set[str], runner: Callable[[RunContext], PeerRun]) -> Peer:
    module = {"dask-glm": "dask_glm", "dask-ml": "dask_ml", "scikit-learn": "sklearn"}[package]
    return Peer(name, package, module, trace, losses, fit_intercept, frozenset(options), runner)


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        _peer("dask-glm-lbfgs", "dask-glm", "evaluations", LOSSES, False, {"tol"},
              dask_glm_runner("lbfgs")),
        _peer("dask-glm-gradient_descent", "dask-glm", "restart", LOSSES, False, {"tol"},
              dask_glm_runner("gradient_descent")),
        _peer("dask-glm-admm", "dask-glm", "restart", LOSSES, False,
              {"rho", "over_relax", "abstol", "reltol"}, dask_glm_runner("admm")),
        _peer("dask-glm-proximal_grad", "dask-glm", "restart", LOSSES, False, {"tol", "l2"},
              dask_glm_runner("proximal_grad")),
        _peer("dask-ml-sgd", "dask-ml", "passes", LOSSES, True,
              {"learning_rate", "eta0", "power_t", "average"}, run_dask_ml_sgd),
        _peer("sklearn-saga", "scikit-learn", "restart", LOSSES, True, {"tol"},
              sklearn_runner("saga")),
        # Ridge's lbfgs solver requires positive=True: logistic loss only
        _peer("sklearn-lbfgs", "scikit-learn", "restart", ("logistic",), True, {"tol"},
              sklearn_runner("lbfgs")),
    )
}
"""Registered peers by name."""


_POSITIVE = Interval("real", 0, closed="neither")
#: what :func:`run_peer`'s plain arguments may be
_CONSTRAINTS: dict[str, list] = {
    "lam": [_POSITIVE],
    "time_budget": [_POSITIVE],
    "loss": [Options(*LOSSES)],
    "target": [_POSITIVE, None],
    "f_star": [Interval("real"), None],
    "max_iter": [Interval("int", 1), None],
    "seed": [Interval("int", 0)],
}


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
    TypeError
        An argument of the wrong type (``lam="0.1"``, ``data`` not a ``PartitionedData``).
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
    check_all({"lam": lam, "time_budget": time_budget, "loss": loss, "target": target,
               "f_star": f_star, "max_iter": max_iter, "seed": seed}, _CONSTRAINTS)
    lam, time_budget = float(lam), float(time_budget)
    if loss not in peer.losses:
        raise ValueError(f"loss: {name} supports {list(peer.losses)} only, got {loss!r}")
    check("data", data, Instance(PartitionedData, "a daskasync.PartitionedData"))
    if not data.parts:
        raise ValueError("data has been released")
    if fit_intercept and not peer.fit_intercept:
        raise ValueError(f"fit_intercept: {name} does not support an unpenalized intercept "
                         "(dask-glm penalizes it)")
    if target is not None:
        target = float(target)
        if f_star is None:
            raise ValueError("target needs f_star")
    opts = dict(options or {})
    unknown = sorted(set(opts) - peer.options)
    if unknown:
        raise ValueError(f"options: {name} does not accept {unknown}; "
                         f"accepted: {sorted(peer.options)}")
    check("options: 'l2'", opts.get("l2", "rows"), Options("rows", "prox"))
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
    ctx = RunContext(name=name, data=data, client=client, lam=lam, loss=loss,
                   time_budget=time_budget, f_star=None if f_star is None else float(f_star),
                   target=target, seed=int(seed), fit_intercept=bool(fit_intercept),
                   max_iter=None if max_iter is None else int(max_iter), options=opts)
    run = peer.runner(ctx)
    run.info.update(lam=lam, loss=loss, n=data.n, d=data.d, data=data.name,
                    fit_intercept=bool(fit_intercept))
    return run
