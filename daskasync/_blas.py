"""One BLAS thread in the driver's process while runs are active.

The driver's linear algebra is ``O(d)`` vector work between rounds, no faster on more
threads, and an idle OpenBLAS thread spins for up to about 0.1 s after each call before it
sleeps: when the workers share the machine (a LocalCluster), that spinning takes a core
from them. The limit is process-wide (threadpoolctl), so concurrent runs share it: the
first run to start applies it, the last to end restores the limits found before.
Measured with OpenBLAS (scipy's wheels): once one thread of a process has set a limit,
limits set from another thread are ignored, so a run started from a second thread may keep
the BLAS threads found (a cost in speed only).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

__all__ = ["one_blas_thread"]

_lock = threading.Lock()
_active = 0
_limiter: threadpool_limits | None = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """While inside (from any thread, nested or concurrent), BLAS uses one thread."""
    global _active, _limiter
    with _lock:
        if _active == 0:
            _limiter = threadpool_limits(limits=1, user_api="blas")
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None
