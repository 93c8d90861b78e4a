"""Benchmarks: the straggler benchmark against peers (``daskasync bench``), the driver
overhead, and the soak run.

The straggler benchmark is :func:`~daskasync.bench.runner.run_benchmark` (``runner``) over
``specs`` (what runs: solver specs, settings, straggler models), ``problem`` (the data and
``f*``), ``launch`` (every solver on one cluster), ``runs`` (one run of a solver),
``clock`` (no objective check on a run's clock, counted; what checks cost), ``metrics``
(relative suboptimality, time to target), ``compare`` (speed-ups: family pairs and the best
synchronous solver), ``report`` (results.json, the tables, the plot), ``peers`` (dask-glm,
dask-ml and scikit-learn adapters) and ``worker_stragglers`` (stragglers on the workers'
executors, workers ordered by name; ``straggler_executor`` holds the executor wrapper).
``overhead``, ``scaling`` and ``soak`` are measurements of their own
(``python -m daskasync.bench.<name>``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["measure_overhead", "run_benchmark"]

_HOMES = {"measure_overhead": ".overhead", "run_benchmark": ".runner"}


def __getattr__(name: str) -> Any:
    """Imported on first use, so that ``python -m daskasync.bench.overhead`` does not find
    its module already imported by the package (runpy warns of that)."""
    if name in _HOMES:
        return getattr(import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
