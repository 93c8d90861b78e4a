"""Row blocks: the worker-side block functions and the block arithmetic.

The functions :func:`finalize_block`, :func:`synthetic_block` and :func:`block_stats`
run on the workers (as tasks); the others split rows into blocks and place them on
the workers' threads, on the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import sparse
from distributed import Client

from ..datasets import synthetic_rows
from .checks import canonical_csr, dense_is_finite, value_dtype

Block = tuple[np.ndarray | sp.csr_matrix, np.ndarray]

_MAX_LABELS = 1000


def split_sizes(n: int, p: int) -> np.ndarray:
    """Row counts of ``np.array_split(range(n), p)``: near-equal, larger blocks first."""
    q, r = divmod(n, p)
    return np.array([q + 1] * r + [q] * (p - r), dtype=np.int64)


def offsets(sizes: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))]).astype(np.int64)


def worker_slots(client: Client) -> list[str]:
    """Worker addresses, each repeated once per thread, interleaved for round-robin use."""
    nthreads = client.nthreads()
    if not nthreads:
        return []
    workers = sorted(nthreads)
    most = max(nthreads.values())
    return [w for t in range(most) for w in workers if nthreads[w] > t]


def default_n_partitions(client: Client, n: int) -> int:
    threads = sum(client.nthreads().values())
    return min(n, max(2 * threads, 1))


def least_loaded_workers(
    n: int, ncores: dict[str, int], who_has: dict[Any, Sequence[str]]
) -> list[str]:
    """Workers to place ``n`` new blocks on, one after the other on the least loaded
    worker (ties broken by address); a worker's load is the blocks it holds (``who_has``:
    key -> holders) and is given, per thread (``ncores``: worker -> threads)."""
    load = {w: 0.0 for w in ncores}
    for holders in who_has.values():
        for w in holders:
            if w in load:
                load[w] += 1.0 / max(1, ncores[w])
    targets = []
    for _ in range(n):
        worker = min(load, key=lambda w: (load[w], w))
        load[worker] += 1.0 / max(1, ncores[worker])
        targets.append(worker)
    return targets


class InvalidBlock(str):
    """What a worker found wrong in a block, returned in the block's place instead of
    raised: a raising task logs a traceback on its worker, while the driver raises one
    clear ``ValueError`` (:func:`.builders.from_futures`)."""


def finalize_block(X: Any, y: Any, index: int) -> Block | InvalidBlock:
    """Worker task: turn a dask block pair into the canonical ``(X_block, y_block)``, or an
    :class:`InvalidBlock` saying what is wrong with it."""
    if sp.issparse(X) or isinstance(X, sparse.SparseArray):
        if isinstance(X, sparse.SparseArray) and X.fill_value != 0:
            return InvalidBlock(
                f"X partition {index} has a non-zero fill_value ({X.fill_value})")
        Xb: np.ndarray | sp.csr_matrix = canonical_csr(X)
        finite = bool(np.isfinite(Xb.data).all())
    else:
        X = np.asarray(X)
        Xb = np.ascontiguousarray(X, dtype=value_dtype(X.dtype))
        if Xb.ndim != 2:
            return InvalidBlock(f"X partition {index} is not 2-D (shape {Xb.shape})")
        finite = dense_is_finite(Xb)
    if not finite:
        return InvalidBlock(f"X contains NaN or infinite values (partition {index})")
    yb = np.ascontiguousarray(np.asarray(y), dtype=np.float64).reshape(-1)
    if yb.shape[0] != Xb.shape[0]:
        return InvalidBlock(f"y partition {index} has {yb.shape[0]} entries but X partition "
                            f"has {Xb.shape[0]} rows")
    if not np.isfinite(yb).all():
        return InvalidBlock(f"y contains NaN or infinite values (partition {index})")
    return Xb, yb


def synthetic_block(
    kind: str, start: int, stop: int, d: int, seed: int, params: dict[str, float]
) -> Block:
    """Worker task: rows ``[start, stop)`` of a synthetic dataset."""
    return synthetic_rows(kind, start, stop, d, seed, **params)


def label_values(y: np.ndarray) -> np.ndarray | None:
    """Distinct label values, or ``None`` when there are more than ``_MAX_LABELS``."""
    u = np.unique(y)
    return u if len(u) <= _MAX_LABELS else None


def merge_labels(parts: Sequence[np.ndarray | None]) -> np.ndarray | None:
    if any(p is None for p in parts):
        return None
    return label_values(np.concatenate(parts)) if parts else None


def block_stats(block: Block | InvalidBlock) -> tuple[int, int, np.ndarray | None] | InvalidBlock:
    """Worker task: ``(rows, stored entries, distinct labels)`` of a block (an
    :class:`InvalidBlock` as it is)."""
    if isinstance(block, InvalidBlock):
        return block
    X = block[0]
    nnz = int(X.nnz) if sp.issparse(X) else int(X.size)
    return int(X.shape[0]), nnz, label_values(block[1])


def safe_name(name: str) -> str:
    """Dataset name made safe for use inside a Dask key."""
    cleaned = "".join(c if c.isalnum() or c in "._" else "_" for c in name)
    return cleaned[:40] or "data"
