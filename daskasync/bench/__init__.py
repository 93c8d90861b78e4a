"""Benchmarks: driver overhead (and, later, the straggler experiments against peers)."""

from .overhead import measure_overhead

__all__ = ["measure_overhead"]
