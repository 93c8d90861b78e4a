"""The bodies of the :class:`~daskasync.data.PartitionedData` constructors.

Each builder takes the class to instantiate as its first argument ``cls`` (the
classmethods of :class:`~daskasync.data.partitioned.PartitionedData` pass theirs and
document the parameters), so this module never imports :mod:`.partitioned` at run
time: there is no import cycle.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
import sparse
from dask.array.utils import meta_from_array
from distributed import Client, Future

from ..constraints import BOOLEAN, Interval, check, check_all
from ..datasets import check_synthetic_params, load_libsvm
from .blocks import (
    Block,
    InvalidBlock,
    block_stats,
    default_n_partitions,
    finalize_block,
    label_values,
    merge_labels,
    offsets,
    safe_name,
    split_sizes,
    synthetic_block,
    worker_slots,
)
from .checks import (
    canonical_csr,
    check_dtype,
    check_n_partitions,
    check_positive_int,
    check_y_finite,
    resolve_client,
    validate_local_X,
    validate_y_meta,
    value_dtype,
)
from .placement import aplace, round_robin

#: the class being built (``PartitionedData`` or a subclass); its module imports this one,
#: so it is passed in rather than imported here
DataClass = Any


def from_futures(
    cls: DataClass,
    client: Client,
    futures: list[Future],
    sizes: np.ndarray,
    d: int,
    *,
    is_sparse: bool,
    nnz: int | None,
    name: str,
    row_order: np.ndarray | None = None,
) -> Any:
    """Wait for computed blocks, check their row counts, count nnz if needed."""
    stats_futures: list[Future] = []
    try:
        stats_futures = [client.submit(block_stats, f, pure=False) for f in futures]
        stats = client.gather(stats_futures)
    except BaseException:
        # Release explicitly: the traceback keeps this frame (and its futures) alive.
        for f in [*stats_futures, *futures]:
            f.release()
        raise
    finally:
        for f in stats_futures:
            f.release()
    invalid = [s for s in stats if isinstance(s, InvalidBlock)]
    if invalid:
        for f in futures:
            f.release()
        raise ValueError(str(invalid[0]))
    rows = np.array([s[0] for s in stats], dtype=np.int64)
    if not np.array_equal(rows, sizes):
        for f in futures:
            f.release()
        raise RuntimeError(f"block row counts {rows.tolist()} differ from {sizes.tolist()}")
    if nnz is None:
        nnz = int(sum(s[1] for s in stats))
    labels = merge_labels([s[2] for s in stats])
    return cls(
        client,
        futures,
        offsets(sizes),
        d,
        is_sparse=is_sparse,
        nnz=nnz,
        name=name,
        label_values=labels,
        row_order=row_order,
    )


# --------------------------------------------------------------------------- #
# from_arrays: options, then dask inputs (from_dask) or driver-side arrays
# --------------------------------------------------------------------------- #
def from_arrays(
    cls: DataClass,
    X: Any,
    y: Any,
    *,
    n_partitions: int | None,
    client: Client | None,
    name: str,
    shuffle: bool | None,
    random_state: int,
    recoverable: bool,
) -> Any:
    """Body of :meth:`PartitionedData.from_arrays` (documented there)."""
    n_partitions = check_n_partitions(n_partitions)
    _check_options(shuffle, random_state, recoverable)
    if isinstance(X, da.Array):
        if shuffle:
            raise ValueError(
                "shuffle=True is not supported for dask arrays (it would move every "
                "block); shuffle the rows before, e.g. with X[perm] on a dask array"
            )
        return from_dask(cls, X, y, n_partitions=n_partitions, client=client, name=name)
    return _from_local(
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


#: what ``from_arrays``' options may be (``random_state`` seeds the shuffle)
_OPTION_CONSTRAINTS: dict[str, list] = {
    "shuffle": [BOOLEAN, None],
    "random_state": [Interval("int")],
    "recoverable": [BOOLEAN],
}


def _check_options(shuffle: Any, random_state: Any, recoverable: Any) -> None:
    """``from_arrays``' ``shuffle``, ``random_state`` and ``recoverable``."""
    check_all({"shuffle": shuffle, "random_state": random_state, "recoverable": recoverable},
              _OPTION_CONSTRAINTS)


def _from_local(
    cls: DataClass,
    X: Any,
    y: Any,
    *,
    n_partitions: int | None,
    client: Client | None,
    name: str,
    shuffle: bool | None,
    random_state: int,
    recoverable: bool,
) -> Any:
    """Validate driver-side arrays fully, split them and scatter the blocks once."""
    Xc, is_sparse = validate_local_X(X)
    n, d = int(Xc.shape[0]), int(Xc.shape[1])
    y_arr = validate_y_meta(y, n)
    if not isinstance(y_arr, da.Array):
        y_arr = check_y_finite(y_arr)
    check_n_partitions(n_partitions, n)
    client = resolve_client(client)
    if not client.nthreads():
        raise ValueError("the distributed Client has no workers to hold the data")
    if isinstance(y_arr, da.Array):
        y_arr = check_y_finite(client.compute(y_arr, sync=True))
    p = n_partitions if n_partitions is not None else default_n_partitions(client, n)
    offs = offsets(split_sizes(n, p))
    order = _shuffle_order(n, offs, random_state) if shuffle is None or shuffle else None
    y_arr = np.asarray(y_arr)
    block = _block_source(Xc, y_arr, offs, order, is_sparse=is_sparse)
    placed = client.sync(aplace, client, range(p), block, round_robin)
    futures = [placed[i] for i in range(p)]
    nnz = int(Xc.nnz) if is_sparse else n * d
    return cls(
        client,
        futures,
        offs,
        d,
        is_sparse=is_sparse,
        nnz=nnz,
        name=name,
        label_values=label_values(np.asarray(y_arr, dtype=np.float64)),
        row_order=order,
        source=block if recoverable else None,
    )


def _shuffle_order(n: int, offs: np.ndarray, random_state: int) -> np.ndarray:
    """Seeded permutation dealing the ``n`` rows to the blocks of offsets ``offs``."""
    order = np.random.default_rng(int(random_state)).permutation(n)
    for i in range(len(offs) - 1):  # each block keeps its rows in the caller's order
        order[offs[i] : offs[i + 1]].sort()
    return order


def _block_source(
    Xc: np.ndarray | sp.csr_matrix,
    y_arr: np.ndarray,
    offs: np.ndarray,
    order: np.ndarray | None,
    *,
    is_sparse: bool,
) -> Callable[[int], Block]:
    """``block(i)``: the canonical block ``i`` cut from the driver-side arrays."""

    def block(i: int) -> Block:
        a, b = int(offs[i]), int(offs[i + 1])
        rows: slice | np.ndarray = slice(a, b) if order is None else order[a:b]
        if is_sparse:
            Xb: np.ndarray | sp.csr_matrix = canonical_csr(Xc[rows])
        else:
            Xb = np.ascontiguousarray(Xc[rows], dtype=value_dtype(Xc.dtype))
        return Xb, np.ascontiguousarray(y_arr[rows], dtype=np.float64)

    return block


def from_dask(
    cls: DataClass,
    X: da.Array,
    y: Any,
    *,
    n_partitions: int | None,
    client: Client | None,
    name: str,
) -> Any:
    """Blocks computed on the cluster from a dask ``X`` (and ``y``), one task each."""
    n, d, is_sparse = _check_dask_X(X)
    y_arr = validate_y_meta(y, n)
    if not isinstance(y_arr, da.Array):
        y_arr = check_y_finite(y_arr)
    check_n_partitions(n_partitions, n)
    client = resolve_client(client)

    if n_partitions is not None and n_partitions != X.numblocks[0]:
        X = X.rechunk({0: tuple(int(s) for s in split_sizes(n, n_partitions)), 1: -1})
    sizes = np.array(X.chunks[0], dtype=np.int64)
    if np.any(sizes == 0):
        keep = tuple(int(s) for s in sizes[sizes > 0])
        X = X.rechunk({0: keep, 1: -1})
        sizes = np.array(X.chunks[0], dtype=np.int64)
    offs = offsets(sizes)
    x_blocks = X.to_delayed().ravel().tolist()
    if isinstance(y_arr, da.Array):
        y_rechunked = y_arr.rechunk((tuple(int(s) for s in sizes),))
        y_blocks: list[Any] = y_rechunked.to_delayed().ravel().tolist()
    else:
        y_blocks = [y_arr[offs[i] : offs[i + 1]] for i in range(len(sizes))]
    token = uuid.uuid4().hex
    tasks = [
        dask.delayed(finalize_block)(
            xb, yb, i, dask_key_name=f"daskasync-data-{safe_name(name)}-{token}-p{i}"
        )
        for i, (xb, yb) in enumerate(zip(x_blocks, y_blocks, strict=True))
    ]
    futures = list(client.compute(tasks))
    return from_futures(
        cls,
        client,
        futures,
        sizes,
        d,
        is_sparse=is_sparse,
        nnz=None if is_sparse else n * d,
        name=name,
    )


def _check_dask_X(X: da.Array) -> tuple[int, int, bool]:
    """Shape, dtype, chunking and block type of a dask ``X``: ``(n, d, is_sparse)``."""
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got a dask array of shape {X.shape}")
    check_dtype(X.dtype, "X")
    if any(np.isnan(c) for c in X.chunks[0]) or np.isnan(X.shape[1]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    if X.numblocks[1] != 1:
        raise ValueError(
            f"X is chunked along columns ({X.numblocks[1]} column chunks); rows-only "
            "chunking is required: use X.rechunk({1: -1})"
        )
    n, d = int(X.shape[0]), int(X.shape[1])
    if n == 0 or d == 0:
        raise ValueError(f"X is empty (shape {X.shape})")
    meta = meta_from_array(X)  # an empty block of X's block type
    if isinstance(meta, np.ndarray):
        is_sparse = False
    elif isinstance(meta, sparse.SparseArray) or sp.issparse(meta):
        is_sparse = True
    else:
        raise TypeError(
            f"X is a dask array of unsupported blocks ({type(meta).__name__}); "
            "expected numpy, sparse or scipy.sparse blocks"
        )
    return n, d, is_sparse


# --------------------------------------------------------------------------- #
# from_libsvm and synthetic
# --------------------------------------------------------------------------- #
def from_libsvm(
    cls: DataClass,
    path: str | os.PathLike[str],
    *,
    n_partitions: int | None,
    client: Client | None,
    n_features: int | None,
    shuffle: bool,
    random_state: int,
    recoverable: bool,
    dtype: Any = np.float64,
) -> Any:
    """Body of :meth:`PartitionedData.from_libsvm` (documented there)."""
    check_n_partitions(n_partitions)
    X, y = load_libsvm(path, n_features=n_features, dtype=dtype)
    return cls.from_arrays(
        X,
        y,
        n_partitions=n_partitions,
        client=client,
        name=os.path.basename(os.fspath(path)),
        shuffle=shuffle,
        random_state=random_state,
        recoverable=recoverable,
    )


def synthetic(
    cls: DataClass,
    kind: str,
    *,
    n: int,
    d: int,
    n_partitions: int | None,
    seed: int,
    client: Client | None,
    params: dict[str, float],
) -> Any:
    """Body of :meth:`PartitionedData.synthetic` (documented there);
    ``params`` are its ``**kw`` (the family parameters)."""
    params = check_synthetic_params(kind, params)
    n = check_positive_int(n, "n")
    d = check_positive_int(d, "d")
    seed = int(check("seed", seed, Interval("int", 0)))
    n_partitions = check_n_partitions(n_partitions, n)
    client = resolve_client(client)
    p = n_partitions if n_partitions is not None else default_n_partitions(client, n)
    sizes = split_sizes(n, p)
    offs = offsets(sizes)
    slots = worker_slots(client)
    token = uuid.uuid4().hex
    futures = []
    for i in range(p):
        futures.append(
            client.submit(
                synthetic_block,
                kind,
                int(offs[i]),
                int(offs[i + 1]),
                d,
                seed,
                params,
                key=f"daskasync-data-{kind}-{token}-p{i}",
                workers=[slots[i % len(slots)]] if slots else None,
                allow_other_workers=True,
            )
        )
    return from_futures(
        cls,
        client,
        futures,
        sizes,
        d,
        is_sparse=(kind == "rcv1"),
        nnz=n * d if kind == "epsilon" else None,
        name=f"{kind}-like",
    )
