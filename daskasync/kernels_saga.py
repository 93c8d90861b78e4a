"""Worker-side SAGA kernels (pure functions).

Two forms of a SAGA task over the rows it samples, both shipped only the history scalars of
those rows:

* ``saga_batch_kernel`` (ASYNC's form): the mini-batch sum of ``(new - old)`` gradients and
  the new scalars; the driver takes one step with it.
* ``saga_sequential_kernel``: the sampled rows are applied one by one as sequential SAGA
  steps (as scikit-learn's SAGA does) on a private copy of the model and of ``alpha_bar``;
  the task returns the model change, the change of ``alpha_bar`` (the same
  ``sum (new - old) x / n``) and the new scalars. Per-sample steps of ``1 / (3 L_max)`` make
  one task worth hundreds of mini-batch steps, which is what ill-conditioned problems need.
  On sparse ``X`` it can instead return a result sized by the nonzeros of its sampled rows
  (``sparse_result=True``), which the driver adds to its model and ``alpha_bar`` with
  :class:`daskasync.kernels_saga_apply.SagaChange`.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from .kernels_saga_fast import fast_applies, saga_fast
from .kernels_saga_lazy import LazySagaResult, saga_sequential_lazy, saga_sequential_sparse
from .losses import LogisticLoss, Loss, MultinomialLoss, SquaredLoss
from .tasks import _rows, _xt_dot, margins, sample_rows
from .views import ColumnView

__all__ = ["saga_batch_kernel", "saga_sequential_kernel", "sequential_loss_code"]

_ORDER_STREAM = 0x0DE


def saga_batch_kernel(
    block,
    theta: np.ndarray,
    *,
    loss: Loss,
    fraction: float,
    fit_intercept: bool,
    old: np.ndarray,
    partition: int,
    task_index: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(sum_B (s_new - s_old) [x_i, 1], s_new, |B|)`` over the sampled rows ``B``."""
    X, y = block
    idx = sample_rows(X.shape[0], fraction, seed, partition, task_index)
    Xb = _rows(X, idx)
    s = loss.derivative(margins(Xb, theta, fit_intercept), y[idx])
    return _xt_dot(Xb, s - old, fit_intercept), s, len(idx)


def sequential_loss_code(loss: Loss) -> int:
    """Code of a loss supported by the sequential kernel (raises ``ValueError`` otherwise)."""
    for code, cls in enumerate((LogisticLoss, SquaredLoss, MultinomialLoss)):
        if type(loss) is cls:
            return code
    raise ValueError(
        f"loss: inner='sequential' supports the logistic, squared and multinomial losses, "
        f"not {loss!r}; use inner='batch' for a custom loss"
    )


@numba.njit(cache=True, nogil=True)
def _saga_sequential(  # noqa: PLR0913 - a flat kernel
    dense, X, data, indices, indptr, y, rows, order, W, M, S, old, step, lam2, lam1, inv_n,
    loss_code, fit_intercept, d,
):
    K = W.shape[0]
    B = rows.shape[0]
    new = np.empty((B, K))
    z = np.empty(K)
    s = np.empty(K)
    thr = step * lam1
    for t in range(B):
        r = order[t]
        i = rows[r]
        for k in range(K):
            acc = W[k, d] if fit_intercept else 0.0
            if dense:
                for j in range(d):
                    acc += X[i, j] * W[k, j]
            else:
                for p in range(indptr[i], indptr[i + 1]):
                    acc += data[p] * W[k, indices[p]]
            z[k] = acc
        if loss_code == 0:
            s[0] = -y[i] / (1.0 + math.exp(y[i] * z[0]))
        elif loss_code == 1:
            s[0] = z[0] - y[i]
        else:
            zmax = z[0]
            for k in range(1, K):
                if z[k] > zmax:
                    zmax = z[k]
            tot = 0.0
            for k in range(K):
                s[k] = math.exp(z[k] - zmax)
                tot += s[k]
            for k in range(K):
                s[k] /= tot
            s[int(y[i])] -= 1.0
        for k in range(K):
            diff = s[k] - old[r, k]
            for j in range(d):  # w -= step * (alpha_bar + lam2 * w), with the old alpha_bar
                u = step * (M[k, j] + lam2 * W[k, j])
                W[k, j] -= u
                S[k, j] -= u
            if fit_intercept:
                u = step * (M[k, d] + diff)
                W[k, d] -= u
                S[k, d] -= u
                M[k, d] += diff * inv_n
            if dense:
                for j in range(d):
                    u = step * diff * X[i, j]
                    W[k, j] -= u
                    S[k, j] -= u
                    M[k, j] += diff * X[i, j] * inv_n
            else:
                for p in range(indptr[i], indptr[i + 1]):
                    j = indices[p]
                    u = step * diff * data[p]
                    W[k, j] -= u
                    S[k, j] -= u
                    M[k, j] += diff * data[p] * inv_n
            if thr > 0.0:
                for j in range(d):
                    v = W[k, j]
                    if v > thr:
                        W[k, j] = v - thr
                    elif v < -thr:
                        W[k, j] = v + thr
                    else:
                        W[k, j] = 0.0
            new[r, k] = s[k]
    return new


_EMPTY_F = np.zeros(0)
_EMPTY_I = np.zeros(0, dtype=np.int32)
_EMPTY_2D = np.zeros((0, 0))


def saga_sequential_kernel(  # noqa: PLR0913 - the task's keyword arguments
    block, model: np.ndarray, *, loss_code: int, fraction: float, fit_intercept: bool,
    old: np.ndarray, step: float, lam2: float, lam1: float, n: int, partition: int,
    task_index: int, seed: int, mean: np.ndarray | None = None, lazy: bool = True,
    sparse_result: bool = False, **_: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray] | LazySagaResult:
    """Sequential SAGA steps over the sampled rows (in a seeded random order).

    Sparse ``X`` runs the just-in-time kernel
    (:func:`daskasync.kernels_saga_lazy.saga_sequential_lazy`, ``O(nnz + d)`` per task) when
    ``lazy`` (the default) and ``step * lam2 < 1``; ``lazy=False`` runs the eager reference
    (``O(|B| d)``), whose iterates the lazy kernel's equal to rounding. Dense ``X`` always
    runs the eager kernel.

    Parameters
    ----------
    block : tuple
        ``(X, y)``, ``X`` dense or scipy sparse.
    model : ndarray or ColumnView
        The model ``theta`` (shape ``(dim,)``, or ``(K, dim)`` for ``K`` classes); when
        ``mean`` is None, ``theta`` and ``alpha_bar`` stacked, shape ``(2, *theta.shape)``
        (one published array for both). Or that stacked array on the columns of the
        block's rows and the intercept only (a :class:`~daskasync.views.ColumnView`, its
        index holding every column of the block's nonzeros): on sparse ``X`` with
        ``sparse_result`` and ``step * lam2 < 1``, the pass reads and returns the same
        values as with the whole model, in ``O(len(index))`` instead of ``O(d)``.
    old : ndarray
        Stored scalars of the sampled rows, ``(B,)`` or ``(B, K)``.
    mean : ndarray, optional
        ``alpha_bar``, shaped like ``theta``; None when ``model`` holds it.
    lazy : bool
        Run the just-in-time kernel on sparse ``X`` (when ``step * lam2 < 1``).
    sparse_result : bool
        Return a :class:`~daskasync.kernels_saga_lazy.LazySagaResult` (size ``O(nnz)`` of the
        sampled rows, nothing of size ``d``) whenever the just-in-time kernel runs; the
        driver adds it with :class:`~daskasync.kernels_saga_apply.SagaChange` (or rebuilds
        the dense arrays with :func:`~daskasync.kernels_saga_lazy.expand_saga_result`),
        equal to the dense form's.
        Other tasks (dense ``X``, the eager fallback) return the dense form.
    loss_code, fraction, fit_intercept, step, lam2, lam1, n, partition, task_index, seed
        Loss (:func:`sequential_loss_code`), sampled fraction, intercept, step, L2 and L1
        strengths, number of rows of the problem, and the task's identity and seed.

    Returns
    -------
    tuple or LazySagaResult
        The dense form ``(model change, alpha_bar change, new scalars, |B|, smooth movement)``,
        the changes and the movement shaped like ``theta``, the new scalars like ``old``; the
        smooth movement is the sum of the steps' smooth parts (the model change without the
        prox), which lets the driver apply the L1 prox itself to results computed on stale
        models. Or, with ``sparse_result``, its compact form (``new`` shaped like ``old``).
    """
    X, y = block
    m, d = X.shape
    columns = None
    if isinstance(model, ColumnView):
        if not (sp.issparse(X) and lazy and sparse_result and step * lam2 < 1.0 and mean is None):
            raise ValueError("model: a ColumnView needs sparse rows, the compact result "
                             "(sparse_result, lazy, step * lam2 < 1) and no separate mean")
        columns = model.index[: len(model.index) - bool(fit_intercept)]
        model = model.values
    if mean is None:
        if np.shape(model)[0] != 2:
            raise ValueError(f"without mean, model stacks (theta, alpha_bar): got {np.shape(model)}")
        theta, mean = model[0], model[1]
    else:
        theta = model
    idx = sample_rows(m, fraction, seed, partition, task_index)
    order = np.random.default_rng([seed, _ORDER_STREAM, partition, task_index]).permutation(
        len(idx)
    )
    K = 1 if theta.ndim == 1 else theta.shape[0]
    W0 = np.ascontiguousarray(theta, dtype=np.float64).reshape(K, -1)
    M0 = np.ascontiguousarray(mean, dtype=np.float64).reshape(K, -1)
    old2 = np.ascontiguousarray(old, dtype=np.float64).reshape(len(idx), K)
    scalars = (float(step), float(lam2), float(lam1), 1.0 / n, int(loss_code),
               bool(fit_intercept), d)
    if sp.issparse(X):
        X = X.tocsr()
        if lazy and fast_applies(X, K, lam1, step, lam2):
            out = saga_fast(X, y, idx, order, W0, M0, old2, step=step, lam2=lam2, inv_n=1.0 / n,
                            loss_code=loss_code, fit_intercept=fit_intercept,
                            compact=sparse_result, columns=columns)
            if sparse_result:
                return out._replace(new=out.new.reshape(old.shape))
            W, M, S, new = out
            return ((W - W0).reshape(theta.shape), (M - M0).reshape(mean.shape),
                    new.reshape(old.shape), len(idx), S.reshape(theta.shape))
        if lazy and step * lam2 < 1.0 and sparse_result:
            res = saga_sequential_sparse(X.data, X.indices, X.indptr, y, idx, order, W0, M0,
                                         old2, *scalars, columns=columns)
            return res._replace(new=res.new.reshape(old.shape))
    W, M, S = W0.copy(), M0.copy(), np.zeros_like(W0)
    rest = (y, idx, order, W, M, S, old2, *scalars)
    if sp.issparse(X):
        if lazy and step * lam2 < 1.0:
            new = saga_sequential_lazy(X.data, X.indices, X.indptr, *rest)
        else:
            new = _saga_sequential(False, _EMPTY_2D, X.data, X.indices, X.indptr, *rest)
    else:
        new = _saga_sequential(True, X, _EMPTY_F, _EMPTY_I, _EMPTY_I, *rest)
    return (
        (W - W0).reshape(theta.shape),
        (M - M0).reshape(mean.shape),
        new.reshape(old.shape),
        len(idx),
        S.reshape(theta.shape),
    )
