"""The estimators: :class:`LogisticRegression` and :class:`LinearRegression`."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.extmath import softmax
from sklearn.utils.multiclass import check_classification_targets

from .base import LinearModel
from .inputs import LabelEncoder, classes_of, cluster_input, dask_to_array, is_dask

__all__ = ["LinearRegression", "LogisticRegression"]


class LogisticRegression(ClassifierMixin, LinearModel):
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
    solver : str, default "auto"
        A registered solver (:data:`daskasync.SOLVERS`): ``"auto"`` runs asynchronous
        L-BFGS (``"albfgs"``) for L2 or no penalty and asynchronous SAGA (``"asaga"``)
        with an L1 part; their synchronous counterparts are ``"lbfgs"`` and ``"saga"``
        (see :func:`daskasync.minimize`).
    max_iter : int, default 100
        Epochs (passes over the data) at most.
    tol : float or None, default 1e-4
        Stop when the objective's relative change between two epochs is below ``tol``.
    random_state : int, RandomState or None
        Seeds the row shuffle and the tasks' sampling.
    batch_fraction : float or "auto"
        Fraction of a partition's rows each task samples ("auto": the solver's default,
        whole partitions except 0.1 for SGD).
    barrier : str, Barrier or callable, optional
        Barrier of the asynchronous solvers ("async", "quorum", "bounded", "ssp", ...).
    tau : int, optional
        Staleness bound (results staler than ``tau`` are dropped).
    step_size : float or "auto"
        ``"auto"`` derives the step from the data (see :func:`daskasync.minimize`).
    n_partitions : int, optional
        Row blocks (default: twice the cluster's worker threads, at most one per row). A
        dask array or dataframe keeps its row chunks as the partitions when it has at least
        as many as the cluster has worker threads; with fewer (a dataframe read from one
        Parquet file has one), its rows are split into the default number, so that every
        thread gets work. A ``UserWarning`` says when the data has fewer rows than the
        cluster has threads.
    combine : "average" or float, optional
        The weight of each partition's pass in the SAGA solvers (see
        :func:`daskasync.minimize`).
    solver_options : dict, optional
        The solver's own options, as :func:`daskasync.minimize` takes them: e.g.
        ``{"precondition": "none"}`` or ``{"memory": 20}`` for the L-BFGS solvers,
        ``{"quorum": 0.7}`` for ``"albfgs"``; an option the solver does not take is
        refused before any work.
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

    _default_loss = "logistic"

    def _dask_labels(self, y: da.Array) -> Any:
        return da.unique(y)

    def _encode(self, y: Any, classes: np.ndarray | None, found: Any = None) -> tuple[Any, str]:
        if isinstance(y, da.Array):
            found = np.asarray(found if found is not None else da.unique(y).compute())
        else:
            try:
                check_classification_targets(y)
            except ValueError as e:
                raise ValueError(f"y: {e}") from e
            found = np.unique(y)
        encoder = LabelEncoder(classes_of(found, classes))
        self.classes_ = encoder.classes
        if isinstance(y, da.Array):
            return y.map_blocks(encoder, dtype=np.float64), encoder.loss
        return encoder(y), encoder.loss

    def _encode_labels(self, found: np.ndarray | None, classes: np.ndarray | None):
        if found is None:
            raise ValueError("y: the data holds more than 1000 distinct labels: not classes")
        encoder = LabelEncoder(classes_of(found, classes))
        self.classes_ = encoder.classes
        return encoder, encoder.loss

    def partial_fit(self, X: Any, y: Any = None, classes: Any = None) -> LogisticRegression:
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

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Accuracy; computed on the cluster for dask input and data on the cluster (then
        ``y`` is ``None``: the labels are in the data)."""
        if cluster_input(X, y) is not None:
            return float(np.mean(self.predict(X) == self._cluster_labels(X)))
        if is_dask(X) or is_dask(y):
            pred = self.predict(X)
            yy = dask_to_array(y, "y") if is_dask(y) else np.asarray(y)
            return float(da.mean(pred == yy).compute())
        return super().score(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _binary_proba(z: np.ndarray) -> np.ndarray:
    p = 0.5 * (1.0 + np.tanh(0.5 * z))  # stable sigmoid
    return np.column_stack([1.0 - p, p])


class LinearRegression(RegressorMixin, LinearModel):
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

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """R^2; computed on the cluster for dask input and data on the cluster (then ``y``
        is ``None``)."""
        if cluster_input(X, y) is not None:
            yy, pred = self._cluster_labels(X), self.predict(X)
            return float(1.0 - ((yy - pred) ** 2).sum() / ((yy - yy.mean()) ** 2).sum())
        if is_dask(X) or is_dask(y):
            pred = self.predict(X)
            yy = dask_to_array(y, "y") if is_dask(y) else np.asarray(y)
            ss_res = ((yy - pred) ** 2).sum()
            ss_tot = ((yy - yy.mean()) ** 2).sum()
            res, tot = dask.compute(ss_res, ss_tot)
            return float(1.0 - res / tot)
        return super().score(X, y, sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
