"""The benchmark's problem: its data (a LIBSVM file or a synthetic family, in row blocks on
the cluster) and its optimal value ``f*`` (a tight solve on the driver, cached on disk)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..data import PartitionedData

__all__ = ["compute_f_star", "load_benchmark_data"]


def load_benchmark_data(
    client: Any, *, data: str | None, synthetic: str, n: int, d: int, partitions: int,
    seed: int = 0, synthetic_params: Mapping[str, float] | None = None,
) -> PartitionedData:
    """A LIBSVM file (binary labels mapped to -1/+1) or a synthetic dataset (family
    parameters ``synthetic_params``, e.g. ``{"decay": 0.5}``), in ``partitions`` blocks."""
    if data is not None:
        from ..datasets import load_libsvm

        X, y = load_libsvm(data)
        labels = np.unique(y)
        if len(labels) != 2:
            raise ValueError(f"data: the benchmark needs binary labels, {data} has {labels}")
        y = np.where(y == labels[1], 1.0, -1.0)
        return PartitionedData.from_arrays(
            X, y, n_partitions=partitions, client=client, name=os.path.basename(data),
            random_state=seed,
        )
    return PartitionedData.synthetic(synthetic, n=n, d=d, n_partitions=partitions, seed=seed,
                                     client=client, **dict(synthetic_params or {}))


def compute_f_star(
    data: PartitionedData, *, loss: str, lam: float, cache_dir: str | os.PathLike[str] | None
) -> tuple[float, dict[str, Any]]:
    """``f*`` of ``mean loss + lam/2 ||w||^2`` on ``data`` by a tight L-BFGS + Newton solve
    on the driver (:func:`daskasync.reference.reference_solution`), cached in ``cache_dir``
    under a hash of the data, the loss and ``lam``."""
    import dask.base

    from ..penalties import L2
    from ..reference import reference_solution

    X, y = data.gather()
    token = dask.base.tokenize(X, y, loss, float(lam), "f_star-v1")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"f_star-{token}.json"
        if path.exists():
            cached = json.loads(path.read_text())
            return float(cached["f_star"]), {**cached, "cached": True}
    t0 = time.perf_counter()
    _theta, f = reference_solution(X, y, loss, L2(lam))
    info = {"f_star": f, "seconds": time.perf_counter() - t0, "token": token,
            "method": "L-BFGS then trust-region Newton (daskasync.reference_solution)"}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, path)
    return float(f), {**info, "cached": False}
