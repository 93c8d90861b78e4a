"""The driver runs with one BLAS thread while a run is active, and gives the limits back
after, also when runs overlap in several threads."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import daskasync as da


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


_OVERLAP = """
import threading
import numpy
from threadpoolctl import threadpool_info
from daskasync._blas import one_blas_thread

def blas():
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

before = blas()
first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
seen = {}

def first():
    with one_blas_thread():
        first_in.set()
        second_in.wait(10)
        seen["both"] = blas()
    first_out.set()

def second():
    first_in.wait(10)
    with one_blas_thread():
        second_in.set()
        first_out.wait(10)
        seen["second alone"] = blas()  # the first ended: still limited

threads = [threading.Thread(target=first), threading.Thread(target=second)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert before != {1}, before
assert seen == {"both": {1}, "second alone": {1}}, seen
assert blas() == before, (blas(), before)  # the last to end restored the limits
print("ok")
"""


def test_limit_applies_inside_and_is_restored_after_overlapping_runs(two_blas_threads):
    """Two runs in two threads overlapping. In a fresh process: OpenBLAS ignores limits
    set from one thread once another thread of the process has set one (as earlier tests
    in this process have)."""
    out = subprocess.run([sys.executable, "-c", _OVERLAP], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


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
