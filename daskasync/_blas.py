"""One BLAS thread in the driver's process while runs are active.

The driver's linear algebra is ``O(d)`` vector work between rounds, no faster on more
threads, and an idle OpenBLAS thread spins for up to about 0.1 s after each call before it
sleeps: when the workers share the machine (a LocalCluster), that spinning takes a core
from them. The limit is process-wide (threadpoolctl); nested runs share it, and the outermost
restores the limits found before. It is applied only to runs started from the main
thread: with scipy's OpenBLAS, limits set or lifted from other threads while threads
overlap were seen not to take effect, or to stay after being lifted (one BLAS thread left
for the whole process). A run started from another thread (a thread pool of fits) leaves
BLAS as it is, at a cost in speed only.
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
    """While inside, BLAS uses one thread (from the main thread; see the module)."""
    global _active, _limiter
    if threading.current_thread() is not threading.main_thread():
        yield
        return
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
