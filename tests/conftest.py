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


def _compile_kernels() -> None:
    """Compile daskasync's just-in-time kernels (or load them from numba's cache) once,
    before the test processes and the clusters' workers start: in a fresh checkout they
    would otherwise each compile them at the same time. Tiny inputs, every path the tests
    take: CSR blocks in float64, float32 and with int64 indices, a dense block, the three
    losses, with and without an intercept and an L1 part, whole models and column views,
    dense and compact results, and the driver's ways of adding them."""
    import numpy as np
    import scipy.sparse as sp

    from daskasync.kernels_saga import saga_sequential_kernel
    from daskasync.kernels_saga_apply import add_model_changes, saga_change
    from daskasync.kernels_saga_lazy import LazySagaResult, expand_saga_result
    from daskasync.views import restrict

    m, d, step, lam2 = 40, 200, 0.05, 0.1
    for dtype, itype in ((np.float64, np.int32), (np.float32, np.int32),
                         (np.float64, np.int64)):
        X = sp.random(m, d, density=0.05, format="csr", random_state=0, dtype=dtype)
        X.indices, X.indptr = X.indices.astype(itype), X.indptr.astype(itype)
        for loss_code, K in ((0, 1), (1, 1), (2, 3)):
            y = np.arange(m) % 2 * 2.0 - 1.0 if K == 1 else (np.arange(m) % K).astype(float)
            for fit_intercept in (False, True):
                dim = d + fit_intercept
                theta = np.full((dim,) if K == 1 else (K, dim), 0.01)
                stacked = np.stack([theta, theta])
                cols = np.unique(X.indices)
                if fit_intercept:
                    cols = np.append(cols, np.asarray(d, dtype=cols.dtype))
                for lam1 in (0.0, 0.01, 1.0):
                    kw = dict(loss_code=loss_code, fraction=1.0, fit_intercept=fit_intercept,
                              old=np.zeros((m,) if K == 1 else (m, K)), step=step, lam2=lam2,
                              lam1=lam1, n=m, partition=0, task_index=0, seed=0)
                    pen = dict(step=step, lam2=lam2, lam1=lam1, fit_intercept=fit_intercept)
                    # (block, model, compact results?): a view needs the compact result
                    runs = [((X, y), stacked, (False, True), True),
                            ((X, y), restrict(stacked, cols), (True,), True),
                            ((X, y), stacked, (False,), False),  # the eager reference
                            ((X.toarray(), y), stacked, (False,), True)]
                    changes = []
                    for block, model, forms, lazy in runs:
                        for compact in forms:
                            r = saga_sequential_kernel(block, model, sparse_result=compact,
                                                       lazy=lazy, **kw)
                            change = saga_change(r, theta, theta, **pen)
                            change.add_model(theta.copy(), 0.5)
                            change.add_smooth(theta.copy(), 0.5)
                            change.add_mean(theta.copy())
                            changes.append(change)
                            if isinstance(r, LazySagaResult):
                                expand_saga_result(r, theta, theta, **pen)
                    if lam1 == 0.0:
                        add_model_changes(theta.copy(), changes, 0.5)


def pytest_configure(config):
    # the controller (or a run without xdist), before it starts the test processes
    if not (hasattr(config, "workerinput") or config.option.help
            or config.option.collectonly):
        _compile_kernels()
