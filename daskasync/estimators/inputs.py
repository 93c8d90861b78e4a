"""What the estimators accept, and how labels are encoded for the losses.

In-memory arrays and dask collections are validated and placed by the estimator; data
already on the cluster (:class:`~daskasync.PartitionedData`) and LIBSVM files or shards
(paths, globs, fsspec URLs) are :class:`ClusterData`: their labels are encoded on the
workers (:meth:`PartitionedData.map_labels`), nothing passes through the driver.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
import sparse

from ..data import PartitionedData

__all__ = ["ClusterData", "LabelEncoder", "dask_to_array", "is_dask", "cluster_input",
           "all_finite", "dask_n_partitions", "plain"]


def is_dask(obj: Any) -> bool:
    return dask.is_dask_collection(obj)


def dask_to_array(obj: Any, name: str) -> da.Array:
    """dask Array / DataFrame / Series -> dask Array with known chunk sizes."""
    if isinstance(obj, da.Array):
        if any(np.isnan(c) for c in obj.chunks[0]):
            obj = obj.compute_chunk_sizes()
        return obj
    if hasattr(obj, "to_dask_array"):  # dask DataFrame / Series
        return obj.to_dask_array(lengths=True)
    raise TypeError(f"{name}: unsupported dask collection {type(obj).__name__}")


def _block_finite(block: Any) -> bool:
    """Whether a block (numpy, scipy.sparse or ``sparse``) holds only finite values; a
    task that returns ``False`` instead of raising, so bad input logs nothing on the
    cluster."""
    if sp.issparse(block):
        fmt = block.format
        values = block.data if fmt in ("csr", "csc", "coo", "bsr", "dia") else block.tocsr().data
    elif isinstance(block, sparse.SparseArray):
        if not np.isfinite(block.fill_value):
            return False
        values = block.data
    else:
        values = np.asarray(block)
    if values.dtype.kind not in "fc":
        return True  # integers and booleans are always finite
    return bool(np.isfinite(values).all())


def all_finite(arr: da.Array) -> Any:
    """A lazy ``bool``: every block of ``arr`` is finite (one small task per block, reduced
    on the cluster; never a failing task)."""
    flags = [dask.delayed(_block_finite, pure=True)(b) for b in arr.to_delayed().ravel()]
    return dask.delayed(all, pure=True)(flags)


def dask_n_partitions(n_blocks: int, n_rows: int, threads: int) -> int | None:
    """The partitions of a dask input of ``n_blocks`` row chunks on a cluster of
    ``threads`` worker threads: ``None`` (keep the chunks) when there are at least as many
    chunks as threads, else ``min(n_rows, 2 * threads)``, the default of in-memory
    inputs. Warns when even that leaves threads idle (fewer rows than threads)."""
    if n_blocks >= threads:
        return None
    target = min(n_rows, 2 * threads)
    if target < threads:
        warnings.warn(
            f"X has {n_rows} rows, fewer than the cluster's {threads} worker threads: "
            f"{threads - target} of them stay idle (one row per partition)",
            UserWarning, stacklevel=6,
        )
    return target if target > n_blocks else None


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (messages print ``0.0``, not
    ``np.float64(0.0)``)."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class ClusterData:
    """Training data that lives (or is read) on the cluster: a :class:`PartitionedData`,
    or LIBSVM paths to read there."""

    source: Any

    def open(self, client: Any) -> tuple[PartitionedData, bool]:
        """The data, and whether this call made it (and must release it)."""
        if isinstance(self.source, PartitionedData):
            if self.source.released:
                raise ValueError("X: this PartitionedData has been released")
            return self.source, False
        return PartitionedData.from_libsvm(self.source, client=client), True


def cluster_input(X: Any, y: Any) -> ClusterData | None:
    """``X`` as :class:`ClusterData` when it is data on the cluster or LIBSVM paths (then
    ``y`` must be ``None``: the labels are in the data), else ``None``."""
    paths = isinstance(X, (str, os.PathLike)) or (
        isinstance(X, (list, tuple)) and X and all(isinstance(p, (str, os.PathLike)) for p in X)
    )
    if not (isinstance(X, PartitionedData) or paths):
        return None
    if y is not None:
        raise TypeError("y: give y=None with a PartitionedData or LIBSVM files (their "
                        "labels are in the data)")
    return ClusterData(X)


@dataclass(frozen=True)
class LabelEncoder:
    """Class labels to what the loss wants: -1/+1 for two classes (the second is +1),
    class indices for more. Picklable, so it runs on the workers too."""

    classes: np.ndarray

    @property
    def loss(self) -> str:
        return "logistic" if len(self.classes) == 2 else "multinomial"

    def __call__(self, y: np.ndarray) -> np.ndarray:
        if len(self.classes) == 2:
            return np.where(y == self.classes[1], 1.0, -1.0)
        return np.searchsorted(self.classes, y).astype(np.float64)


def classes_of(found: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """The classes of a fit: ``found`` (at least two), or the given ``classes`` when they
    contain every label found."""
    if classes is None:
        if len(found) < 2:
            label = plain(found[0]) if len(found) else None
            raise ValueError(
                "y: this solver needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {label!r}"
            )
        return found
    if not np.isin(found, classes).all():
        missing = [plain(v) for v in np.setdiff1d(found, classes)[:10]]
        raise ValueError(f"y: labels {missing} not in classes_")
    return classes
