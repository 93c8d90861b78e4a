"""What :class:`~daskasync.data.PartitionedData` does with its blocks on the cluster: where
they are, which are lost and how they come back, bringing them to the driver, new labels
computed on the workers, and margins of a linear model computed where the rows are."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._comm import awho_has, who_has_live
from .blocks import safe_name
from .builders import from_futures
from .placement import PlacementError, acopy, aplace, least_loaded

logger = logging.getLogger(__name__)

__all__ = ["BlockOperations"]


def _gone(fut: Any) -> bool:
    """Whether the cluster lost or cancelled ``fut`` (e.g. its only holder died)."""
    return fut.status in ("cancelled", "lost")


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
        """Worker addresses currently holding each partition (any of its copies).

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
        copies = self.copies
        # a cancelled copy (its data lost) is held by no worker; who_has refuses it
        who_has = who_has_live(self._client, [f for fs in copies for f in fs])
        return {i: tuple(sorted({w for f in fs for w in who_has.get(f.key, ())}))
                for i, fs in enumerate(copies)}

    async def aholders(self) -> list[list[str]]:
        """The workers holding each block: those of the copy tasks use first, then those
        of its other copies (each worker once). Await it on the client's event loop."""
        copies = self.copies
        who_has = await awho_has(self._client, [f for fs in copies for f in fs])
        out = []
        for fs in copies:
            seen: dict[str, None] = {}
            for f in fs:
                seen.update(dict.fromkeys(sorted(who_has.get(f.key, ()))))
            out.append(list(seen))
        return out

    @property
    def recoverable(self) -> bool:
        """Whether lost scattered blocks can be re-created (a driver-side source is kept)."""
        return self._source is not None

    def lost(self) -> list[int]:
        """Partitions whose block is gone from the cluster for good: no copy is left (its
        future was cancelled, e.g. because the only worker holding a scattered block died).

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
        return [i for i, fs in enumerate(self.copies) if all(_gone(f) for f in fs)]

    def _promote(self) -> None:
        """Forget lost copies; a partition whose copy in :attr:`parts` is lost gets another
        live copy in its place (nothing travels)."""
        for i, spares in enumerate(self._spares):
            for f in [f for f in spares if _gone(f)]:
                spares.remove(f)
                f.release()
            if _gone(self._parts[i]) and spares:
                self._parts[i].release()
                self._parts[i] = spares.pop(0)
                self.n_promoted += 1

    async def arecover(self) -> list[int]:
        """The async core of :meth:`recover`: a lost copy is replaced by another copy of
        its block when there is one; blocks with no copy left are re-created from the
        driver-side source on the live workers (least loaded first). Returns the
        partitions re-created.

        Await it on the client's event loop (as :class:`daskasync.Engine` does when a
        task is cancelled by a lost block); from synchronous code call :meth:`recover`.

        Raises
        ------
        RuntimeError
            A block is lost and there is no source to re-create it from, or no worker is
            left to hold it.
        """
        self._promote()
        lost = [i for i, f in enumerate(self._parts) if _gone(f)]
        if not lost:
            return []
        # count each lost future once: repairs running together (a round and a full pass)
        # both find it lost while the first re-creates it
        fresh = {self._parts[i].key for i in lost} - self._counted_lost
        self._counted_lost |= fresh
        self.n_lost += len(fresh)
        if self._source is None:
            raise RuntimeError(
                f"partitions {lost} of {self._name!r} were lost with their worker and "
                "cannot be re-created: this PartitionedData keeps no driver-side source "
                "(build it with recoverable=True, or from a dask array or synthetic "
                "generator, which Dask recomputes)"
            )
        load: dict[str, float] = {}
        for holders in await self.aholders():
            for w in holders:
                load[w] = load.get(w, 0.0) + 1.0
        try:
            placed = await aplace(self._client, lost, self._source, least_loaded(load))
        except PlacementError as err:
            raise RuntimeError(
                f"partitions {lost} of {self._name!r} were lost with their worker and could "
                f"not be placed again: {err}"
            ) from err
        for i, fut in placed.items():
            if self._released or not _gone(self._parts[i]):  # released, or a copy came
                fut.release()
                continue
            self._parts[i].release()
            self._parts[i] = fut
            self.n_recovered += 1
        logger.warning("partitions %s of %r were lost with their worker; re-created them "
                       "from the driver-side source", lost, self._name)
        return lost

    def recover(self) -> list[int]:
        """Replace lost copies by other copies of their blocks, and re-create the blocks
        with no copy left from the driver-side source, on the live workers (least loaded
        first); returns the partitions re-created.

        Raises
        ------
        RuntimeError
            A block is lost and there is no source to re-create it from, or no worker is
            left to hold it.
        """
        self._check_alive()
        return self._client.sync(self.arecover)

    async def aspread(self, plan: Mapping[str, Sequence[int]]) -> int:
        """Give each worker of ``plan`` (worker -> partitions) its own copy of those
        blocks, under new keys; await it on the client's event loop. A new copy becomes
        the one tasks use (so the scheduler runs them on that worker); the previous
        copies stay where they are, so the block survives the loss of either worker.
        Returns the copies made (one that failed, e.g. because a worker died, is not
        counted; the block keeps its copies).

        The copies are computed from the blocks on the workers (nothing passes through
        the driver), and each key has one replica: distributed's Active Memory Manager,
        which trims extra replicas of a key, keeps them (see :func:`.placement.acopy`).
        """
        self._check_alive()
        holders = await self.aholders()
        made = 0
        for worker, idx in plan.items():
            sources = {p: self._parts[p] for p in idx if holders[p]}
            copies = await acopy(self._client, sources, {p: holders[p][0] for p in sources},
                                 worker, name=safe_name(self._name))
            for p, fut in copies.items():
                if self._released:
                    fut.release()
                    continue
                self._spares[p].insert(0, self._parts[p])
                self._parts[p] = fut
                made += 1
        self.n_copied += made
        return made

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
        self._promote()
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
        self._promote()
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
        self._promote()
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
