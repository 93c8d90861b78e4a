"""Gradient history for linear models (SAGA's memory), kept on the driver.

For a linear model the gradient of sample ``i`` is ``s_i x_i`` (``s_i`` a scalar, or ``K``
scalars for ``K`` classes), so the history is one scalar per sample per output, plus the
running average ``alpha_bar = (1/n) sum_i s_i [x_i, 1]``. A task receives only the scalars of
the rows it samples (:meth:`GradientHistory.scalars`), and its result updates them
(:meth:`GradientHistory.update`): O(batch + d) per update, O(n K) memory, no per-sample vector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["GradientHistory"]


class GradientHistory:
    """Per-sample gradient scalars and their average.

    Parameters
    ----------
    offsets : sequence of int, shape (P + 1,)
        Global row offsets of the partitions (``PartitionedData.offsets``).
    dim : int
        Length of a model row (``d``, plus one with an intercept).
    n_outputs : int
        ``K`` scalars per sample (1 for binary and least-squares losses).

    Examples
    --------
    >>> import numpy as np
    >>> h = GradientHistory([0, 2, 4], dim=3)
    >>> h.scalars(1, np.array([1])).tolist()
    [0.0]
    >>> h.update(1, np.array([1]), np.array([0.5]), np.array([1.0, 0.0, 0.5]))
    >>> float(h.alpha[3]), h.mean.tolist()
    (0.5, [1.0, 0.0, 0.5])
    """

    def __init__(self, offsets: Sequence[int], dim: int, n_outputs: int = 1) -> None:
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n = int(self.offsets[-1])
        self.dim = int(dim)
        self.n_outputs = int(n_outputs)
        shape: tuple[int, ...] = (self.n,) if n_outputs == 1 else (self.n, n_outputs)
        self.alpha = np.zeros(shape)  #: the scalars, one row per sample
        mean_shape: tuple[int, ...] = (dim,) if n_outputs == 1 else (n_outputs, dim)
        self.mean = np.zeros(mean_shape)  #: average stored gradient (alpha_bar)
        self.n_updates = 0

    def scalars(self, partition: int, rows: np.ndarray) -> np.ndarray:
        """Scalars of ``rows`` (indices local to ``partition``): what a task is shipped."""
        return self.alpha[self.offsets[partition] + rows]

    def update(
        self, partition: int, rows: np.ndarray, new: np.ndarray,
        mean_delta: np.ndarray | Callable[[np.ndarray], None],
    ) -> None:
        """Store ``new`` scalars for ``rows`` and add ``mean_delta`` (the task's
        ``sum (new - old) [x_i, 1] / n``) to the average; a callable ``mean_delta`` adds it
        itself, in place (e.g. on the columns it changed only)."""
        self.alpha[self.offsets[partition] + rows] = new
        if callable(mean_delta):
            mean_delta(self.mean)
        else:
            self.mean += mean_delta
        self.n_updates += 1

    def copy(self) -> GradientHistory:
        """An independent copy (scalars, average and update count)."""
        out = GradientHistory(self.offsets, self.dim, self.n_outputs)
        out.alpha[...] = self.alpha
        out.mean[...] = self.mean
        out.n_updates = self.n_updates
        return out

    @property
    def nbytes(self) -> int:
        """Driver memory of the history (scalars plus average)."""
        return self.alpha.nbytes + self.mean.nbytes

    @property
    def bytes_per_sample_per_output(self) -> float:
        return self.alpha.nbytes / (self.n * self.n_outputs)

    def state(self) -> dict[str, np.ndarray]:
        """Plain arrays, e.g. for a checkpoint."""
        return {"alpha": self.alpha.copy(), "mean": self.mean.copy()}

    def __repr__(self) -> str:
        return (
            f"GradientHistory(n={self.n}, outputs={self.n_outputs}, dim={self.dim}, "
            f"{self.nbytes / 1e6:.1f} MB)"
        )
