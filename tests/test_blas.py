"""The driver runs with one BLAS thread while a run is active, and gives the limits back
after, also when runs overlap in several threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import daskasync as da
from daskasync._blas import one_blas_thread


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


@pytest.fixture
def two_blas_threads():
    """BLAS on several threads, as by default on a machine of several cores. (Not forced
    with an outer ``threadpool_limits``: OpenBLAS then ignores limits set from other
    threads.)"""
    if not _blas_threads() or min(_blas_threads()) < 2:
        pytest.skip("BLAS runs on one thread here already")
    return _blas_threads()


def test_limit_applies_inside_and_is_restored_after_overlapping_runs(two_blas_threads):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, set[int]] = {}

    def first():
        with one_blas_thread():
            first_in.set()
            second_in.wait(10)
            seen["both"] = _blas_threads()
        first_out.set()

    def second():
        first_in.wait(10)
        with one_blas_thread():
            second_in.set()
            first_out.wait(10)
            seen["second alone"] = _blas_threads()  # the first ended: still limited

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"both": {1}, "second alone": {1}}
    # the last run to end restored the limits found before
    assert _blas_threads() == two_blas_threads


def test_a_run_drives_with_one_blas_thread(client, two_blas_threads):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    data = da.PartitionedData.from_arrays(X, np.sign(X[:, 0]), n_partitions=2, client=client)
    seen: list[set[int]] = []
    da.minimize(data, solver="lbfgs", max_updates=3, callback=lambda info: seen.append(
        _blas_threads()))
    assert seen and all(s == {1} for s in seen)
    assert _blas_threads() == two_blas_threads
    with pytest.raises(ZeroDivisionError):  # a failed run gives the limits back too
        da.minimize(data, solver="lbfgs", max_updates=3,
                    callback=lambda info: 1 / 0)
    assert _blas_threads() == two_blas_threads
    data.release()
