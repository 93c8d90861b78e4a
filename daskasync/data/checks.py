"""Driver-side validation of the inputs of :class:`~daskasync.data.PartitionedData`.

Everything here runs on the driver before anything is sent to the cluster
(:func:`canonical_csr` and :func:`dense_is_finite` also run on the workers, inside
:func:`daskasync.data.blocks.finalize_block`).
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
import sparse
from distributed import Client, get_client

from ..constraints import Instance, Interval, check

#: ``n_partitions``, and the sizes ``n``, ``d`` of synthetic data
POSITIVE_INT = Interval("int", 1)

_FINITE_CHECK_ROWS = 65_536  # rows per step of the driver-side finite check (bounds temporaries)


def resolve_client(client: Client | None) -> Client:
    """``client``, or the current client when ``None``: a running
    :class:`distributed.Client` (a ``ValueError`` naming ``client`` otherwise)."""
    if client is None:
        try:
            client = get_client()
        except ValueError:
            raise ValueError("no distributed Client: pass client= or create one") from None
    check("client", client, Instance(Client, "a distributed.Client"))
    if client.status in ("closing", "closed") or client.scheduler is None:
        raise ValueError(f"client: the distributed Client is {client.status}; pass an open one")
    return client


def check_n_partitions(n_partitions: Any, n: int | None = None) -> int | None:
    """Validate ``n_partitions`` (None allowed); ``n`` is the number of rows if known."""
    if check("n_partitions", n_partitions, POSITIVE_INT, None) is None:
        return None
    value = int(n_partitions)
    if n is not None and value > n:
        raise ValueError(
            f"n_partitions={value} is larger than the number of rows of X (n_samples={n}); "
            "every partition needs at least one row"
        )
    return value


def check_positive_int(value: Any, name: str) -> int:
    return int(check(name, value, POSITIVE_INT))


def check_dtype(dtype: Any, name: str) -> None:
    kind = np.dtype(dtype).kind
    if kind not in "biuf":
        raise TypeError(
            f"{name} must have a numeric (bool, integer or real floating) dtype, got {dtype}"
        )


def value_dtype(dtype: Any) -> type:
    """The dtype of the values on the workers: float32 stays float32 (half the memory and
    bandwidth), everything else becomes float64."""
    return np.float32 if np.dtype(dtype) == np.float32 else np.float64


def canonical_csr(X: Any) -> sp.csr_matrix:
    """CSR (float32 kept, else float64) with sorted, unique indices; never mutates the
    input."""
    if isinstance(X, sparse.SparseArray):
        X = (
            X.to_scipy_sparse()
            if hasattr(X, "to_scipy_sparse")
            else sparse.COO(X).to_scipy_sparse()
        )
    out = sp.csr_matrix(X, dtype=value_dtype(X.dtype))
    if not out.has_canonical_format:
        out = out.copy()
        out.sum_duplicates()
    return out


def dense_is_finite(X: np.ndarray) -> bool:
    for start in range(0, X.shape[0], _FINITE_CHECK_ROWS):
        if not np.isfinite(X[start : start + _FINITE_CHECK_ROWS]).all():
            return False
    return True


def validate_local_X(X: Any) -> tuple[np.ndarray | sp.csr_matrix, bool]:
    """Validate a driver-side ``X`` and convert it to float64 ndarray / canonical CSR."""
    if isinstance(X, sparse.SparseArray) or sp.issparse(X):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got a sparse array of shape {X.shape}")
        check_dtype(X.dtype, "X")
        if isinstance(X, sparse.SparseArray) and X.fill_value != 0:
            raise ValueError(f"X must have fill_value 0, got fill_value={X.fill_value}")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X is empty (shape {X.shape})")
        csr = canonical_csr(X)
        if not np.isfinite(csr.data).all():
            raise ValueError("X contains NaN or infinite values")
        return csr, True
    if dask.is_dask_collection(X):
        raise TypeError(
            f"X must be an array, a sparse matrix or a dask array, got {type(X).__name__} "
            "(convert dask DataFrames with .to_dask_array(lengths=True))"
        )
    try:
        arr = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"X could not be converted to a numeric array: {exc}") from exc
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D, got an array of shape {arr.shape}")
    check_dtype(arr.dtype, "X")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"X is empty (shape {arr.shape})")
    if arr.dtype.kind == "f" and not dense_is_finite(arr):
        raise ValueError("X contains NaN or infinite values")
    return arr, False


def validate_y_meta(y: Any, n: int) -> Any:
    """Check ``y``'s shape and dtype (no data access for dask arrays); return array-like."""
    if isinstance(y, da.Array):
        arr: Any = y
    elif dask.is_dask_collection(y):
        raise TypeError(
            f"y must be an array, a list, a pandas Series or a dask array, got {type(y).__name__}"
        )
    elif sp.issparse(y) or isinstance(y, sparse.SparseArray):
        raise TypeError("y must be dense (numpy array, list, pandas Series or dask array)")
    else:
        try:
            arr = np.asarray(y)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"y could not be converted to a numeric array: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {arr.shape}")
    check_dtype(arr.dtype, "y")
    if isinstance(arr, da.Array) and np.isnan(arr.shape[0]):
        raise ValueError("y has unknown length; call y.compute_chunk_sizes() first")
    if arr.shape[0] != n:
        raise ValueError(f"y has {arr.shape[0]} entries but X has {n} rows")
    return arr


def check_y_finite(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinite values")
    return y
