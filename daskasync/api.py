"""``daskasync.minimize``: one call from partitioned data to a fitted linear model.

It checks a run configuration (:func:`daskasync.config.make_config`), then runs it
(:func:`daskasync.run.execute`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .config import make_config
from .engine.barriers import Barrier
from .engine.history import GradientHistory
from .losses import Loss
from .penalties import Penalty
from .progress import RunInfo
from .result import FitResult
from .run import execute
from .schedules import Schedule
from .state import RunState
from .stragglers import Straggler

__all__ = ["minimize"]


def minimize(
    data: Any,
    *,
    solver: str = "auto",
    loss: str | Loss = "logistic",
    penalty: str | Penalty | None = "l2",
    lam: float | None = None,
    l1_ratio: float = 0.5,
    fit_intercept: bool = False,
    step_size: float | str = "auto",
    step_schedule: str | Schedule | None = None,
    batch_fraction: float | None = None,
    max_updates: int | None = None,
    max_epochs: float | None = None,
    time_budget: float | None = None,
    tol: float | None = None,
    gtol: float | None = None,
    check_every: int | None = None,
    target_objective: float | None = None,
    barrier: str | Barrier | Callable | None = None,
    beta: float = 0.93,
    tau: int | None = None,
    window: int | None = None,
    transport: str = "auto",
    stragglers: str | Straggler | Callable | None = None,
    straggler_c: float = 1.0,
    warmup_tasks: int | None = None,
    avg_task_time: float | None = None,
    seed: int = 0,
    record_every: int | None = None,
    record_interval: float | None = None,
    record_objective: bool = True,
    theta0: np.ndarray | None = None,
    inner: str = "sequential",
    staleness_aware: bool = False,
    history: GradientHistory | None = None,
    combine: float | None = None,
    solver_options: dict | None = None,
    init: RunState | None = None,
    verbose: int = 0,
    callback: Callable[[RunInfo], Any] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    checkpoint_interval: float | None = None,
) -> FitResult:
    """Fit a linear model on partitioned data with a synchronous or asynchronous solver.

    Minimizes ``mean_i loss(x_i . w + b, y_i) + penalty(w)``.

    Parameters
    ----------
    data : PartitionedData
        Row blocks on the workers (see :class:`daskasync.PartitionedData`).
    solver : {"auto", "albfgs", "lbfgs", "asaga", "saga", "asgd", "sgd"} or a registered name
        ``"auto"`` (default): ``"albfgs"`` for a smooth penalty, ``"asaga"`` with an L1 part
        (:func:`daskasync.solvers.registry.choose_solver`).
        ``"albfgs"``: asynchronous L-BFGS on the partitions' aggregated, delay-compensated
        gradients (never waits for a straggler); ``"lbfgs"``: synchronous L-BFGS (a
        gather barrier per iteration);
        ``"asaga"`` / ``"saga"``: SAGA with the gradient history, asynchronous (any
        barrier, ``tau``) or synchronous rounds; the only ones for L1 and elastic net;
        ``"asgd"`` / ``"sgd"``: asynchronous or synchronous mini-batch SGD (ASYNC's).
    loss : {"logistic", "squared", "multinomial"} or Loss
        Logistic needs labels in {-1, +1}; multinomial class indices 0..K-1.
    penalty : {"l2", "l1", "elasticnet", "none"} or Penalty
    lam : float, optional
        Regularization strength (default ``1 / n``).
    l1_ratio : float
        Elastic-net mixing.
    fit_intercept : bool
        Fit an unpenalized intercept.
    step_size : float or "auto"
        Base step ``gamma``. ``"auto"``: the solver's rule from the data (one pass finds the
        largest squared row norm, hence the largest per-sample smoothness constant ``L``,
        :func:`daskasync.lipschitz_constant`): ``1 / L`` for SGD/ASGD; ``1 / (3 L)`` per
        sample for the SAGA solvers (Defazio et al. 2014; scikit-learn's
        ``get_auto_step_size``), divided by ``1 + min(P - 1, tau)`` for ASAGA's batch form
        (the expected staleness); each solver's ``auto_step`` documents its rule.
    step_schedule : {"constant", "invsqrt"} or callable, optional
        ``"invsqrt"`` (default for SGD/ASGD): ``gamma / sqrt(t + 1)`` with ``t`` the number of
        synchronous-round equivalents (``k`` for SGD, ``k / P`` for ASGD, as in ASYNC);
        ``"constant"`` is SAGA's default. A callable gets ``t`` and returns the step.
    batch_fraction : float, optional
        Fraction ``b`` of each partition's rows sampled by a task (on the worker, seeded);
        default the solver's (whole partitions, 0.1 for the SGD solvers; the L-BFGS
        solvers always take whole partitions).
    max_updates, max_epochs, time_budget, tol, gtol, check_every, target_objective
        Stopping criteria (see :class:`daskasync.StopCriteria`); default ``max_epochs=10``
        when none is given.
    barrier : str, Barrier or callable, optional
        For ``"asgd"``: ``"async"`` (default), ``"sync"``, ``"quorum"``, ``"bounded"``,
        ``"ssp"``, a :class:`Barrier`, or a predicate ``(states, clock) -> bool | partitions``.
    beta, tau
        Quorum fraction; staleness bound (results staler than ``tau`` are dropped).
    window, transport
        Model history window (default: 16 versions, fewer for versions over 4 MB, see
        :func:`~daskasync.engine.broadcast.default_window`) and how versions travel (see
        :class:`Broadcaster`). With
        ``"auto"`` the sequential SAGA solvers on sparse blocks that hold at most a
        quarter of the columns ship each task the version on its block's columns only
        (:class:`~daskasync.views.ColumnView`): the same iterates for fewer bytes;
        ``result.settings["model_views"]`` counts those partitions.
    stragglers, straggler_c, warmup_tasks, avg_task_time
        Straggler injection for experiments (off by default).
    seed : int
        Seeds mini-batch sampling and straggler draws.
    record_every, record_interval, record_objective
        History records every so many updates (default: every round for SGD, every ``P``
        updates for ASGD) and/or seconds; objectives of records are evaluated after the run.
    theta0 : ndarray, optional
        Starting point ``[w, b]`` (default zeros), shape ``(K, d + fit_intercept)`` for
        multinomial models.
    inner : {"sequential", "batch"}
        SAGA's task form: ``"batch"`` is ASYNC's (the task returns its mini-batch's summed
        history-corrected gradient; the driver takes one step); ``"sequential"`` applies the
        sampled rows one by one on the worker as SAGA steps of ``1 / (3 L)`` and returns the
        model change, which the driver combines (see ``combine``). Both keep the exact
        history; a sequential pass makes one step per row, a batch task one step per task.
    staleness_aware : bool
        Scale each asynchronous result by ``1 / (1 + staleness)`` (step for SGD and batch
        SAGA, weight of the model change for sequential SAGA), as ElasticDL modulates its
        learning rate.
    history : GradientHistory, optional
        Continue from this history (SAGA); it is updated in place.
    combine : "average" or float, optional
        The weight of each partition's model change in SAGA's sequential form:
        ``"average"`` (default) is ``1 / P``, always stable; larger weights add the passes
        up and can diverge.
    solver_options : dict, optional
        The solver's own options by name (each solver documents them), e.g.
        ``{"memory": 20}`` for the L-BFGS solvers, ``{"quorum": 0.7, "patience": 2.0}``
        for ``"albfgs"``; an unknown name is refused.
    init : RunState, optional
        Continue a run from its state (``result.state`` or :meth:`RunState.load`): model,
        history, clock and task counters, step size, solver state. The data (the content
        of every partition) and every setting that changes the iterates must be the ones
        the state was made with, else ``ValueError`` names each difference;
        ``max_updates`` and ``max_epochs`` count the whole run, so a synchronous run
        continued to ``k + m`` epochs equals one run of ``k + m`` epochs bit for bit. An
        asynchronous run continues from the state, but the order in which results arrive
        is not reproduced (see :class:`daskasync.RunState`).
    checkpoint : str or os.PathLike, optional
        Save the run's :class:`RunState` to this ``.npz`` file every ``checkpoint_every``
        updates and/or ``checkpoint_interval`` seconds (default: once per epoch), and at
        the end. Each save replaces the file atomically, so a run killed at any point
        leaves its last complete checkpoint; continue it with
        ``minimize(..., init=RunState.load(path))``.
    checkpoint_every, checkpoint_interval
        How often to save (updates; seconds).
    verbose : int, default 0
        ``1``: a progress bar (a widget in Jupyter, one line elsewhere) with updates, epoch,
        objective and staleness. A bar checks the full objective about once per epoch,
        alongside the run.
    callback : callable, optional
        Called with a :class:`daskasync.RunInfo` at every history record and once at the
        end (``done=True``); e.g. :class:`daskasync.LivePlot` draws the run live in Jupyter.

    Returns
    -------
    FitResult

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> import daskasync
    >>> cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
    >>> with cluster, Client(cluster):
    ...     data = daskasync.PartitionedData.synthetic("epsilon", n=4000, d=20, n_partitions=4)
    ...     res = daskasync.minimize(data, max_epochs=20)
    >>> res.solver, res.updates > 0 and res.objective < 0.6931
    ('albfgs', True)
    """
    args = dict(locals())
    data = args.pop("data")
    return execute(data, make_config(data, args))
