"""scikit-learn / dask-ml style estimators over :func:`daskasync.minimize`.

``LogisticRegression`` (binary and multinomial) and ``LinearRegression`` take numpy,
pandas, scipy.sparse, ``sparse``, dask arrays and dask dataframes, data already on the
cluster (a :class:`daskasync.PartitionedData`) and LIBSVM files or shards (paths, globs,
fsspec URLs); they run on the current ``distributed`` client, or on a ``LocalCluster`` they
start and close themselves.
"""

from .linear import LinearRegression, LogisticRegression

__all__ = ["LinearRegression", "LogisticRegression"]
