"""The thread pool wrapper that holds a straggling worker's threads, and the one assumption
about distributed it rests on.

:class:`StragglerThreadPoolExecutor` wraps a worker's default thread pool: it runs each
callable in the pool's thread, then keeps that thread ``model.delay(index, k, t)`` extra
seconds, so the pool slot is really occupied, as on a slow machine.
:class:`~daskasync.bench.worker_stragglers.StragglerPlugin` installs it through distributed's
public means: a ``WorkerPlugin`` that puts it in ``Worker.executors["default"]``, the
documented slot that a worker's ``executor=`` argument fills.

What distributed does not promise
---------------------------------
A worker runs a task *in the worker's context* (so that ``get_worker()``,
``secede``/``rejoin`` and ``worker_client`` work inside it) only when its executor is a
thread pool, which distributed (2024.8 to 2026.8) recognises by the class name containing
``"ThreadPoolExecutor"``; any other executor runs the task without that context. The wrapper
is a thread pool (it runs everything in the wrapped pool's threads) and is named
accordingly. This module is the only place in daskasync that depends on that behaviour:
:func:`check_distributed_version` warns on workers whose distributed is outside the range
it was verified on, and ``tests/test_worker_stragglers.py`` fails loudly (naming this
module) when a release of distributed stops running wrapped tasks in the worker's context.

The thread is held *after* the task: distributed's record of the task (its compute time in
the task stream and the scheduler's duration estimates) is the task's own time, while the
worker, whose thread stays busy, reports the task finished only after the delay.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from typing import Any

from ..stragglers import Straggler

__all__ = ["DISTRIBUTED_VERIFIED", "StragglerThreadPoolExecutor", "check_distributed_version"]

logger = logging.getLogger(__name__)

#: the (year, month) releases of distributed whose workers were checked to run tasks given
#: to :class:`StragglerThreadPoolExecutor` in the worker's context: CI's lowest and newest
DISTRIBUTED_VERIFIED = ((2024, 8), (2026, 8))

_COUNTERS = ("tasks", "slowed", "task_s", "planned_s", "delay_s", "errors")
#: Delays shorter than this are busy-waited (exact, holding the GIL); longer ones are slept
#: (a timed wait overshoots by 0.05-0.2 ms here, as the in-task ``time.sleep`` does).
_SPIN_S = 2e-4


def _release(version: str) -> tuple[int, int] | None:
    """``(year, month)`` of a distributed version string, ``None`` if it has no such form."""
    m = re.match(r"^\s*(\d+)\.(\d+)", str(version))
    return None if m is None else (int(m.group(1)), int(m.group(2)))


def check_distributed_version(versions: Mapping[str, str]) -> list[str]:
    """Warn (``RuntimeWarning``) about the workers whose distributed release is outside
    :data:`DISTRIBUTED_VERIFIED`; returns their addresses.

    Parameters
    ----------
    versions : Mapping[str, str]
        Worker address -> its ``distributed.__version__``.

    Examples
    --------
    >>> check_distributed_version({"tcp://127.0.0.1:1": "2026.8.0"})
    []
    """
    lo, hi = DISTRIBUTED_VERIFIED
    outside = {a: v for a, v in versions.items()
               if (r := _release(v)) is None or not lo <= r <= hi}
    if outside:
        warnings.warn(
            f"per-worker stragglers were verified with distributed {lo[0]}.{lo[1]} to "
            f"{hi[0]}.{hi[1]}; these workers run {sorted(set(outside.values()))}: if their "
            "tasks lose the worker's context (get_worker() fails in a task), see "
            "daskasync.bench.straggler_executor",
            RuntimeWarning, stacklevel=2,
        )
    return sorted(outside)


class StragglerThreadPoolExecutor(Executor):
    """A thread pool wrapper that holds each thread ``model.delay(index, k, t)`` extra seconds.

    ``k`` counts the callables submitted to this wrapper (``0, 1, ...``, in the order the worker
    starts its tasks) and ``t`` is the callable's own wall time. The delay is slept in the thread
    that ran the callable, before its future completes (delays under 0.2 ms are busy-waited
    instead, since a timed sleep would overshoot them many times over). Model errors and
    non-finite delays count as no delay (``errors``); negative delays as zero. See the
    module docstring for why the name ends in ``ThreadPoolExecutor``.

    Parameters
    ----------
    inner : concurrent.futures.Executor
        The wrapped thread pool (the worker's default executor).
    model : Straggler
        Delay model; "partition" is ``index`` and ``avg`` the callable's own run time.
    index : int
        This worker's index.
    max_records : int
        Keep the last ``max_records`` ``(k, t, planned, held)`` tuples.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from daskasync.stragglers import Intensity
    >>> with ThreadPoolExecutor(2) as pool:
    ...     ex = StragglerThreadPoolExecutor(pool, Intensity(c=1.0), 0)
    ...     ex.submit(time.sleep, 0.01).result()
    ...     s = ex.stats()
    >>> s["tasks"], s["slowed"], s["planned_s"] == s["task_s"] >= 0.01
    (1, 1, True)
    """

    def __init__(
        self, inner: Executor, model: Straggler, index: int, *, max_records: int = 10_000
    ) -> None:
        self.inner = inner
        self.model = model
        self.index = index
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._next_k = 0
        self._counters: dict[str, float] = dict.fromkeys(_COUNTERS, 0)
        self._records: deque[tuple[int, float, float, float]] = deque(maxlen=max_records)

    # --- Executor interface ---------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            k = self._next_k
            self._next_k += 1
        return self.inner.submit(self._run, k, fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.release()
        self.inner.shutdown(wait=wait)

    # --- straggling -----------------------------------------------------------------------
    def release(self) -> None:
        """Cut short the delays in progress and inject none from now on (pass-through)."""
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def _run(self, k: int, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._hold(k, time.perf_counter() - t0)

    def _planned(self, k: int, t: float) -> tuple[float, bool]:
        try:
            d = float(self.model.delay(self.index, k, t))
        except Exception:
            logger.exception("straggler model %r failed for task %d", self.model, k)
            return 0.0, True
        if not math.isfinite(d):
            logger.error("straggler model %r returned %r for task %d; no delay", self.model, d, k)
            return 0.0, True
        return max(d, 0.0), False

    def _hold(self, k: int, t: float) -> float:
        planned, error = (0.0, False) if self.released else self._planned(k, t)
        held = 0.0
        if planned > 0:
            t1 = time.perf_counter()
            if planned >= _SPIN_S:
                self._released.wait(planned)
            else:  # a timed wait would overshoot by ~0.1 ms: many times a tiny delay
                end = t1 + planned
                while time.perf_counter() < end:
                    pass
            held = time.perf_counter() - t1
        with self._lock:
            c = self._counters
            c["tasks"] += 1
            c["slowed"] += planned > 0
            c["task_s"] += t
            c["planned_s"] += planned
            c["delay_s"] += held
            c["errors"] += error
            self._records.append((k, t, planned, held))
        return held

    def stats(self, records: bool = False) -> dict[str, Any]:
        """Counters: ``tasks`` run, ``slowed`` (planned delay > 0), ``task_s`` (their own run
        time), ``planned_s`` (sum of the model's delays), ``delay_s`` (seconds threads were
        actually held), ``errors`` (model failures, counted as no delay); with ``records``, the
        ``(k, t, planned, held)`` tuples too."""
        with self._lock:
            out: dict[str, Any] = {"index": self.index, **self._counters}
            out["tasks"], out["slowed"], out["errors"] = (
                int(out["tasks"]), int(out["slowed"]), int(out["errors"]))
            if records:
                out["records"] = list(self._records)
        return out
