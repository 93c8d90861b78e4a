"""Shared fixtures: real clusters (no mocks), and the LIBSVM files in ../shared/data."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

DATA_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def shared_data(name: str) -> Path:
    path = DATA_DIR / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture(scope="session")
def cluster():
    with LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    ) as c:
        yield c


@pytest.fixture
def client(cluster):
    with Client(cluster) as c:
        yield c
        assert_no_tasks(c)


def scheduler_keys(client: Client, prefix: str = "") -> list[str]:
    """Keys the scheduler holds now, optionally only those starting with ``prefix``."""

    def _keys(dask_scheduler, prefix=prefix):
        return [str(k) for k in dask_scheduler.tasks if str(k).startswith(prefix)]

    return client.run_on_scheduler(_keys)


RUN_PREFIXES = (
    "sgd-",
    "asgd-",
    "daskasync-model-",
    "daskasync-grad-",
    "daskasync-eval-",
    "daskasync-objective-",
    "test-",
)


def assert_no_tasks(client: Client, prefixes=RUN_PREFIXES,
                    timeout: float = 10.0) -> None:
    """The scheduler ends up holding no task of a run (futures released, tasks cancelled)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [k for k in scheduler_keys(client) if k.startswith(tuple(prefixes))]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"tasks left on the scheduler: {left[:10]}"
