"""Model versions restricted to the coordinates a task reads.

A task on a sparse row block reads the model only on the columns its block has (and on
the intercept). When those are a small share of ``d`` (wide, sparse data: a block of
25,000 text rows touches a fifth of a million hashed features), the driver sends each
such task a :class:`ColumnView`, the version on those coordinates only, instead of the
whole version: the bytes a task receives then follow its block's nonzeros, not ``d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ColumnView", "block_columns", "restrict", "view_worthwhile"]


@dataclass(frozen=True, eq=False)
class ColumnView:
    """A model version on some coordinates of its last axis.

    Not a tuple: distributed sends a tuple that a scheduler relays element by element
    and rebuilds it as a plain tuple, which would lose the type the task kernel reads.

    Attributes
    ----------
    index : ndarray of int
        Sorted positions along the model's last axis (columns, then the intercept slot
        when the model has one).
    values : ndarray
        ``version[..., index]``.
    """

    index: np.ndarray
    values: np.ndarray


def restrict(version: np.ndarray, index: np.ndarray) -> ColumnView:
    """``version`` on the positions ``index`` of its last axis (a copy, ``O(len(index))``).

    Examples
    --------
    >>> view = restrict(np.arange(10.0).reshape(2, 5), np.array([1, 4]))
    >>> view.values.tolist()
    [[1.0, 4.0], [6.0, 9.0]]
    """
    return ColumnView(index, np.take(version, index, axis=-1))


def view_worthwhile(n_read: int, width: int) -> bool:
    """Whether tasks reading ``n_read`` of a version's ``width`` positions get a
    :class:`ColumnView` rather than the version.

    A view costs 8 bytes per position and value row plus a 4-byte index, about
    ``1.25 n_read / width`` of the version per task for a SAGA version (two value rows);
    a whole version is sent once per worker and shared by that worker's tasks. With
    ``n_read <= width / 4`` a view is at most a third of the version, so views send fewer
    bytes whenever a worker runs at most three tasks on one version (an asynchronous run
    sends each version to one task) and never more than 1.25x the version's bytes per
    task otherwise; above that, whole versions are kept."""
    return 0 < n_read <= width // 4


def block_columns(block: Any, _model: Any = None, **_: Any) -> np.ndarray:
    """Sorted distinct columns of a sparse block's rows, ``O(nnz + d)`` (int32 below
    ``2**31`` columns).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> block_columns((sp.csr_matrix(np.array([[0, 2.0, 0, 1.0], [0, 3.0, 0, 0]])), None))
    array([1, 3], dtype=int32)
    """
    X = block[0]
    seen = np.zeros(X.shape[1], dtype=np.bool_)
    seen[X.indices] = True
    return np.flatnonzero(seen).astype(np.int32 if X.shape[1] < 2**31 else np.int64)
