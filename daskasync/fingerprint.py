"""The data half of a run's fingerprint: one digest of each partition's content, computed
where the block lives.

A :class:`~daskasync.RunState` records the digests of the data it was made on, and a run
continues from it only on data with the same digests (:meth:`RunState.check_compatible`).
Each digest is a BLAKE2b hash of the block's arrays (values, their dtype and shape, a sparse
block's row pointers and column indices, and the labels), so it changes with any value, with
the order of the rows (hence the seed of a shuffle) and with the partitioning. One small
task per partition computes it on the worker holding the block: only 32 hexadecimal
characters per partition travel. The digests of a data object are computed once and
remembered for as long as the object lives.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["adata_digests", "block_digest", "cached_digests"]

_DIGEST_SIZE = 16

# data object -> its digests; weak, so that a released data object takes its digests along
_KNOWN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _update(h: Any, name: str, a: np.ndarray) -> None:
    """Feed ``a``'s dtype, shape and bytes, under ``name``, into the hash ``h``."""
    a = np.ascontiguousarray(a)
    h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
    h.update(memoryview(a).cast("B"))


def block_digest(block: tuple[Any, np.ndarray], _model: Any = None, **_: Any) -> str:
    """Worker task: a hexadecimal BLAKE2b digest of one block ``(X, y)``.

    Dense and sparse blocks of the same values have different digests (their kernels
    differ); the index arrays of a sparse block enter as int64, so the digest does not
    depend on which integer type a builder chose for them.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X, y = np.eye(3), np.ones(3)
    >>> block_digest((X, y)) == block_digest((X.copy(), y.copy()))
    True
    >>> block_digest((X, y)) == block_digest((X[::-1], y))
    False
    >>> len(block_digest((sp.csr_matrix(X), y)))
    32
    """
    X, y = block
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        h.update(f"csr:{X.shape};".encode())
        _update(h, "indptr", X.indptr.astype(np.int64, copy=False))
        _update(h, "indices", X.indices.astype(np.int64, copy=False))
        _update(h, "data", X.data)
    else:
        _update(h, "dense", np.asarray(X))
    _update(h, "y", np.asarray(y))
    return h.hexdigest()


async def adata_digests(engine: Any) -> list[str]:
    """The digest of each partition of ``engine.data``, in partition order: computed on the
    workers (one task per partition, through :meth:`Engine.amap_partitions`, so a block
    lost meanwhile is re-created) the first time, then remembered for this data object."""
    data = engine.data
    known = cached_digests(data)
    if known is not None and len(known) == engine.n_partitions:
        return list(known)
    digests = [str(d) for d in await engine.amap_partitions(block_digest, None, "digest")]
    with _LOCK:
        try:
            _KNOWN[data] = tuple(digests)
        except TypeError:  # an object that cannot be weakly referenced: not remembered
            pass
    return digests


def cached_digests(data: Any) -> tuple[str, ...] | None:
    """The digests of ``data`` if a run has computed them already, else ``None``."""
    with _LOCK:
        try:
            return _KNOWN.get(data)
        except TypeError:
            return None
