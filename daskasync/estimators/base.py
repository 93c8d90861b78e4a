"""What the linear estimators share: parameters and their constraints, the cluster, input
validation, fitting and continuing (``fit``, ``partial_fit``) and margins."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
import sparse
from distributed import Client, LocalCluster, get_client
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted, validate_data

from ..api import minimize
from ..config import check_support, solver_barrier
from ..constraints import BOOLEAN, Instance, Interval, Options, check_all
from ..data import PartitionedData
from ..engine.barriers import Barrier
from ..losses import get_loss
from ..penalties import make_penalty
from ..problem import Problem
from ..result import FitResult, Record
from ..solvers.registry import AUTO, SOLVERS, choose_solver, get_solver
from ..state import RunState
from .inputs import (
    ClusterData,
    all_finite,
    cluster_input,
    dask_n_partitions,
    dask_to_array,
    is_dask,
)

__all__ = ["LinearModel"]

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
    "solver_options": [Instance(Mapping, "a dict of option names to values"), None],
    "client": [Instance(Client, "a distributed.Client"), None],
    "verbose": [Interval("int", 0)],
}


@contextlib.contextmanager
def _naming(names: str) -> Iterator[None]:
    """Prefix a ``ValueError`` (scikit-learn's input validation) that does not name ``X``
    or ``y`` with ``names``, so that every refusal says which argument it is about."""
    try:
        yield
    except ValueError as e:
        if re.search(r"\b[Xy]\b", str(e)):
            raise
        raise type(e)(f"{names}: {e}") from e


class LinearModel(BaseEstimator):
    """Shared parameters, fitting and prediction of the linear estimators."""

    #: the loss of this estimator's labels before they are seen
    _default_loss = "squared"

    def __init__(
        self,
        penalty: str | None = "l2",
        C: float = 1.0,
        l1_ratio: float = 0.5,
        fit_intercept: bool = True,
        solver: str = "auto",
        max_iter: int = 100,
        tol: float | None = 1e-4,
        random_state: int | np.random.RandomState | None = None,
        batch_fraction: float | str = "auto",
        barrier: str | Barrier | None = None,
        tau: int | None = None,
        step_size: float | str = "auto",
        n_partitions: int | None = None,
        combine: str | float | None = None,
        solver_options: dict[str, Any] | None = None,
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
        self.solver_options = solver_options
        self.client = client
        self.verbose = verbose

    # -- parameters ------------------------------------------------------------------------
    def __sklearn_clone__(self) -> LinearModel:
        """scikit-learn's clone, sharing the client: a live client cannot be copied, and
        the clones that GridSearchCV or cross_validate fit in threads should all use it."""
        params = {k: v if k == "client" else clone(v, safe=False)
                  for k, v in self.get_params(deep=False).items()}
        return type(self)(**params)

    def _check_params(self) -> None:
        check_all(self.get_params(deep=False), _PARAMETER_CONSTRAINTS)
        if self.solver != AUTO:
            get_solver(self.solver)

    def _penalty(self, n: int) -> Any:
        return make_penalty("none" if self.penalty in (None, "none") else self.penalty,
                            self._lam(n), self.l1_ratio)

    def _solver_class(self) -> Any:
        """The solver a fit runs (``"auto"``: :func:`~daskasync.solvers.registry.choose_solver`)."""
        if self.solver == AUTO:
            return SOLVERS[choose_solver(self._penalty(1).has_prox)]
        return SOLVERS[self.solver]

    def _check_solver_options(self, loss: str, n: int, d: int, n_outputs: int) -> None:
        """The solver's own checks of its options, on the problem's shape (no data)."""
        solver = self._solver_class()
        penalty = self._penalty(n)
        problem = Problem(get_loss(loss), penalty, bool(self.fit_intercept), n, d, n_outputs)
        check_support(solver, problem)
        solver.make_options(problem, 1, combine=self.combine, **(self.solver_options or {}))
        solver_barrier(solver, self.barrier, tau=self.tau)

    def _fraction(self) -> float:
        if self.batch_fraction == "auto":
            return self._solver_class().default_fraction
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
        if is_dask(X):
            X = dask_to_array(X, "X")
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
        with _naming("X"):
            return validate_data(
                self, X, reset=reset, accept_sparse="csr", dtype=[np.float64, np.float32],
                ensure_min_samples=1,
            )

    def _validate_Xy(self, X: Any, y: Any, reset: bool) -> tuple[Any, Any, Any]:
        """``(X, y, found)``: validated inputs, and for dask input the distinct labels
        (:meth:`_dask_labels`, computed in the same pass as the finiteness checks)."""
        if is_dask(X) or is_dask(y):
            X = self._validate_X(X if is_dask(X) else da.from_array(np.asarray(X)), reset)
            y = dask_to_array(y, "y") if is_dask(y) else np.asarray(y)
            if y.ndim != 1:
                raise ValueError(f"y: expected a 1-D array, got shape {y.shape}")
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"y: {y.shape[0]} labels for {X.shape[0]} rows of X")
            yd = y if isinstance(y, da.Array) else da.from_array(y)
            # one pass, tasks that return False rather than raise: a bad value is reported
            # here, before any task fails and the workers log a traceback
            x_ok, y_ok, found = dask.compute(all_finite(X), all_finite(yd),
                                             self._dask_labels(yd))
            if not x_ok:
                raise ValueError("X contains NaN or infinite values")
            if not y_ok:
                raise ValueError("y contains NaN or infinite values")
            return X, y, found
        if isinstance(X, sparse.SparseArray):
            X = X.tocsr() if hasattr(X, "tocsr") else sparse.COO(X).tocsr()
        with _naming("X, y"):
            X, y = validate_data(
                self, X, y, reset=reset, accept_sparse="csr", dtype=[np.float64, np.float32],
                y_numeric=not isinstance(self, ClassifierMixin),
            )
        return X, y, None

    def _dask_labels(self, y: da.Array) -> Any:
        """What a fit needs to know of dask labels before placing them (lazy; the
        classifier's distinct labels), or ``None``."""
        return None

    # -- fitting ---------------------------------------------------------------------------
    def _encode(self, y: Any, classes: np.ndarray | None, found: Any = None) -> tuple[Any, str]:
        """Targets as the loss wants them; the loss name (``found``: from
        :meth:`_validate_Xy`)."""
        return y, "squared"

    def _lam(self, n: int) -> float:
        return 1.0 / (self.C * n)

    def _run(self, X: Any, y: Any, *, partial: bool, fresh: bool = False) -> LinearModel:
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

    def _run_once(self, X: Any, y: Any, *, partial: bool) -> LinearModel:
        self._check_params()
        reset = not (partial and hasattr(self, "coef_"))
        classes = getattr(self, "classes_", None) if partial else None
        seed = self._seed() if not (partial and hasattr(self, "_seed_")) else self._seed_
        cluster = cluster_input(X, y)
        if cluster is None:
            X, y, found = self._validate_Xy(X, y, reset=reset)
            y_enc, loss = self._encode(y, classes, found)
            self._check_solver_options(loss, int(X.shape[0]), int(X.shape[1]),
                                       self._n_outputs(loss))
            token = dask.base.tokenize(X, y_enc, self.n_partitions, seed)
        else:  # before anything reaches the cluster (the shape comes with the data)
            self._check_solver_options(self._default_loss, 1, 1, 1)
        with self._client() as client:
            owned: list[PartitionedData] = []
            try:
                if cluster is None:
                    data = PartitionedData.from_arrays(
                        X, y_enc, n_partitions=self._partitions_of(X, client), client=client,
                        shuffle=None if not isinstance(X, da.Array) else False,
                        random_state=seed,
                    )
                    owned.append(data)
                else:
                    data, loss, token = self._place(cluster, client, classes, reset, seed,
                                                    owned)
                result: FitResult = minimize(data, **self._minimize_kwargs(
                    data, loss, seed, partial, token))
            finally:
                for d in reversed(owned):  # derived data before what it derives from
                    d.release()
        previous = list(getattr(self, "history_", [])) if partial else []
        records = list(result.history)
        if previous and records and records[0].update == previous[-1].update:
            records = records[1:]  # the continued run starts where the last one ended
        self._store(result, token, seed, previous + records)
        return self

    def _partitions_of(self, X: Any, client: Client) -> int | None:
        """``n_partitions``; for a dask ``X`` with fewer row chunks than the cluster has
        worker threads, as many as for in-memory data (see :func:`dask_n_partitions`)."""
        if self.n_partitions is not None or not isinstance(X, da.Array):
            return self.n_partitions
        threads = sum(client.nthreads().values())
        return dask_n_partitions(X.numblocks[0], int(X.shape[0]), threads)

    def _place(self, cluster: ClusterData, client: Client, classes: np.ndarray | None,
               reset: bool, seed: int, owned: list) -> tuple[PartitionedData, str, str]:
        """Data on the cluster: its shape checked, its labels encoded on the workers."""
        data, made = cluster.open(client)
        if made:
            owned.append(data)
        self._check_n_features(data.d, reset)
        encode, loss = self._encode_labels(data.label_values, classes)
        self._check_solver_options(loss, data.n, data.d, self._n_outputs(loss))
        token = dask.base.tokenize([f.key for f in data.parts], self.n_partitions, seed)
        if encode is not None:
            data = data.map_labels(encode)
            owned.append(data)
        return data, loss, token

    def _check_n_features(self, d: int, reset: bool) -> None:
        if reset:
            self.n_features_in_ = int(d)
        elif d != self.n_features_in_:
            raise ValueError(
                f"X has {d} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )

    def _n_outputs(self, loss: str) -> int:
        return len(self.classes_) if loss == "multinomial" else 1

    def _encode_labels(self, found: np.ndarray | None, classes: np.ndarray | None):
        """``(encoder or None, loss)`` for labels whose distinct values are ``found``."""
        return None, "squared"

    def _minimize_kwargs(self, data: PartitionedData, loss: str, seed: int, partial: bool,
                         token: str) -> dict[str, Any]:
        """The arguments of :func:`daskasync.minimize` for this fit or continuation."""
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
            combine=self.combine,
            solver_options=dict(self.solver_options) if self.solver_options else None,
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
        return kw

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

    def fit(self, X: Any, y: Any = None) -> LinearModel:
        """Fit the model from scratch (``max_iter`` epochs at most, ``tol`` on the
        objective's relative change between epochs).

        Parameters
        ----------
        X : array-like, sparse matrix, dask array, dask DataFrame, PartitionedData or paths
            Features ``(n, d)``; or data already on the cluster (a
            :class:`~daskasync.PartitionedData`, whose labels are encoded on the workers),
            or LIBSVM files read there (a path, a glob, fsspec URLs, or a list of them; see
            :meth:`~daskasync.PartitionedData.from_libsvm`).
        y : array-like, dask array or dask Series, shape (n,)
            Labels; ``None`` when ``X`` holds them (data on the cluster, files).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Invalid parameters, ``X`` or ``y`` with NaN or infinite values, labels of a
            single class, shapes that do not match. Raised before the data is placed on the
            cluster (dask input is checked by tasks that report bad values instead of
            failing), so no worker logs an error for them.

        Notes
        -----
        A dask array or dataframe with fewer row chunks than the cluster has worker threads
        is split into more partitions (see ``n_partitions``).

        A failed or interrupted call (``KeyboardInterrupt``) cancels its tasks and leaves
        the estimator as it was before the call. To keep the progress of long runs, use
        :func:`daskasync.minimize` with ``checkpoint=``.
        """
        return self._run(X, y, partial=False, fresh=True)

    def partial_fit(self, X: Any, y: Any = None, **kwargs: Any) -> LinearModel:
        """One more epoch. On the same data it continues the run exactly (model,
        gradient history, task counters), so ``k`` calls after ``fit`` with
        ``max_iter=m`` equal one fit with ``max_iter=m + k`` for the synchronous solvers;
        on new data it continues from the current model with a fresh history.
        """
        return self._run(X, y, partial=True)

    # -- prediction ------------------------------------------------------------------------
    def _decision(self, X: Any) -> Any:
        """``X @ coef_.T + intercept_``; lazy (a dask array) for dask input, computed on
        the workers for data on the cluster (a numpy array in the data's row order)."""
        check_is_fitted(self, "coef_")
        cluster = cluster_input(X, None)
        if cluster is not None:
            return self._cluster_decision(cluster)
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

    def _cluster_decision(self, cluster: ClusterData) -> np.ndarray:
        coef = self.coef_
        flat = coef.ndim == 1 or coef.shape[0] == 1
        w = coef.ravel() if flat else coef
        b = float(np.ravel(self.intercept_)[0]) if flat else np.asarray(self.intercept_)
        with self._client() as client:
            data, made = cluster.open(client)
            try:
                self._check_n_features(data.d, reset=False)
                return data.margins(w, b)
            finally:
                if made:
                    data.release()

    def _cluster_labels(self, X: Any) -> np.ndarray:
        """The labels of data on the cluster (only they travel to the driver)."""
        cluster = cluster_input(X, None)
        with self._client() as client:
            data, made = cluster.open(client)
            try:
                return data.labels()
            finally:
                if made:
                    data.release()

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        if state.get("client") is not None:
            state["client"] = None  # a live client does not pickle
        return state


