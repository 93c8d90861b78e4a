"""The driver runs with one BLAS thread while a run is active, and gives the limits back
after, also when runs overlap in several threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import daskasync as da
from daskasync import _blas
from daskasync._blas import one_blas_thread


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_nested_runs_share_one_limit_restored_by_the_outermost():
    before = _blas_threads()
    with one_blas_thread():
        limiter = _blas._limiter
        assert limiter is not None and _blas_threads() <= {1}
        with one_blas_thread():
            assert (_blas._active, _blas._limiter) == (2, limiter)
        assert (_blas._active, _blas._limiter) == (1, limiter)
        assert _blas_threads() <= {1}  # the inner run's end does not lift it
    assert (_blas._active, _blas._limiter) == (0, None)
    assert _blas_threads() == before


def test_runs_from_other_threads_leave_blas_alone():
    """Fits in a thread pool, overlapping: no limit is set or lifted from those threads
    (scipy's OpenBLAS does not honour them reliably), so nothing can be left behind."""
    before = _blas_threads()
    inside = threading.Barrier(2)
    seen: list[tuple] = []

    def fit():
        with one_blas_thread():
            inside.wait(10)
            seen.append((_blas._active, _blas._limiter))
            inside.wait(10)

    threads = [threading.Thread(target=fit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [(0, None), (0, None)]
    assert _blas_threads() == before


def test_a_run_drives_with_one_blas_thread(client):
    before = _blas_threads()
    if not before or max(before) < 2:
        pytest.skip("BLAS runs on one thread here already")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    data = da.PartitionedData.from_arrays(X, np.sign(X[:, 0]), n_partitions=2, client=client)
    seen: list[set[int]] = []
    da.minimize(data, solver="lbfgs", max_updates=3, callback=lambda info: seen.append(
        _blas_threads()))
    assert seen and all(s == {1} for s in seen)
    assert _blas_threads() == before
    with pytest.raises(ZeroDivisionError):  # a failed run gives the limits back too
        da.minimize(data, solver="lbfgs", max_updates=3,
                    callback=lambda info: 1 / 0)
    assert _blas_threads() == before
    data.release()
