"""Worker-side task functions. Every function here is pure: its value depends only on its
arguments, so Dask can recompute it after a worker loss and a seeded run is reproducible.

Models travel as a flat vector ``theta = [coef..., intercept]`` (the intercept slot exists
only when ``fit_intercept``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from .losses import Loss
from .stragglers import Straggler

__all__ = [
    "aligned",
    "sample_rows",
    "run_task",
    "margins",
    "grad_kernel",
    "eval_kernel",
    "objectives_kernel",
    "column_sums_kernel",
    "row_norm_stats_kernel",
]

_SAMPLE_STREAM = 0x5A3
TaskMeta = tuple[str, float, float, float]


def sample_rows(m: int, fraction: float, seed: int, partition: int, task_index: int) -> np.ndarray:
    """Rows sampled by task ``task_index`` of ``partition``: ``max(1, round(fraction * m))``
    distinct rows of ``range(m)``, sorted, drawn from a stream seeded by
    ``(seed, partition, task_index)``. ``fraction >= 1`` takes every row.

    Examples
    --------
    >>> a = sample_rows(10, 0.3, seed=0, partition=1, task_index=2)
    >>> b = sample_rows(10, 0.3, seed=0, partition=1, task_index=2)
    >>> a.tolist() == b.tolist(), len(a)
    (True, 3)
    >>> len(sample_rows(10, 1.0, 0, 0, 0))
    10
    """
    if fraction >= 1.0:
        return np.arange(m)
    k = max(1, int(round(fraction * m)))
    rng = np.random.default_rng([seed, _SAMPLE_STREAM, partition, task_index])
    idx = rng.choice(m, size=k, replace=False)
    idx.sort()
    return idx


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:  # not running on a distributed worker
        return "local"


def aligned(value: Any) -> Any:
    """``value`` with its arrays aligned for their dtype: a block ``(X, y)`` (dense or CSR)
    or a model, copied only where an array is not.

    An array a worker receives can sit at any byte offset of the message that brought it
    (a scattered block often does). numpy then leaves BLAS for a generic loop, which sums
    in another order (results differ in the last bits, so a synchronous run would depend
    on which worker's copy a task read) and runs several times slower; an aligned copy
    costs less than one such pass.

    Examples
    --------
    >>> import numpy as np
    >>> raw = bytearray(8 * 6 + 1)
    >>> X = np.frombuffer(raw, dtype=np.float64, count=6, offset=1).reshape(3, 2)
    >>> X.flags.aligned, aligned((X, np.ones(3)))[0].flags.aligned
    (False, True)
    """
    if isinstance(value, np.ndarray):
        return value if value.flags.aligned else np.require(value, requirements=["A", "C"])
    if sp.issparse(value):
        parts = (value.data, value.indices, value.indptr)
        return value if all(a.flags.aligned for a in parts) else value.copy()
    if isinstance(value, tuple) and len(value) == 2:
        X, y = aligned(value[0]), aligned(value[1])
        return value if X is value[0] and y is value[1] else (X, y)
    return value


def run_task(
    kernel,
    block: tuple[Any, np.ndarray],
    model: np.ndarray,
    partition: int,
    task_index: int,
    kwargs: dict,
    *,
    seed: int,
    straggler: Straggler | None,
    avg_task_time: float,
) -> tuple[Any, TaskMeta]:
    """Run ``kernel(block, model, partition=..., task_index=..., seed=..., **kwargs)`` and
    sleep the straggler delay. Returns ``(value, (worker, start, compute_s, total_s))``.
    The per-task arguments are positional so that ``Client.map`` can vary them."""
    t0 = time.perf_counter()
    start = time.time()
    value = kernel(aligned(block), aligned(model), partition=partition, task_index=task_index,
                   seed=seed, **kwargs)
    compute = time.perf_counter() - t0
    if straggler is not None and avg_task_time > 0:
        delay = straggler.delay(partition, task_index, avg_task_time)
        if delay > 0:
            time.sleep(delay)
    return value, (_worker_address(), start, compute, time.perf_counter() - t0)


def margins(X, theta: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``X @ coef + intercept`` for a flat ``theta`` (shape ``(m,)``), or for ``K`` stacked
    models ``theta`` of shape ``(K, dim)`` (shape ``(m, K)``)."""
    if theta.ndim == 1:
        if fit_intercept:
            return X @ theta[:-1] + theta[-1]
        return X @ theta
    if fit_intercept:
        return np.asarray(X @ theta[:, :-1].T) + theta[:, -1]
    return np.asarray(X @ theta.T)


def _xt_dot(X, s: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """``sum_i s_i x_i`` (and ``sum_i s_i`` for the intercept), shaped like ``theta``."""
    if s.ndim == 1:
        g = np.asarray(X.T @ s, dtype=np.float64).ravel()
        return np.append(g, s.sum()) if fit_intercept else g
    G = np.asarray(X.T @ s, dtype=np.float64).T  # (K, d)
    if fit_intercept:
        return np.hstack([G, s.sum(axis=0)[:, None]])
    return np.ascontiguousarray(G)


def _rows(X, idx: np.ndarray):
    if len(idx) == X.shape[0]:
        return X
    return X[idx]


def grad_kernel(
    block,
    theta: np.ndarray,
    *,
    loss: Loss,
    fraction: float,
    fit_intercept: bool,
    partition: int,
    task_index: int,
    seed: int,
) -> tuple[np.ndarray, int]:
    """Sum over a sampled mini-batch of the loss gradients: ``(sum_i l'(z_i) x_i, batch)``."""
    X, y = block
    idx = sample_rows(X.shape[0], fraction, seed, partition, task_index)
    Xb = _rows(X, idx)
    s = loss.derivative(margins(Xb, theta, fit_intercept), y[idx])
    return _xt_dot(Xb, s, fit_intercept), len(idx)


def eval_kernel(block, theta: np.ndarray, *, loss: Loss, fit_intercept: bool, **_: Any):
    """Full-partition loss sum and gradient sum at ``theta``: ``(loss_sum, grad_sum, rows)``."""
    X, y = block
    z = margins(X, theta, fit_intercept)
    grad = _xt_dot(X, loss.derivative(z, y), fit_intercept)
    return float(loss.value(z, y).sum()), grad, X.shape[0]


def objectives_kernel(block, thetas: np.ndarray, *, loss: Loss, fit_intercept: bool, **_: Any):
    """Loss sums of this partition for each of the ``R`` models ``thetas[r]``."""
    X, y = block
    out = np.empty(len(thetas))
    if thetas.ndim == 3:  # K stacked models each
        for r, theta in enumerate(thetas):
            out[r] = loss.value(margins(X, theta, fit_intercept), y).sum()
        return out
    for lo in range(0, len(thetas), 64):
        T = thetas[lo : lo + 64]
        Z = X @ T[:, : X.shape[1]].T
        if fit_intercept:
            Z = Z + T[:, -1]
        if sp.issparse(Z):
            Z = Z.toarray()
        out[lo : lo + 64] = loss.value(np.asarray(Z), y[:, None]).sum(axis=0)
    return out


def _sq_row_norms(X: Any) -> np.ndarray:
    """Squared row norms, accumulated in float64 (also for float32 blocks), O(nnz)."""
    if sp.issparse(X):
        data = np.asarray(X.data, dtype=np.float64)
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        return np.bincount(rows, weights=data * data, minlength=X.shape[0])
    return np.einsum("ij,ij->i", X, X, dtype=np.float64)


def column_sums_kernel(block, _model: Any = None, **_: Any) -> np.ndarray:
    """Sums over the partition's rows of every column's values (row 0) and squared values
    (row 1), in float64, O(nnz) (for the L-BFGS solvers' initial inverse Hessian).

    Examples
    --------
    >>> import numpy as np
    >>> column_sums_kernel((np.array([[3.0, 0.0], [1.0, 2.0]]), np.zeros(2))).tolist()
    [[4.0, 2.0], [10.0, 4.0]]
    """
    X = block[0]
    if sp.issparse(X):
        X = X.tocsr()
        data = np.asarray(X.data, dtype=np.float64)
        d = X.shape[1]
        return np.stack([np.bincount(X.indices, weights=data, minlength=d),
                         np.bincount(X.indices, weights=data * data, minlength=d)])
    return np.stack([X.sum(axis=0, dtype=np.float64),
                     np.einsum("ij,ij->j", X, X, dtype=np.float64)])


def row_norm_stats_kernel(block, _model: Any = None, **_: Any) -> tuple[float, float, int]:
    """``(largest, sum, count)`` of the partition's squared row norms (for the
    Lipschitz-based step sizes).

    Examples
    --------
    >>> import numpy as np
    >>> row_norm_stats_kernel((np.array([[3.0, 0.0], [1.0, 1.0]]), np.zeros(2)))
    (9.0, 11.0, 2)
    """
    sq = _sq_row_norms(block[0])
    return (float(sq.max()) if len(sq) else 0.0, float(sq.sum()), len(sq))

