"""Benchmarks: the straggler benchmark against peers (``daskasync bench``), the driver
overhead, and the soak run.

The straggler benchmark is :func:`~daskasync.bench.runner.run_benchmark` (``runner``) over
``specs`` (what runs: solver specs, settings, straggler models), ``problem`` (the data and
``f*``), ``runs`` (one run of a solver), ``metrics`` (relative suboptimality, time to
target), ``report`` (results.json, the table, the plot), ``peers`` (dask-glm, dask-ml and
scikit-learn adapters) and ``worker_stragglers`` (stragglers on the workers' executors).
``overhead``, ``scaling`` and ``soak`` are measurements of their own
(``python -m daskasync.bench.<name>``).
"""

from .overhead import measure_overhead
from .runner import run_benchmark

__all__ = ["measure_overhead", "run_benchmark"]
