"""What :class:`~daskasync.data.PartitionedData` does with its blocks on the cluster: where
they are, which are lost and how they come back, bringing them to the driver, new labels
computed on the workers, and margins of a linear model computed where the rows are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._comm import scatter_retrying
from .blocks import least_loaded_workers
from .builders import from_futures

__all__ = ["BlockOperations"]


def _relabel(block: tuple[Any, np.ndarray], fn: Callable[[np.ndarray], np.ndarray]):
    """Worker task: the block with labels ``fn(y)`` (X shared, not copied)."""
    X, y = block
    out = np.ascontiguousarray(np.asarray(fn(y), dtype=np.float64))
    if out.shape != y.shape:
        raise ValueError(f"map_labels: fn returned shape {out.shape} for labels {y.shape}")
    return X, out


def _labels(block: tuple[Any, np.ndarray]) -> np.ndarray:
    """Worker task: the block's labels."""
    return block[1]


def _margins(block: tuple[Any, np.ndarray], coef: np.ndarray, intercept: Any) -> np.ndarray:
    """Worker task: ``X @ coef.T + intercept`` of one block (float64)."""
    X = block[0]
    return np.asarray(X @ coef.T, dtype=np.float64) + intercept


class BlockOperations:
    """The cluster-side operations of :class:`~daskasync.data.PartitionedData` (its base
    class; the attributes it reads are the data object's)."""

    def locations(self) -> dict[int, tuple[str, ...]]:
        """Worker addresses currently holding each partition.

        Returns
        -------
        dict of int to tuple of str
            Partition index -> sorted worker addresses (from
            :meth:`distributed.Client.who_has`).

        Examples
        --------
        >>> from distributed import Client, LocalCluster
        >>> from daskasync.data import PartitionedData
        >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        ...     with Client(cluster) as client:
        ...         data = PartitionedData.synthetic(n=100, d=3, n_partitions=2, client=client)
        ...         sorted(data.locations())
        [0, 1]
        """
        self._check_alive()
        who_has = self._client.who_has(self._parts)
        return {i: tuple(sorted(who_has.get(f.key, ()))) for i, f in enumerate(self._parts)}

    @property
    def recoverable(self) -> bool:
        """Whether lost scattered blocks can be re-created (a driver-side source is kept)."""
        return self._source is not None

    def lost(self) -> list[int]:
        """Partitions whose block is gone from the cluster for good (its future was
        cancelled, e.g. because the only worker holding a scattered block died).

        Examples
        --------
        >>> import numpy as np
        >>> from distributed import Client, LocalCluster
        >>> from daskasync.data import PartitionedData
        >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        ...     with Client(cluster) as client:
        ...         data = PartitionedData.from_arrays(np.eye(4), np.ones(4), n_partitions=2)
        ...         data.lost()
        []
        """
        self._check_alive()
        return [i for i, f in enumerate(self._parts) if f.status in ("cancelled", "lost")]

    async def arecover(self) -> list[int]:
        """The async core of :meth:`recover`: re-create lost scattered blocks from the
        driver-side source on the live workers (least loaded first) and return the
        partitions re-created.

        Await it on the client's event loop (as :class:`daskasync.Engine` does when a
        task is cancelled by a lost block); from synchronous code call :meth:`recover`.

        Raises
        ------
        RuntimeError
            A block is lost and there is no source to re-create it from, or no worker.
        """
        lost = self.lost()
        if not lost:
            return []
        if self._source is None:
            raise RuntimeError(
                f"partitions {lost} of {self._name!r} were lost with their worker and "
                "cannot be re-created: this PartitionedData keeps no driver-side source "
                "(build it with recoverable=True, or from a dask array or synthetic "
                "generator, which Dask recomputes)"
            )
        client = self._client
        ncores = await client.scheduler.ncores_running()
        if not ncores:
            raise RuntimeError(f"partitions {lost} were lost and no worker is left to hold them")
        live = {i: f.key for i, f in enumerate(self._parts) if i not in lost}
        who_has = await client.scheduler.who_has(keys=list(live.values()))
        targets = least_loaded_workers(len(lost), ncores, who_has)
        for i, worker in zip(lost, targets, strict=True):
            (self._parts[i],) = await scatter_retrying(client, [self._source(i)], workers=[worker])
            self.n_recovered += 1
        return lost


    def recover(self) -> list[int]:
        """Re-create lost scattered blocks from the driver-side source, on the live
        workers (least loaded first); returns the partitions re-created.

        Raises
        ------
        RuntimeError
            A block is lost and there is no source to re-create it from, or no worker.
        """
        self._check_alive()
        return self._client.sync(self.arecover)

    def gather(self) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray]:
        """Bring the whole data set back to the driver.

        Returns
        -------
        X : numpy.ndarray or scipy.sparse.csr_matrix
            Row-stacked blocks (``np.vstack`` or ``scipy.sparse.vstack``).
        y : numpy.ndarray
            Concatenated labels.

        Rows come back in the caller's original order, also when they were shuffled
        across the partitions (see :attr:`row_order`).

        Examples
        --------
        >>> import numpy as np
        >>> from distributed import Client, LocalCluster
        >>> from daskasync.data import PartitionedData
        >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        ...     with Client(cluster) as client:
        ...         data = PartitionedData.from_arrays(np.eye(4), np.arange(4), client=client)
        ...         X, y = data.gather()
        >>> X.shape, y.tolist()
        ((4, 4), [0.0, 1.0, 2.0, 3.0])
        """
        self._check_alive()
        blocks = self._client.gather(self._parts)
        ys = np.concatenate([b[1] for b in blocks])
        if self._is_sparse:
            X: np.ndarray | sp.csr_matrix = sp.csr_matrix(
                sp.vstack([b[0] for b in blocks], format="csr")
            )
        else:
            X = np.vstack([b[0] for b in blocks])
        if self._order is not None:
            inverse = np.empty_like(self._order)
            inverse[self._order] = np.arange(len(self._order))
            X, ys = X[inverse], ys[inverse]
        return X, ys

    def map_labels(self, fn: Callable[[np.ndarray], np.ndarray], *, name: str | None = None):
        """A new :class:`PartitionedData` with the same row blocks and labels ``fn(y)``,
        computed block by block on the workers (the estimators encode class labels this
        way; ``fn`` must be picklable and return one float per label).

        The new object shares the features (no copy) and keeps its blocks through their
        lineage on this object's blocks: release it first, this object after.

        Examples
        --------
        >>> import numpy as np
        >>> from distributed import Client, LocalCluster
        >>> from daskasync.data import PartitionedData
        >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        ...     with Client(cluster) as client:
        ...         data = PartitionedData.from_arrays(np.eye(4), np.arange(4.0),
        ...                                            shuffle=False)
        ...         print(data.map_labels(np.negative).gather()[1].tolist())
        [-0.0, -1.0, -2.0, -3.0]
        """
        self._check_alive()
        client = self._client
        futures = client.map(_relabel, self._parts, fn=fn, pure=False)
        return from_futures(type(self), client, futures, np.diff(self._offsets), self._d,
                            is_sparse=self._is_sparse, nnz=self._nnz,
                            name=name or self._name, row_order=self._order)

    def _in_caller_order(self, per_block: list[np.ndarray]) -> np.ndarray:
        z = np.concatenate(per_block)
        if self._order is None:
            return z
        out = np.empty_like(z)
        out[self._order] = z
        return out

    def _gather_map(self, fn: Callable, **kwargs: Any) -> list:
        futs = self._client.map(fn, self._parts, pure=False, **kwargs)
        try:
            return self._client.gather(futs)
        finally:
            for f in futs:
                f.release()

    def labels(self) -> np.ndarray:
        """The labels, in the caller's row order (only ``y`` travels to the driver)."""
        self._check_alive()
        return self._in_caller_order(self._gather_map(_labels))

    def margins(self, coef: np.ndarray, intercept: Any = 0.0) -> np.ndarray:
        """``X @ coef.T + intercept`` computed where the rows are, gathered in the caller's
        row order: shape ``(n,)`` for a flat ``coef``, ``(n, K)`` for ``K`` rows of it."""
        self._check_alive()
        coef = np.asarray(coef, dtype=np.float64)
        return self._in_caller_order(self._gather_map(_margins, coef=coef, intercept=intercept))
