"""``daskasync.minimize``: one call from partitioned data to a fitted linear model."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable
from typing import Any

import dask
import numpy as np
from distributed import span

from .engine.barriers import Barrier, make_barrier
from .engine.driver import Engine, run_sync
from .engine.history import GradientHistory
from .losses import Loss, get_loss
from .penalties import Penalty, make_penalty
from .progress import ProgressBar, RunInfo
from .result import FitResult
from .schedules import Schedule, make_schedule
from .solvers import SOLVERS, Monitor, Problem, StopCriteria
from .solvers.base import _positive
from .state import RunState
from .stragglers import Straggler, make_straggler
from .tasks import row_norm_stats_kernel

__all__ = ["minimize", "lipschitz_constant"]


def _check_fraction(batch_fraction: Any) -> float:
    if isinstance(batch_fraction, bool) or not isinstance(batch_fraction, (int, float)):
        raise TypeError(f"batch_fraction: must be a number in (0, 1], got {batch_fraction!r}")
    if not 0.0 < batch_fraction <= 1.0:
        raise ValueError(f"batch_fraction: must be in (0, 1], got {batch_fraction!r}")
    return float(batch_fraction)


async def _row_norms(engine: Engine) -> tuple[float, float]:
    """Largest and mean squared row norm over the partitions (one task each)."""
    out = await engine._map_partitions(row_norm_stats_kernel, None, "rownorm")
    return float(max(o[0] for o in out)), sum(o[1] for o in out) / max(1, sum(o[2] for o in out))


def _copy_history(h: GradientHistory) -> GradientHistory:
    out = GradientHistory(h.offsets, h.dim, h.n_outputs)
    out.alpha[...] = h.alpha
    out.mean[...] = h.mean
    out.n_updates = h.n_updates
    return out


def lipschitz_constant(max_sq_row_norm: float, problem: Problem) -> float:
    """Smoothness constant of one sample's loss plus the smooth penalty:
    ``curvature * max ||[x_i, 1]||^2 + lambda``."""
    r2 = max_sq_row_norm + (1.0 if problem.fit_intercept else 0.0)
    return problem.loss.curvature * r2 + problem.penalty.smooth_strength


def check_momentum_value(momentum: Any) -> float:
    """``momentum`` as a float in ``[0, 1)``, else a ``TypeError``/``ValueError`` naming it."""
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating)):
        raise TypeError(f"momentum: must be a number in [0, 1), got {momentum!r}")
    if not 0.0 <= float(momentum) < 1.0:
        raise ValueError(f"momentum: must be in [0, 1), got {momentum!r}")
    return float(momentum)


def _check_momentum(momentum: Any, solver: str, spec: Any, penalty: Penalty) -> float:
    momentum = check_momentum_value(momentum)
    if momentum and not spec.history:
        raise ValueError(
            f"momentum: only the SAGA solvers ('saga', 'asaga') take momentum, not {solver!r}"
        )
    if momentum and penalty.has_prox:
        raise ValueError("momentum: needs a smooth penalty (l2 or none), not an L1 part")
    return momentum


def minimize(
    data: Any,
    *,
    solver: str = "asgd",
    loss: str | Loss = "logistic",
    penalty: str | Penalty | None = "l2",
    lam: float | None = None,
    l1_ratio: float = 0.5,
    fit_intercept: bool = False,
    step_size: float | str = "auto",
    step_schedule: str | Schedule | None = None,
    batch_fraction: float = 0.1,
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
    window: int = 16,
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
    momentum: float = 0.0,
    history: GradientHistory | None = None,
    combine: float | None = None,
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
    solver : {"sgd", "asgd", "saga", "asaga"}
        ``"sgd"``: synchronous mini-batch SGD (a gather barrier per round);
        ``"asgd"``: asynchronous SGD, each result applied as it arrives;
        ``"saga"`` / ``"asaga"``: SAGA with the gradient history, synchronous rounds or
        asynchronous (any barrier, ``tau``).
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
        Base step ``gamma``. ``"auto"`` derives it from the data (one pass to find the
        largest row norm, giving the largest per-sample smoothness constant ``L``):
        ``1 / L`` for SGD/ASGD; ``1 / (3 L)`` per sample for SAGA's sequential form (``min(1 / (3 L_avg P), 1 / L)`` with ``momentum``, ``L_avg`` from the mean row norm; as
        scikit-learn's SAGA); ``1 / (3 L)`` for SAGA's batch form, divided by ``1 + tau_bar``
        for ASAGA, where ``tau_bar = min(P - 1, tau)`` is the expected staleness.
    step_schedule : {"constant", "invsqrt"} or callable, optional
        ``"invsqrt"`` (default for SGD/ASGD): ``gamma / sqrt(t + 1)`` with ``t`` the number of
        synchronous-round equivalents (``k`` for SGD, ``k / P`` for ASGD, as in ASYNC);
        ``"constant"`` is SAGA's default. A callable gets ``t`` and returns the step.
    batch_fraction : float
        Fraction ``b`` of each partition's rows sampled by a task (on the worker, seeded).
    max_updates, max_epochs, time_budget, tol, gtol, check_every, target_objective
        Stopping criteria (see :class:`daskasync.StopCriteria`); default ``max_epochs=10``
        when none is given.
    barrier : str, Barrier or callable, optional
        For ``"asgd"``: ``"async"`` (default), ``"sync"``, ``"quorum"``, ``"bounded"``,
        ``"ssp"``, a :class:`Barrier`, or a predicate ``(states, clock) -> bool | partitions``.
    beta, tau
        Quorum fraction; staleness bound (results staler than ``tau`` are dropped).
    window, transport
        Model history window and how versions travel (see :class:`Broadcaster`).
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
        model change, which the driver averages (sync) or weights ``1 / P`` (async). Both
        keep the exact history; ``"sequential"`` converges in far fewer tasks on
        ill-conditioned problems.
    staleness_aware : bool
        Scale each asynchronous result by ``1 / (1 + staleness)`` (step for SGD and batch
        SAGA, weight of the model change for sequential SAGA), as ElasticDL modulates its
        learning rate.
    momentum : float
        Heavy-ball momentum ``beta`` in ``[0, 1)`` for the SAGA solvers (sequential form,
        smooth penalties). Default 0.

        * ``"saga"``: each round starts from ``theta + beta (theta - theta_prev)``. With the
          default ``combine="search"`` the ``"auto"`` step of the partitions' passes is
          ``min(1 / (3 L_avg P), 1 / L)`` (``L_avg`` from the mean squared row norm):
          shorter passes record their gradient histories near the combined model, and the
          search and the momentum scale the move back up. With ``lam = 1/n`` on 4
          partitions, ``0.8`` takes w8a to 1e-8 in 27 epochs instead of 200, and a9a in 70
          instead of 277.
        * ``"asaga"``: every ``P`` applied results make a virtual round, after which the
          model jumps by ``beta`` times the velocity. Safeguard: when a full-objective check
          finds the model worse than the best checked one, the run restarts from that
          model without velocity, and a second such rise halves ``beta``; ten checks in a
          row at a new best move a halved ``beta`` halfway back up (a run continued with
          ``init=`` goes on from the ``beta`` its state records). ``0.95`` takes w8a
          to 1e-8 in about 85 epochs, where plain ASAGA is at 2.5e-4 after 300. The
          ``"auto"`` step is then ``min(1 / (3 L_avg P), 1 / (3 L))``: on a9a (rows of
          equal norm) this is ``1 / (3 L P)``, and 0.95 reaches 1e-8 in about 265 epochs,
          1e-10 in about 385 and 1e-13 in about 560.
    history : GradientHistory, optional
        Continue from this history (SAGA); it is updated in place.
    combine : {"search", "average"} or float, optional
        How SAGA's sequential form combines the partitions' model changes. A number is the
        weight of each change (``"average"`` = ``1 / P``, always stable; larger weights
        add them up and can diverge). ``"search"`` (default of ``solver="saga"`` with a
        smooth penalty) moves along their average by a multiplier adapted each round
        from three candidates judged by one extra full-objective pass; it recovers up to
        the other partitions' progress on ill-conditioned problems; with an
        L1/elastic-net penalty the default is ``"average"``. ASAGA weighs each change
        ``1 / P`` by default; ``"adaptive"`` scales that by ``eta`` in ``[1, P]`` adapted
        from the objective checks run alongside (a bold-driver rule): it helps
        ill-conditioned problems (w8a at lambda = 1/n: 3.5e-7 instead of 9.3e-5 after 400
        epochs) and can slow well-conditioned ones (digits), hence opt-in.
    init : RunState, optional
        Continue a run from its state (``result.state`` or :meth:`RunState.load`): model,
        history, clock and task counters, step size. The data and settings must be the
        ones the state was made with (else ``ValueError``); ``max_updates`` and
        ``max_epochs`` count the whole run, so a synchronous run continued to ``k + m``
        epochs equals one run of ``k + m`` epochs.
    checkpoint : str or os.PathLike, optional
        Save the run's :class:`RunState` to this ``.npz`` file every ``checkpoint_every``
        updates and/or ``checkpoint_interval`` seconds (default: once per epoch), and at
        the end. Each save replaces the file atomically, so a run killed at any point
        leaves its last complete checkpoint; continue it with
        ``minimize(..., init=RunState.load(path))``.
    checkpoint_every, checkpoint_interval
        How often to save (updates; seconds).
    verbose : int, default 0
        ``1``: a progress bar (``tqdm.auto``: a widget in Jupyter) with updates, epoch,
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
    ...     res = daskasync.minimize(data, solver="asgd", max_epochs=2)
    >>> res.updates > 0 and res.objective < 0.6931
    True
    """
    # ---- validation: everything before any task reaches the cluster -----------------------
    if not all(hasattr(data, a) for a in ("parts", "n", "d", "n_partitions", "client")):
        raise TypeError(
            f"data: expected a daskasync.PartitionedData, got {type(data).__name__}"
        )
    if solver not in SOLVERS:
        raise ValueError(f"solver: unknown solver {solver!r}; choose one of {sorted(SOLVERS)}")
    spec = SOLVERS[solver]
    loss_ = get_loss(loss)
    labels = getattr(data, "label_values", None)
    if labels is not None:
        loss_.check_labels(np.asarray(labels, dtype=float))
    n_outputs = 1
    if loss_.multiclass:
        if labels is None:
            raise ValueError("y: the multinomial loss needs class labels (found too many values)")
        n_outputs = int(np.max(labels)) + 1
        if n_outputs < 2:
            raise ValueError("y: the multinomial loss needs at least two classes")
    if inner not in ("sequential", "batch"):
        raise ValueError(f"inner: must be 'sequential' or 'batch', got {inner!r}")
    if spec.history and inner == "sequential":
        from .kernels_saga import sequential_loss_code

        sequential_loss_code(loss_)
    if not isinstance(staleness_aware, (bool, np.bool_)):
        raise TypeError(f"staleness_aware: must be a bool, got {staleness_aware!r}")
    penalty_ = make_penalty(penalty, 1.0 / data.n if lam is None else lam, l1_ratio)
    momentum = _check_momentum(momentum, solver, spec, penalty_)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept: must be a bool, got {fit_intercept!r}")
    fraction = _check_fraction(batch_fraction)
    if isinstance(step_size, str):
        if step_size != "auto":
            raise ValueError(f"step_size: must be a positive number or 'auto', got {step_size!r}")
    schedule_name = spec.default_schedule if step_schedule is None else step_schedule
    if not isinstance(step_size, str):
        schedule: Schedule = make_schedule(schedule_name, step_size)
    else:
        make_schedule(schedule_name, 1.0)  # validate the name now
    if all(v is None for v in (max_updates, max_epochs, time_budget, tol, gtol,
                               target_objective)):
        max_epochs = 10.0
    stop = StopCriteria(max_updates, max_epochs, time_budget, tol, gtol, check_every,
                        target_objective)
    if spec.synchronous:
        if barrier not in (None, "sync"):
            raise ValueError(
                f"barrier: solver {solver!r} is synchronous; use barrier='sync' or an "
                f"asynchronous solver, got {barrier!r}"
            )
        barrier_ = make_barrier("sync")
    else:
        barrier_ = make_barrier(barrier, beta=beta, tau=tau)
    make_straggler(stragglers, n_partitions=data.n_partitions, c=straggler_c, seed=seed)
    problem = Problem(
        loss_, penalty_, bool(fit_intercept), int(data.n), int(data.d), n_outputs
    )
    if init is not None and not isinstance(init, RunState):
        raise TypeError(f"init: expected a daskasync.RunState, got {type(init).__name__}")
    if init is not None and (theta0 is not None or history is not None):
        raise ValueError("init: give either init or theta0/history, not both")
    if not isinstance(verbose, (int, np.integer)) or isinstance(verbose, bool) or verbose < 0:
        raise ValueError(f"verbose: must be an int >= 0, got {verbose!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: must be callable, got {type(callback).__name__}")
    _positive("checkpoint_every", checkpoint_every, numbers.Integral)
    _positive("checkpoint_interval", checkpoint_interval)
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint: must be a path, got {type(checkpoint).__name__}")
        folder = os.path.dirname(os.path.abspath(os.fspath(checkpoint)))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise ValueError(f"checkpoint: folder {folder!r} does not exist or is not writable")
    elif checkpoint_every is not None or checkpoint_interval is not None:
        raise ValueError("checkpoint_every/checkpoint_interval: need a checkpoint path")
    fingerprint = {
        "n": int(data.n),
        "d": int(data.d),
        "nnz": int(getattr(data, "nnz", 0)),
        "rows_per_partition": np.diff(np.asarray(data.offsets)).tolist(),
        "n_outputs": n_outputs,
        "solver": solver,
        "loss": loss_.name,
        "penalty": repr(penalty_),
        "fit_intercept": bool(fit_intercept),
        "batch_fraction": fraction,
        "seed": int(seed) if isinstance(seed, (int, np.integer)) else seed,
        "inner": inner if spec.history else None,
    }
    if init is not None:
        init.check_compatible(fingerprint)
        theta0 = init.theta
        history = init.history
    if theta0 is None:
        theta = np.zeros(problem.shape)
    else:
        theta = np.array(theta0, dtype=np.float64)
        if theta.shape != problem.shape:
            raise ValueError(f"theta0: expected shape {problem.shape}, got {theta.shape}")
    if not np.isfinite(theta).all():
        raise ValueError("theta0: contains NaN or infinite values")
    if spec.history:
        if history is None:
            history = GradientHistory(data.offsets, problem.dim, n_outputs)
        elif not isinstance(history, GradientHistory) or (
            history.n, history.dim, history.n_outputs
        ) != (problem.n, problem.dim, n_outputs):
            raise ValueError(
                "history: does not fit this data and model (samples, model size or outputs "
                "differ)"
            )
    P = data.n_partitions
    _positive("record_every", record_every, numbers.Integral)
    _positive("record_interval", record_interval)
    if record_every is None and record_interval is None:
        record_every = 1 if spec.synchronous else P
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed: must be an int, got {seed!r}")

    engine = Engine(
        data,
        barrier=barrier_,
        window=window,
        transport=transport,
        stragglers=stragglers,
        straggler_c=straggler_c,
        warmup_tasks=warmup_tasks,
        avg_task_time=avg_task_time,
        seed=int(seed),
        name=solver,
    )
    settings = {
        "solver": solver,
        "loss": loss_.name,
        "penalty": repr(penalty_),
        "fit_intercept": bool(fit_intercept),
        "batch_fraction": fraction,
        "barrier": barrier_.describe(),
        "stragglers": engine.straggler.describe(),
        "seed": int(seed),
        "n_partitions": P,
        "inner": inner if spec.history else None,
        "staleness_aware": bool(staleness_aware),
        "momentum": momentum,
    }

    if init is not None:
        if history is not None:
            history = _copy_history(history)
        engine.coordinator.restore(init.updates, init.task_counts)

    options: dict[str, Any] = {"staleness_aware": bool(staleness_aware)}
    if combine is not None and combine not in ("search", "average", "adaptive"):
        if isinstance(combine, bool) or not isinstance(combine, (int, float)) or not (
            0 < combine <= 1
        ):
            raise ValueError(
                "combine: must be 'search', 'average', 'adaptive' or a number in (0, 1], "
                f"got {combine!r}"
            )
    if combine == "search" and (not spec.synchronous or not spec.history):
        raise ValueError("combine: 'search' is for the synchronous SAGA solver (solver='saga')")
    if combine == "adaptive" and (spec.synchronous or not spec.history):
        raise ValueError("combine: 'adaptive' is for the asynchronous SAGA solver (solver='asaga')")
    if spec.history:
        options.update(history=history, inner=inner)
        if inner == "sequential":
            if combine is None and not penalty_.has_prox and spec.synchronous:
                combine = "search"
            if combine == "average":
                combine = 1.0 / P
            if combine is not None:
                options["combine"] = combine
            if combine in ("search", "adaptive") and init is not None:
                options["eta0"] = float(init.solver_state.get("combine_eta", 1.0))
            settings["combine"] = combine if combine is not None else 1.0 / P
        if momentum:
            options["momentum"] = momentum
            if spec.synchronous and init is not None and "momentum_velocity" in init.solver_state:
                options["velocity0"] = np.asarray(
                    init.solver_state["momentum_velocity"], dtype=np.float64
                )
            if not spec.synchronous and init is not None and "momentum" in init.solver_state:
                # ASAGA's safeguard had lowered beta: go on from there (it can recover)
                options["beta0"] = float(init.solver_state["momentum"])
        engine.history = history
    tau_bar = min(P - 1, barrier_.max_staleness if barrier_.max_staleness is not None else P)

    async def _run() -> FitResult:
        nonlocal schedule
        if isinstance(step_size, str) and init is not None:
            schedule = make_schedule(schedule_name, init.step_size)
        elif isinstance(step_size, str):
            max_sq, mean_sq = await _row_norms(engine)
            L = lipschitz_constant(max_sq, problem)
            gamma = 1.0 / L
            if spec.history:
                gamma /= 3.0
                if momentum and inner == "sequential" and combine in ("search", None):
                    # shorter passes record their histories near the combined model (the
                    # search or the momentum scale the move back up), sized by the average
                    # row rather than the largest; never above 1 / L with the search, nor
                    # above 1 / (3 L) asynchronously (stale passes with the longer step
                    # make the safeguard restart)
                    cap = 1.0 / L if combine == "search" else gamma
                    gamma = min(1.0 / (3.0 * P * lipschitz_constant(mean_sq, problem)), cap)
                if inner == "batch" and not spec.synchronous and not staleness_aware:
                    gamma /= 1.0 + tau_bar
            schedule = make_schedule(schedule_name, gamma)

        settings["step_size"] = getattr(schedule, "gamma", None)
        bar = None
        if verbose:
            total = stop.max_updates
            if total is None and stop.max_epochs is not None:
                per_epoch = (1 if spec.synchronous else P) / fraction
                total = math.ceil(stop.max_epochs * per_epoch - 1e-9)
            bar = ProgressBar(solver, total, initial=init.updates if init else 0)
        monitor = Monitor(
            engine,
            problem,
            stop,
            record_every=record_every,
            record_interval=record_interval,
            record_objective=record_objective,
            updates_per_epoch=math.ceil((1 if spec.synchronous else P) / fraction),
            updates=init.updates if init else 0,
            rows=init.rows if init else 0,
            elapsed=init.elapsed if init else 0.0,
            progress=bar,
            callback=callback,
        )

        def make_state(model: np.ndarray) -> RunState:
            return RunState(
                theta=model.copy(),
                updates=monitor.updates,
                rows=monitor.rows,
                task_counts=np.array(engine.coordinator.task_counts(), dtype=np.int64),
                step_size=float(getattr(schedule, "gamma", float("nan"))),
                fingerprint=fingerprint,
                history=history,
                elapsed=monitor.elapsed,
                solver_state=dict(monitor.info),
            )

        if checkpoint is not None:
            every = checkpoint_every
            if every is None and checkpoint_interval is None:
                every = monitor.check_every  # about once per epoch
            monitor.set_checkpoint(
                lambda model: make_state(model).save(checkpoint), every, checkpoint_interval
            )
        blocks_before = getattr(data, "n_recovered", 0)
        try:
            final = await spec.run(engine, problem, theta, schedule, fraction, monitor, **options)
            await engine._cancel_in_flight()
            state = make_state(final)
            if checkpoint is not None:
                state.save(checkpoint)
            settings["avg_task_time"] = engine.avg_task_time
            result = await monitor.finish(
                engine, final, solver=solver, settings=settings, state=state
            )
            result.recovered = {
                "tasks": engine.n_relaunched,
                "blocks": getattr(data, "n_recovered", 0) - blocks_before,
                "model_versions": engine.broadcaster.n_recovered,
            }
        finally:
            if bar is not None:
                bar.close()
        await engine._cancel()
        return result

    # one distributed span per run: the dashboard groups its tasks (and their timings)
    with span(f"daskasync-{solver}") as span_id:
        engine.annotations = dict(dask.get_annotations())
        settings["span_id"] = span_id
        return run_sync(engine, _run)
