"""The :class:`PartitionedData` class; its constructors run the builders of
:mod:`daskasync.data.builders`, which take the class as an argument."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import numpy as np
from distributed import Client, Future

from ..constraints import Options, check
from .blocks import Block
from .builders import from_arrays as build_from_arrays
from .builders import from_libsvm as build_from_libsvm
from .builders import synthetic as build_synthetic
from .checks import check_n_partitions, resolve_client
from .operations import BlockOperations
from .shards import from_shards, is_shards

__all__ = ["PartitionedData"]


def _is_dtype(value: Any) -> bool:
    try:
        np.dtype(value)
    except TypeError:
        return False
    return value is not None


class PartitionedData(BlockOperations):
    """Row blocks persisted on the workers, plus labels.

    Partition ``i`` holds global rows ``offsets[i]:offsets[i + 1]`` as a future
    resolving to ``(X_block, y_block)``: a C-contiguous ndarray or a canonical
    :class:`scipy.sparse.csr_matrix` (float32 input stays float32, anything else becomes
    float64), and a float64 1-D label
    vector. Build instances with :meth:`from_arrays`, :meth:`from_libsvm` or
    :meth:`synthetic`; the constructors validate everything they can on the
    driver before anything is sent to the cluster, then wait until every block
    exists on the workers.

    Parameters
    ----------
    client : distributed.Client
        Client owning the futures.
    parts : list of distributed.Future
        One future per partition, resolving to ``(X_block, y_block)``.
    offsets : array-like of int, shape (P + 1,)
        Row offsets of the partitions, starting at 0.
    d : int
        Number of columns.
    is_sparse : bool
        Whether blocks hold CSR matrices.
    nnz : int
        Total number of stored entries (``n * d`` for dense data).
    name : str
        Human-readable name of the dataset.
    label_values : array-like, optional
        Sorted distinct label values (``None`` when there are too many to list).
    row_order : array-like of int, optional
        Original row index of each stored row, when rows were shuffled.
    source : callable, optional
        ``source(i) -> (X_block, y_block)`` re-creates block ``i`` on the driver. Blocks
        that were scattered (driver-side data) have no lineage on the cluster: when the
        only worker holding one dies, :meth:`recover` scatters it again from ``source``.
        Blocks computed by tasks (dask inputs, :meth:`synthetic`) are recomputed by Dask
        itself and need no source.

    Notes
    -----
    **Worker loss.** A block computed by a task is recomputed by the scheduler when its
    worker dies. A scattered block (the default for driver-side arrays and LIBSVM files)
    would be lost with its worker: the scheduler cancels its future. A block may have
    other copies, under their own keys, on workers that joined later (:meth:`aspread`);
    :attr:`parts` holds the copy tasks use, and when it is lost another copy takes its
    place. :meth:`lost` lists the partitions with no copy left and :meth:`recover`
    re-creates them from ``source`` on the live workers; :class:`daskasync.Engine` does
    both by itself when a task is cancelled by a lost block, so a run survives the loss of
    workers. The counters :attr:`n_lost`, :attr:`n_recovered`, :attr:`n_promoted` and
    :attr:`n_copied` say what happened so far.

    Examples
    --------
    >>> import numpy as np
    >>> from distributed import Client, LocalCluster
    >>> from daskasync.data import PartitionedData
    >>> cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
    ...                        dashboard_address=None)
    >>> client = Client(cluster)
    >>> X, y = np.arange(20.0).reshape(10, 2), np.ones(10)
    >>> with PartitionedData.from_arrays(X, y, n_partitions=3, client=client) as data:
    ...     print(data.rows_per_partition.tolist(), data.n, data.d)
    ...     Xg, yg = data.gather()
    [4, 3, 3] 10 2
    >>> bool(np.array_equal(Xg, X))
    True
    >>> client.close(); cluster.close()
    """

    def __init__(
        self,
        client: Client,
        parts: Sequence[Future],
        offsets: Sequence[int] | np.ndarray,
        d: int,
        *,
        is_sparse: bool,
        nnz: int,
        name: str,
        label_values: np.ndarray | None = None,
        row_order: np.ndarray | None = None,
        source: Callable[[int], Block] | None = None,
    ) -> None:
        offs = np.asarray(offsets, dtype=np.int64)
        if offs.ndim != 1 or offs.shape[0] != len(parts) + 1 or offs[0] != 0:
            raise ValueError("offsets must have shape (len(parts) + 1,) and start at 0")
        if np.any(np.diff(offs) < 0):
            raise ValueError("offsets must be non-decreasing")
        self._client = client
        self._parts: list[Future] = list(parts)
        self._offsets = offs
        self._offsets.setflags(write=False)
        self._d = int(d)
        self._is_sparse = bool(is_sparse)
        self._nnz = int(nnz)
        self._name = str(name)
        self._labels = None if label_values is None else np.asarray(label_values, dtype=float)
        self._released = False
        if row_order is not None:
            row_order = np.asarray(row_order, dtype=np.int64)
            if row_order.shape != (int(offs[-1]),):
                raise ValueError("row_order must have one entry per row")
            row_order.setflags(write=False)
        self._order = row_order
        self._source = source
        #: other copies of each block (on other workers), made for workers that joined
        self._spares: list[list[Future]] = [[] for _ in self._parts]
        #: blocks found with no copy left on the cluster (lost with their workers)
        self.n_lost = 0
        self._counted_lost: set = set()  # keys of the lost futures counted in n_lost
        #: blocks re-created from ``source`` by :meth:`recover`
        self.n_recovered = 0
        #: lost copies replaced by another copy of the block (nothing re-created)
        self.n_promoted = 0
        #: copies made for workers that joined (:meth:`aspread`)
        self.n_copied = 0

    # ------------------------------------------------------------------ props
    @property
    def row_order(self) -> np.ndarray | None:
        """Original index of each stored row, in stored order (partition 0's rows first),
        or ``None`` when the rows were not shuffled."""
        return self._order

    @property
    def label_values(self) -> np.ndarray | None:
        """Sorted distinct label values (``None`` if there are more than 1000, as for
        regression targets)."""
        return self._labels

    @property
    def client(self) -> Client:
        """The :class:`distributed.Client` owning the futures."""
        return self._client

    @property
    def parts(self) -> list[Future]:
        """Futures, partition ``i`` resolving to ``(X_block, y_block)`` (empty once released):
        for each partition the copy that tasks use."""
        return list(self._parts)

    @property
    def copies(self) -> list[list[Future]]:
        """Every copy of each block: the one in :attr:`parts` first, then those kept on
        other workers (see :meth:`aspread`)."""
        return [[f, *spares] for f, spares in zip(self._parts, self._spares, strict=True)]

    @property
    def offsets(self) -> np.ndarray:
        """Read-only int64 array of shape ``(P + 1,)`` of partition row offsets."""
        return self._offsets

    @property
    def rows_per_partition(self) -> np.ndarray:
        """int64 array of shape ``(P,)``: rows held by each partition."""
        return np.diff(self._offsets)

    @property
    def n(self) -> int:
        """Total number of rows."""
        return int(self._offsets[-1])

    @property
    def d(self) -> int:
        """Number of columns (features)."""
        return self._d

    @property
    def n_partitions(self) -> int:
        """Number of partitions ``P``."""
        return int(self._offsets.shape[0] - 1)

    @property
    def is_sparse(self) -> bool:
        """Whether the blocks are CSR matrices."""
        return self._is_sparse

    @property
    def nnz(self) -> int:
        """Number of stored entries of ``X`` (``n * d`` for dense data)."""
        return self._nnz

    @property
    def name(self) -> str:
        """Name of the dataset (file name, ``"epsilon-like"``, ...)."""
        return self._name

    @property
    def released(self) -> bool:
        """Whether :meth:`release` has been called."""
        return self._released

    # ---------------------------------------------------------------- methods
    def _check_alive(self) -> None:
        if self._released:
            raise RuntimeError(f"{self!r} has been released")

    def release(self) -> None:
        """Drop this object's references to the blocks (idempotent).

        The workers forget a block once no future refers to it any more; futures
        obtained from :attr:`parts` and still held elsewhere keep their block
        alive.
        """
        if self._released:
            return
        self._released = True
        parts, self._parts = self._parts, []
        spares, self._spares = self._spares, []
        for f in [*parts, *(f for copies in spares for f in copies)]:
            f.release()

    def __enter__(self) -> PartitionedData:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        kind = f"sparse, nnz={self._nnz}" if self._is_sparse else "dense"
        state = ", released" if self._released else ""
        return (
            f"PartitionedData(name={self._name!r}, n={self.n}, d={self._d}, {kind}, "
            f"n_partitions={self.n_partitions}{state})"
        )

    # ----------------------------------------------------------- constructors
    @classmethod
    def from_arrays(
        cls,
        X: Any,
        y: Any,
        *,
        n_partitions: int | None = None,
        client: Client | None = None,
        name: str = "array",
        shuffle: bool | None = None,
        random_state: int = 0,
        recoverable: bool = True,
    ) -> PartitionedData:
        """Partition in-memory or dask arrays by rows and place them on the workers.

        Parameters
        ----------
        X : array-like, scipy.sparse matrix/array, sparse.COO/GCXS or dask.array.Array
            Design matrix of shape ``(n, d)`` with a numeric dtype. Sparse inputs
            (any format) become CSR blocks; dense inputs C-contiguous arrays (float32
            kept, other dtypes as float64)
            blocks. A dask array must have a single chunk along columns; its
            blocks may be numpy, ``sparse`` or scipy.sparse arrays.
        y : array-like, pandas.Series or dask.array.Array
            Labels of shape ``(n,)`` with a numeric dtype.
        n_partitions : int, optional
            Number of row blocks. Default: the row chunks of a dask ``X``, else
            ``min(n, 2 * total worker threads)``. Non-dask inputs (and dask
            inputs re-chunked because ``n_partitions`` differs from their
            number of row chunks) are split into contiguous, near-equal blocks
            (the sizes of :func:`numpy.array_split`).
        client : distributed.Client, optional
            Defaults to :func:`distributed.get_client`.
        name : str, default "array"
            Name of the dataset.
        shuffle : bool, optional
            Deal the rows to the partitions in a seeded random order. Default:
            ``True`` for driver-side arrays, ``False`` for dask arrays (whose
            blocks are never moved). Files are often sorted by label (LIBSVM's
            w8a holds all its positives first): contiguous blocks of such data
            are each far from the whole, which slows every partition-local
            method (sequential SAGA passes converge P-fold slower per epoch only
            when blocks look alike; with one-label blocks they barely converge).
        random_state : int, default 0
            Seed of the shuffle.
        recoverable : bool, default True
            Keep a reference to the driver-side arrays so that a block lost with its
            worker can be scattered again (see :meth:`recover`). It holds the arrays in
            the driver's memory for the life of this object; with ``False`` the loss of
            the only worker holding a block ends a run with a clear error. Dask inputs
            are always recomputable.

        Returns
        -------
        PartitionedData

        Raises
        ------
        ValueError
            ``X`` not 2-D or empty, ``y`` not 1-D or of the wrong length, NaN or
            infinite values, a dask ``X`` chunked along columns or with unknown
            chunk sizes, ``n_partitions`` < 1 or larger than the number of rows,
            no client available, or a closed ``client``.
        TypeError
            Non-numeric dtype of ``X`` or ``y``, or non-integer ``n_partitions``.
        RuntimeError
            The blocks could not be placed: no worker is left, or workers kept leaving
            during several attempts.

        Notes
        -----
        Driver-side arrays are fully validated before anything reaches the
        cluster, then split and sent once with ``client.scatter(..., hash=False)``,
        round-robin over the workers (weighted by their threads). Workers may die
        or restart meanwhile: the blocks of a worker that is gone before, during or
        just after its transfer are placed again on the workers running then. For dask
        inputs only shapes, dtypes and chunking are validated up front: the
        NaN/inf checks run inside the block tasks, and their ``ValueError`` is
        re-raised here (the constructor waits for all blocks). A dask ``y``
        paired with a driver-side ``X`` is computed on the cluster first.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from distributed import Client, LocalCluster
        >>> from daskasync.data import PartitionedData
        >>> with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        ...     with Client(cluster) as client:
        ...         X = sp.random(50, 8, density=0.2, format="csc", random_state=0)
        ...         data = PartitionedData.from_arrays(X, np.ones(50), n_partitions=4)
        ...         print(data.is_sparse, data.nnz == X.nnz, data.rows_per_partition.tolist())
        True True [13, 13, 12, 12]
        """
        return build_from_arrays(
            cls,
            X,
            y,
            n_partitions=n_partitions,
            client=client,
            name=name,
            shuffle=shuffle,
            random_state=random_state,
            recoverable=recoverable,
        )

    @classmethod
    def from_libsvm(
        cls,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        n_partitions: int | None = None,
        client: Client | None = None,
        n_features: int | None = None,
        shuffle: bool | None = None,
        random_state: int = 0,
        recoverable: bool = True,
        dtype: Any = np.float64,
        storage_options: dict[str, Any] | None = None,
    ) -> PartitionedData:
        """Load LIBSVM data: one file through the driver, or shards read on the workers.

        * **One local file** (plain, ``.gz``, ``.bz2`` or ``.xz``) is read on the driver
          with :func:`daskasync.datasets.load_libsvm`, then handled as by
          :meth:`from_arrays` (its rows shuffled into the partitions, sparse CSR blocks).
        * **Shards**: a list of files, a glob (``"data/part-*.svm"``) or URLs that fsspec
          opens (``file://``, ``s3://``, ``gs://``, ``https://`` ..., compression inferred
          from the name). Each file is parsed by a task on a worker, so the data never
          passes through the driver and a set larger than the driver's memory loads; a
          block lost with its worker is recomputed from its file. One block per file (or
          ``ceil(n_partitions / files)`` row blocks per file); rows stay in file order
          (shuffle the rows when writing the shards). Indices are one-based unless some
          file has an index 0 (scikit-learn's rule, applied to all files together), and
          ``d`` is the largest index unless ``n_features`` is given. A missing file, a
          file that is not LIBSVM, non-numeric values or an index beyond ``n_features``
          raise an error naming the file, before any solver task runs.

        Parameters
        ----------
        path : str, os.PathLike or list of them
            A LIBSVM / svmlight file, a glob, a URL, or a list of files or URLs.
        n_partitions : int, optional
            Number of row blocks; see :meth:`from_arrays` (for shards: at least one block
            per file).
        client : distributed.Client, optional
            Defaults to :func:`distributed.get_client`.
        n_features : int, optional
            Number of columns (default: the largest index).
        shuffle : bool, optional
            One file: deal its rows to the partitions in a seeded random order (default
            ``True``; LIBSVM files are often sorted by label); see :meth:`from_arrays`.
            Shards keep their rows in file order (``True`` is refused).
        random_state : int, default 0
            Seed of the shuffle.
        recoverable : bool, default True
            One file: keep the loaded arrays on the driver to re-create blocks lost with a
            worker; see :meth:`from_arrays` (shards are always recomputable).
        dtype : {numpy.float64, numpy.float32}, default numpy.float64
            Dtype of the values on the workers (float32 halves memory and bandwidth;
            models and histories stay float64).
        storage_options : dict, optional
            Options of the fsspec filesystem (credentials, endpoints) for shards.

        Returns
        -------
        PartitionedData

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from sklearn.datasets import dump_svmlight_file
        >>> from distributed import Client, LocalCluster
        >>> from daskasync.data import PartitionedData
        >>> folder = tempfile.mkdtemp()
        >>> for i in range(2):
        ...     dump_svmlight_file(np.eye(3), np.array([1, -1, 1]),
        ...                        os.path.join(folder, f"part-{i}.svm"), zero_based=False)
        >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        ...     with Client(cluster) as client:
        ...         one = PartitionedData.from_libsvm(os.path.join(folder, "part-0.svm"),
        ...                                           n_partitions=2)
        ...         shards = PartitionedData.from_libsvm(os.path.join(folder, "part-*.svm"))
        ...         print(one); print(shards)
        PartitionedData(name='part-0.svm', n=3, d=3, sparse, nnz=3, n_partitions=2)
        PartitionedData(name='part-0.svm (+1 files)', n=6, d=3, sparse, nnz=6, n_partitions=2)
        """
        check("dtype", np.dtype(dtype).name if _is_dtype(dtype) else dtype,
              Options("float64", "float32"))
        if is_shards(path):
            if shuffle:
                raise ValueError("shuffle: shards keep their rows in file order; shuffle "
                                 "the rows when writing the files")
            check_n_partitions(n_partitions)
            return from_shards(cls, path, n_partitions=n_partitions,
                               client=resolve_client(client), n_features=n_features,
                               dtype=np.dtype(dtype), storage_options=storage_options)
        return build_from_libsvm(
            cls,
            path,
            n_partitions=n_partitions,
            client=client,
            n_features=n_features,
            shuffle=True if shuffle is None else shuffle,
            random_state=random_state,
            recoverable=recoverable,
            dtype=np.dtype(dtype),
        )

    @classmethod
    def synthetic(
        cls,
        kind: str = "epsilon",
        *,
        n: int = 10_000,
        d: int = 100,
        n_partitions: int | None = None,
        seed: int = 0,
        client: Client | None = None,
        **kw: float,
    ) -> PartitionedData:
        """Generate a synthetic data set directly on the workers.

        Partition ``i`` is created by a task calling
        :func:`daskasync.datasets.synthetic_rows` for its row range, so the
        driver never holds the matrix, a lost block can be recomputed by Dask,
        and the data are identical for any ``n_partitions``.

        Parameters
        ----------
        kind : {"epsilon", "rcv1"}, default "epsilon"
            Dataset family, see :data:`daskasync.datasets.SYNTHETIC_KINDS`.
        n : int, default 10_000
            Number of rows.
        d : int, default 100
            Number of features.
        n_partitions : int, optional
            Number of row blocks (default ``min(n, 2 * total worker threads)``).
        seed : int, default 0
            Non-negative seed.
        client : distributed.Client, optional
            Defaults to :func:`distributed.get_client`.
        **kw
            Family parameters (``noise``, ``flip``; for ``"epsilon"`` also
            ``decay``, for ``"rcv1"`` ``density`` and ``alpha``), see
            :func:`daskasync.datasets.synthetic_rows`.

        Returns
        -------
        PartitionedData
            Named ``"<kind>-like"``.

        Examples
        --------
        >>> from distributed import Client, LocalCluster
        >>> from daskasync.data import PartitionedData
        >>> with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        ...     with Client(cluster) as client:
        ...         data = PartitionedData.synthetic("rcv1", n=1000, d=50, n_partitions=4)
        ...         print(data.name, data.is_sparse, data.n_partitions, data.n)
        rcv1-like True 4 1000
        """
        return build_synthetic(
            cls, kind, n=n, d=d, n_partitions=n_partitions, seed=seed, client=client, params=kw
        )
