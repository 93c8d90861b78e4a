"""ASYNC's modules in Dask terms: broadcaster, coordinator, barriers, and the driver."""

from .barriers import (
    BARRIERS,
    SSP,
    Async,
    Barrier,
    BarrierError,
    BoundedStaleness,
    Predicate,
    Quorum,
    Sync,
    make_barrier,
)
from .broadcast import Broadcaster
from .coordinator import Coordinator, PartitionState, ResultAttributes, Ticket, WorkerStats
from .driver import Engine
from .history import GradientHistory
from .sync import run_sync
from .views import ViewShipper

__all__ = [
    "BARRIERS",
    "SSP",
    "Async",
    "Barrier",
    "BarrierError",
    "BoundedStaleness",
    "Broadcaster",
    "Coordinator",
    "Engine",
    "GradientHistory",
    "PartitionState",
    "Predicate",
    "Quorum",
    "ResultAttributes",
    "Sync",
    "Ticket",
    "ViewShipper",
    "WorkerStats",
    "make_barrier",
    "run_sync",
]
