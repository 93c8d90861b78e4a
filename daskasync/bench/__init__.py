"""Benchmarks: the straggler benchmark against peers (``daskasync bench``), the driver
overhead, and the soak run."""

from .overhead import measure_overhead
from .runner import run_benchmark

__all__ = ["measure_overhead", "run_benchmark"]
