"""scikit-learn / dask-ml style estimators over :func:`daskasync.minimize`.

``LogisticRegression`` (binary and multinomial) and ``LinearRegression`` take numpy,
pandas, scipy.sparse, ``sparse``, dask arrays and dask dataframes; they run on the current
``distributed`` client, or on a ``LocalCluster`` they start and close themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask
import dask.array as da
import numpy as np
import sparse
from distributed import Client, LocalCluster, get_client
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.extmath import safe_sparse_dot, softmax
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .api import minimize
from .constraints import BOOLEAN, Instance, Interval, Options, check_all
from .data import PartitionedData
from .engine.barriers import Barrier
from .losses import get_loss
from .penalties import make_penalty
from .problem import Problem
from .result import FitResult, Record
from .solvers.registry import SOLVERS, get_solver
from .state import RunState

__all__ = ["LogisticRegression", "LinearRegression"]

_POSITIVE = Interval("real", 0, closed="neither")
_SEED = Interval("int", 0)

#: what each estimator parameter may be (the solver is checked against the registry, and
#: the solver's own options by the solver, both before any data reaches the cluster)
_PARAMETER_CONSTRAINTS: dict[str, list] = {
    "penalty": [Options("l2", "l1", "elasticnet", "none"), None],
    "C": [_POSITIVE],
    "l1_ratio": [Interval("real", 0, 1)],
    "fit_intercept": [BOOLEAN],
    "max_iter": [Interval("int", 1)],
    "tol": [Interval("real", 0), None],
    "random_state": [_SEED, Instance(np.random.RandomState, "a RandomState"),
                     None],
    "batch_fraction": [Interval("real", 0, 1, closed="right"), Options("auto")],
    "tau": [Interval("int", 0), None],
    "step_size": [_POSITIVE, Options("auto")],
    "n_partitions": [Interval("int", 1), None],
    "momentum": [Interval("real", 0, 1, closed="left")],
    "client": [Instance(Client, "a distributed.Client"), None],
    "verbose": [Interval("int", 0)],
}


def _is_dask(obj: Any) -> bool:
    return dask.is_dask_collection(obj)


def _dask_to_array(obj: Any, name: str) -> da.Array:
    """dask Array / DataFrame / Series -> dask Array with known chunk sizes."""
    if isinstance(obj, da.Array):
        if any(np.isnan(c) for c in obj.chunks[0]):
            obj = obj.compute_chunk_sizes()
        return obj
    if hasattr(obj, "to_dask_array"):  # dask DataFrame / Series
        return obj.to_dask_array(lengths=True)
    raise TypeError(f"{name}: unsupported dask collection {type(obj).__name__}")


class _LinearModel(BaseEstimator):
    """Shared parameters, fitting and prediction of the linear estimators."""

    _loss_binary = "logistic"

    def __init__(
        self,
        penalty: str | None = "l2",
        C: float = 1.0,
        l1_ratio: float = 0.5,
        fit_intercept: bool = True,
        solver: str = "saga",
        max_iter: int = 100,
        tol: float | None = 1e-4,
        random_state: int | np.random.RandomState | None = None,
        batch_fraction: float | str = "auto",
        barrier: str | Barrier | None = None,
        tau: int | None = None,
        step_size: float | str = "auto",
        n_partitions: int | None = None,
        combine: str | float | None = None,
        momentum: float = 0.0,
        client: Client | None = None,
        verbose: int = 0,
    ) -> None:
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.batch_fraction = batch_fraction
        self.barrier = barrier
        self.tau = tau
        self.step_size = step_size
        self.n_partitions = n_partitions
        self.combine = combine
        self.momentum = momentum
        self.client = client
        self.verbose = verbose

    # -- parameters ------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_all(self.get_params(deep=False), _PARAMETER_CONSTRAINTS)
        get_solver(self.solver)

    def _check_solver_options(self, loss: str, n: int, d: int, n_outputs: int) -> None:
        """The solver's own checks of its options, on the problem's shape (no data)."""
        solver = SOLVERS[self.solver]
        penalty = make_penalty("none" if self.penalty in (None, "none") else self.penalty,
                               self._lam(n), self.l1_ratio)
        problem = Problem(get_loss(loss), penalty, bool(self.fit_intercept), n, d, n_outputs)
        solver.make_options(problem, 1, **self._solver_options())

    def _solver_options(self) -> dict[str, Any]:
        return {"combine": self.combine, "momentum": self.momentum}

    def _fraction(self) -> float:
        if self.batch_fraction == "auto":
            return 1.0 if SOLVERS[self.solver].history else 0.1
        return self.batch_fraction

    def _seed(self) -> int:
        if _SEED.fits_type(self.random_state):  # an int seed (checked by _check_params)
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    # -- cluster ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _client(self) -> Iterator[Client]:
        """The given client, the current one, or a LocalCluster owned for this call."""
        if self.client is not None:
            if self.client.status in ("closed", "closing"):
                raise ValueError("client: the distributed Client is closed")
            yield self.client
            return
        try:
            current: Client | None = get_client()
        except ValueError:
            current = None
        if current is not None:
            yield current
            return
        with (
            LocalCluster(processes=False, dashboard_address="127.0.0.1:0") as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            yield client

    # -- inputs ----------------------------------------------------------------------------
    def _validate_X(self, X: Any, reset: bool) -> Any:
        if _is_dask(X):
            X = _dask_to_array(X, "X")
            if X.ndim != 2:
                raise ValueError(f"X: expected a 2-D array, got shape {X.shape}")
            if reset:
                self.n_features_in_ = int(X.shape[1])
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input"
                )
            return X
        if isinstance(X, sparse.SparseArray):
            X = X.tocsr() if hasattr(X, "tocsr") else sparse.COO(X).tocsr()
        return validate_data(
            self, X, reset=reset, accept_sparse="csr", dtype=[np.float64, np.float32],
            ensure_min_samples=1,
        )

    def _validate_Xy(self, X: Any, y: Any, reset: bool) -> tuple[Any, Any]:
        if _is_dask(X) or _is_dask(y):
            X = self._validate_X(X if _is_dask(X) else da.from_array(np.asarray(X)), reset)
            y = _dask_to_array(y, "y") if _is_dask(y) else np.asarray(y)
            if y.ndim != 1:
                raise ValueError(f"y: expected a 1-D array, got shape {y.shape}")
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"y: {y.shape[0]} labels for {X.shape[0]} rows of X")
            return X, y
        if isinstance(X, sparse.SparseArray):
            X = X.tocsr() if hasattr(X, "tocsr") else sparse.COO(X).tocsr()
        X, y = validate_data(
            self, X, y, reset=reset, accept_sparse="csr", dtype=[np.float64, np.float32],
            y_numeric=not isinstance(self, ClassifierMixin),
        )
        return X, y

    # -- fitting ---------------------------------------------------------------------------
    def _encode(self, y: Any, classes: np.ndarray | None) -> tuple[Any, str]:
        """Targets as the loss wants them; the loss name."""
        return y, "squared"

    def _lam(self, n: int) -> float:
        return 1.0 / (self.C * n)

    def _run(self, X: Any, y: Any, *, partial: bool, fresh: bool = False) -> _LinearModel:
        """Fit or continue; all or nothing: an error or an interrupt (Ctrl-C) leaves the
        estimator exactly as it was before the call (and no task on the cluster)."""
        before = dict(self.__dict__)
        try:
            if fresh:
                for attr in ("_state", "_token", "_seed_", "history_"):
                    self.__dict__.pop(attr, None)
            return self._run_once(X, y, partial=partial)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _run_once(self, X: Any, y: Any, *, partial: bool) -> _LinearModel:
        self._check_params()
        X, y = self._validate_Xy(X, y, reset=not (partial and hasattr(self, "coef_")))
        y_enc, loss = self._encode(y, getattr(self, "classes_", None) if partial else None)
        n_outputs = len(self.classes_) if loss == "multinomial" else 1
        self._check_solver_options(loss, int(X.shape[0]), int(X.shape[1]), n_outputs)
        seed = self._seed() if not (partial and hasattr(self, "_seed_")) else self._seed_
        token = dask.base.tokenize(X, y_enc, self.n_partitions, seed)
        with self._client() as client:
            data = PartitionedData.from_arrays(
                X, y_enc, n_partitions=self.n_partitions, client=client,
                shuffle=None if not isinstance(X, da.Array) else False, random_state=seed,
            )
            try:
                kw: dict[str, Any] = dict(
                    solver=self.solver,
                    loss=loss,
                    penalty="none" if self.penalty in (None, "none") else self.penalty,
                    lam=self._lam(data.n),
                    l1_ratio=self.l1_ratio if self.penalty == "elasticnet" else 0.5,
                    fit_intercept=bool(self.fit_intercept),
                    step_size=self.step_size,
                    batch_fraction=self._fraction(),
                    barrier=self.barrier,
                    tau=self.tau,
                    seed=seed,
                    verbose=self.verbose,
                    **self._solver_options(),
                )
                state: RunState | None = getattr(self, "_state", None) if partial else None
                if state is not None and getattr(self, "_token", None) == token:
                    # the next whole epoch: k calls after fit(max_iter=m) stop where one
                    # fit(max_iter=m + k) stops
                    kw.update(init=state, max_epochs=float(np.floor(state.epochs + 1e-9) + 1))
                elif partial and hasattr(self, "coef_"):
                    # new rows: continue from the model, with a fresh gradient history
                    kw.update(theta0=self._theta, max_epochs=1.0)
                else:
                    kw.update(max_epochs=float(1 if partial else self.max_iter))
                    if not partial and self.tol is not None and self.tol > 0:
                        kw["tol"] = float(self.tol)
                result: FitResult = minimize(data, **kw)
            finally:
                data.release()
        previous = list(getattr(self, "history_", [])) if partial else []
        records = list(result.history)
        if previous and records and records[0].update == previous[-1].update:
            records = records[1:]  # the continued run starts where the last one ended
        self._store(result, token, seed, previous + records)
        return self

    def _store(self, result: FitResult, token: str, seed: int, records: list[Record]) -> None:
        self._theta = result.theta.copy()
        self._state = result.state
        self._token = token
        self._seed_ = seed
        coef = np.asarray(result.coef, dtype=np.float64)
        self.coef_ = coef.reshape(1, -1) if isinstance(self, ClassifierMixin) and coef.ndim == 1 else coef
        ic = result.intercept
        self.intercept_ = np.atleast_1d(np.asarray(ic, dtype=np.float64)).copy()
        if isinstance(self, RegressorMixin):
            self.intercept_ = float(self.intercept_[0])
        self.n_iter_ = max(1, int(np.floor(result.epochs + 1e-9)))  # whole epochs run
        self.history_ = records
        self.worker_stats_ = result.worker_stats
        self.partition_stats_ = result.partition_stats
        self.objective_ = float(result.objective)
        self.result_ = result

    def fit(self, X: Any, y: Any) -> _LinearModel:
        """Fit the model from scratch (``max_iter`` epochs at most, ``tol`` on the
        objective's relative change between epochs).

        Parameters
        ----------
        X : array-like, sparse matrix, dask array or dask DataFrame, shape (n, d)
        y : array-like, dask array or dask Series, shape (n,)

        Returns
        -------
        self

        Notes
        -----
        A failed or interrupted call (``KeyboardInterrupt``) cancels its tasks and leaves
        the estimator as it was before the call. To keep the progress of long runs, use
        :func:`daskasync.minimize` with ``checkpoint=``.
        """
        return self._run(X, y, partial=False, fresh=True)

    def partial_fit(self, X: Any, y: Any, **kwargs: Any) -> _LinearModel:
        """One more epoch. On the same data it continues the run exactly (model,
        gradient history, task counters), so ``k`` calls after ``fit`` with
        ``max_iter=m`` equal one fit with ``max_iter=m + k`` for the synchronous solvers;
        on new data it continues from the current model with a fresh history.
        """
        return self._run(X, y, partial=True)

    # -- prediction ------------------------------------------------------------------------
    def _decision(self, X: Any) -> Any:
        """``X @ coef_.T + intercept_``; lazy (a dask array) for dask input."""
        check_is_fitted(self, "coef_")
        X = self._validate_X(X, reset=False)
        coef, intercept = self.coef_, self.intercept_
        flat = coef.ndim == 1 or coef.shape[0] == 1
        w = coef.ravel() if flat else coef.T
        b = float(np.ravel(intercept)[0]) if flat else np.asarray(intercept)

        def block(Xb: Any) -> np.ndarray:
            if isinstance(Xb, sparse.SparseArray):
                Xb = Xb.tocsr()
            return np.asarray(safe_sparse_dot(Xb, w)) + b

        if isinstance(X, da.Array):
            if flat:
                return X.map_blocks(block, drop_axis=1, dtype=np.float64, meta=np.array(()))
            return X.map_blocks(
                block, chunks=(X.chunks[0], (w.shape[1],)), dtype=np.float64,
                meta=np.array((), dtype=np.float64).reshape(0, 0),
            )
        return block(X)

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        if state.get("client") is not None:
            state["client"] = None  # a live client does not pickle
        return state


class LogisticRegression(ClassifierMixin, _LinearModel):
    """Logistic regression (binary, or multinomial for more than two classes) fitted with
    daskasync's distributed solvers.

    Minimizes ``mean_i loss_i + penalty(w) / (C n)``: the ``C`` of scikit-learn's
    ``LogisticRegression`` (``lam = 1 / (C n)``), so both find the same model.

    Parameters
    ----------
    penalty : {"l2", "l1", "elasticnet", "none"}, default "l2"
        L1 and elastic net are applied by a proximal step (exact zeros).
    C : float, default 1.0
        Inverse regularization strength.
    l1_ratio : float, default 0.5
        Elastic-net mixing (``penalty="elasticnet"``).
    fit_intercept : bool, default True
        Fit an unpenalized intercept.
    solver : {"saga", "asaga", "sgd", "asgd"}, default "saga"
        Synchronous rounds (``saga``, ``sgd``) or asynchronous updates (``asaga``,
        ``asgd``) over the partitions.
    max_iter : int, default 100
        Epochs (passes over the data) at most.
    tol : float or None, default 1e-4
        Stop when the objective's relative change between two epochs is below ``tol``.
    random_state : int, RandomState or None
        Seeds the row shuffle and the tasks' sampling.
    batch_fraction : float or "auto"
        Fraction of a partition's rows each task samples ("auto": 1 for SAGA, 0.1 for SGD).
    barrier : str, Barrier or callable, optional
        Barrier of the asynchronous solvers ("async", "quorum", "bounded", "ssp", ...).
    tau : int, optional
        Staleness bound (results staler than ``tau`` are dropped).
    step_size : float or "auto"
        ``"auto"`` derives the step from the data (see :func:`daskasync.minimize`).
    n_partitions : int, optional
        Row blocks (default: twice the cluster's worker threads).
    combine : {"search", "average", "adaptive"} or float, optional
        How SAGA combines the partitions' passes (see :func:`daskasync.minimize`).
    momentum : float, default 0
        Heavy-ball momentum of the SAGA solvers (see :func:`daskasync.minimize`); e.g. 0.8
        for ``solver="saga"`` on ill-conditioned problems (small ``alpha`` or large ``C``).
    client : distributed.Client, optional
        Default: the current client; without one, a ``LocalCluster`` is started for each
        fit and closed afterwards.
    verbose : int, default 0
        ``1`` shows a progress bar.

    Attributes
    ----------
    classes_ : ndarray
    coef_ : ndarray of shape (1, d) or (n_classes, d)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : int
        Epochs run (all calls, after ``partial_fit``).
    history_ : list of Record
        The run's records (time, update, epoch, objective, staleness), over all calls.
    worker_stats_ : dict
        Per worker: tasks, mean task time, staleness, drops.
    objective_ : float
        Final objective.

    Examples
    --------
    >>> from distributed import Client, LocalCluster, get_client
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import scale
    >>> import daskasync
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
    ...                   dashboard_address=None) as cluster, Client(cluster):
    ...     clf = daskasync.LogisticRegression(solver="asaga", random_state=0).fit(scale(X), y)
    ...     print(clf.classes_, clf.coef_.shape, clf.score(scale(X), y) > 0.95)
    [0 1] (1, 30) True
    """

    def _encode(self, y: Any, classes: np.ndarray | None) -> tuple[Any, str]:
        if isinstance(y, da.Array):
            found = np.asarray(da.unique(y).compute())
        else:
            check_classification_targets(y)
            found = np.unique(y)
        if classes is None:
            if len(found) < 2:
                raise ValueError(
                    f"y: this solver needs samples of at least 2 classes in the data, but "
                    f"the data contains only one class: {found[0]!r}"
                )
            self.classes_ = found
            classes = found
        elif not np.isin(found, classes).all():
            raise ValueError(f"y: labels {np.setdiff1d(found, classes)} not in classes_")
        if len(classes) == 2:
            if isinstance(y, da.Array):
                return da.where(y == classes[1], 1.0, -1.0), "logistic"
            return np.where(y == classes[1], 1.0, -1.0), "logistic"
        if isinstance(y, da.Array):
            return y.map_blocks(lambda b: np.searchsorted(classes, b).astype(float),
                                dtype=np.float64), "multinomial"
        return np.searchsorted(classes, y).astype(np.float64), "multinomial"

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> LogisticRegression:
        """One more epoch (see the base description); ``classes`` is needed on the first
        call if ``y`` may not show them all."""
        if classes is not None and not hasattr(self, "classes_"):
            self.classes_ = np.unique(np.asarray(classes))
            try:
                return self._run(X, y, partial=True)
            except BaseException:
                del self.classes_  # all or nothing, as in _run
                raise
        return self._run(X, y, partial=True)

    def decision_function(self, X: Any) -> Any:
        """Margins ``X @ coef_.T + intercept_``: shape ``(n,)`` for two classes, else
        ``(n, n_classes)``; a lazy dask array for dask input."""
        return self._decision(X)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, shape ``(n, n_classes)`` (lazy for dask input)."""
        z = self.decision_function(X)
        if isinstance(z, da.Array):
            if z.ndim == 1:
                return z.map_blocks(_binary_proba, new_axis=1, chunks=(z.chunks[0], (2,)),
                                    dtype=np.float64)
            return z.map_blocks(lambda b: softmax(b.copy()), dtype=np.float64)
        return _binary_proba(z) if z.ndim == 1 else softmax(z.copy())

    def predict_log_proba(self, X: Any) -> Any:
        """Logarithm of :meth:`predict_proba` (lazy for dask input)."""
        p = self.predict_proba(X)
        return da.log(p) if isinstance(p, da.Array) else np.log(p)

    def predict(self, X: Any) -> Any:
        """Class labels (lazy for dask input)."""
        z = self.decision_function(X)
        classes = self.classes_
        if z.ndim == 1:
            idx = (z > 0).astype(np.intp)
        else:
            idx = z.argmax(axis=1)
        if isinstance(idx, da.Array):
            return idx.map_blocks(lambda b: classes[b], dtype=classes.dtype)
        return classes[idx]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy; computed on the cluster for dask input."""
        if _is_dask(X) or _is_dask(y):
            pred = self.predict(X)
            yy = _dask_to_array(y, "y") if _is_dask(y) else np.asarray(y)
            return float(da.mean(pred == yy).compute())
        return super().score(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _binary_proba(z: np.ndarray) -> np.ndarray:
    p = 0.5 * (1.0 + np.tanh(0.5 * z))  # stable sigmoid
    return np.column_stack([1.0 - p, p])


class LinearRegression(RegressorMixin, _LinearModel):
    """Least squares with an L2 (default), L1, elastic-net or no penalty, fitted with
    daskasync's distributed solvers.

    Minimizes ``mean_i (x_i . w + b - y_i)^2 / 2 + penalty(w) / (C n)`` (dask-ml's
    convention: ``lam = 1 / (C n)``). Parameters and attributes as
    :class:`LogisticRegression` (``coef_`` has shape ``(d,)``, ``intercept_`` is a float).

    Examples
    --------
    >>> import numpy as np
    >>> from distributed import Client, LocalCluster, get_client
    >>> import daskasync
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)); y = X @ [1.0, -2.0, 0.5] + 3.0
    >>> with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
    ...     with Client(cluster):
    ...         reg = daskasync.LinearRegression(C=1e6, tol=None, max_iter=50).fit(X, y)
    >>> np.round(reg.coef_, 3).tolist(), round(reg.intercept_, 3)
    ([1.0, -2.0, 0.5], 3.0)
    """

    def predict(self, X: Any) -> Any:
        """Predictions (lazy for dask input)."""
        return self._decision(X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2; computed on the cluster for dask input."""
        if _is_dask(X) or _is_dask(y):
            pred = self.predict(X)
            yy = _dask_to_array(y, "y") if _is_dask(y) else np.asarray(y)
            ss_res = ((yy - pred) ** 2).sum()
            ss_tot = ((yy - yy.mean()) ** 2).sum()
            res, tot = dask.compute(ss_res, ss_tot)
            return float(1.0 - res / tot)
        return super().score(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
