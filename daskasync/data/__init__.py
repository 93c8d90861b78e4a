"""Row-partitioned training data persisted on the workers of a Dask cluster.

:class:`PartitionedData` cuts a design matrix ``X`` and labels ``y`` into
contiguous row blocks, places each block ``(X_block, y_block)`` on a worker once
and keeps the :class:`distributed.Future` objects pointing at them. Optimization
tasks then take these futures as arguments, so the data never travels through
the driver again.

Blocks are canonical:

* ``X_block`` is a C-contiguous :class:`numpy.ndarray` (dense data) or a
  :class:`scipy.sparse.csr_matrix` with sorted, unique column indices, float32 when the
  input is float32 and float64 otherwise
  (sparse data);
* ``y_block`` is a float64 1-D :class:`numpy.ndarray`.

The package: :mod:`.partitioned` (the class), :mod:`.builders` (the bodies of its
constructors), :mod:`.checks` (driver-side validation) and :mod:`.blocks` (the
worker-side block functions and block arithmetic). Only :class:`PartitionedData` is
public.
"""

from .partitioned import PartitionedData

__all__ = ["PartitionedData"]
