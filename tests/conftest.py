"""Shared fixtures: real clusters (no mocks), and the LIBSVM files in ../shared/data."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
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


@pytest.fixture(scope="module")
def client4():
    """A client on a LocalCluster of 4 single-thread worker processes (one per partition
    of the LIBSVM tests)."""
    with LocalCluster(n_workers=4, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cl, Client(cl) as c:
        yield c


@pytest.fixture
def client(cluster):
    with Client(cluster) as c:
        yield c
        assert_no_tasks(c)


def wait_gone(client: Client, address: str, timeout: float = 30.0) -> None:
    """Wait until the scheduler no longer lists the worker ``address`` (fails after
    ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while address in client.nthreads():
        assert time.monotonic() < deadline, f"the scheduler still lists {address}"
        time.sleep(0.05)


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


BIN = Path(sys.executable).parent


class ProcessCluster:
    """A `dask scheduler` and `dask worker` subprocesses on 127.0.0.1 (workers without a
    nanny unless asked, so a killed worker stays dead)."""

    def __init__(self, log_dir: Path, *, extra: Sequence[str] = ()) -> None:
        self.log_dir = log_dir
        self.extra = list(extra)  # e.g. TLS options for scheduler and workers
        self.protocol = "tls" if any(a.startswith("--tls") for a in self.extra) else "tcp"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # the scheduler picks its own port and writes its address to a file: a port chosen
        # here first could be taken by another process before the scheduler binds it
        info = log_dir / f"scheduler-{uuid.uuid4().hex}.json"
        self.scheduler = self._spawn(
            "scheduler.log",
            ["scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
             str(info), "--dashboard-address", ":0", "--protocol", self.protocol,
             *self.extra],
        )
        self.workers: dict[str, subprocess.Popen] = {}
        self.address = self._wait_for_address(info)

    def _wait_for_address(self, info: Path, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return json.loads(info.read_text())["address"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                pass
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                log = (self.log_dir / "scheduler.log").read_text()[-3000:]
                raise RuntimeError(f"the scheduler did not start:\n{log}")
            time.sleep(0.05)

    def _spawn(self, log: str, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            [str(BIN / "dask"), *args], stdout=open(self.log_dir / log, "w"),
            stderr=subprocess.STDOUT, env=self.env,
        )

    def add_worker(self, name: str, *, nthreads: int = 1, nanny: bool = False) -> None:
        self.workers[name] = self._spawn(
            f"{name}.log",
            ["worker", self.address, "--nthreads", str(nthreads), "--host", "127.0.0.1",
             "--no-dashboard", "--name", name, "--nanny" if nanny else "--no-nanny",
             *self.extra],
        )

    def kill(self, name: str) -> None:
        """SIGKILL a worker process."""
        self.workers[name].send_signal(signal.SIGKILL)
        self.workers[name].wait(timeout=30)

    def close(self) -> None:
        """Workers first, then the scheduler (a worker whose scheduler vanished under it
        can sit in its reconnect loop for 20 s); SIGKILL whatever has not exited in 5 s."""
        for group in (list(self.workers.values()), [self.scheduler]):
            for p in group:
                if p.poll() is None:
                    p.terminate()
            for p in group:
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=30)


@pytest.fixture
def process_cluster(tmp_path):
    """Factory: ``process_cluster(n_workers)`` starts a fresh scheduler and workers named
    ``w0, w1, ...`` and waits for them; everything is stopped after the test."""
    made: list[ProcessCluster] = []

    def make(n_workers: int = 2, *, extra: Sequence[str] = (), security=None) -> ProcessCluster:
        pc = ProcessCluster(tmp_path, extra=extra)
        made.append(pc)
        for i in range(n_workers):
            pc.add_worker(f"w{i}")
        with Client(pc.address, timeout="30s", security=security) as c:
            c.wait_for_workers(n_workers, timeout=60)
        return pc

    yield make
    for pc in made:
        pc.close()


class Records(logging.Handler):
    """The client's log records at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} - {record.levelname} - {record.getMessage()}")


@pytest.fixture
def client_log():
    """Records of the client's loggers: the root's, and those of every logger that does
    not propagate to it (distributed configures ``distributed`` and ``distributed.client``,
    among others, with their own handlers and ``propagate=False``)."""
    handler = Records()
    named = [logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict)]
    loggers = [logging.getLogger(), *(lg for lg in named
                                      if isinstance(lg, logging.Logger) and not lg.propagate)]
    for log in loggers:
        log.addHandler(handler)
    yield handler
    for log in loggers:
        log.removeHandler(handler)


def pytest_collection_modifyitems(config, items):
    """The tests marked ``slow`` first (stable order otherwise): with two test processes
    (pytest-xdist), the suite ends when its last long test does, so the long ones start
    first, dealt to both processes, and the short ones fill in around them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
