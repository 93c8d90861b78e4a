"""Placing data while workers die or restart: blocks go to the workers running at each
attempt, a closed client or an empty cluster is a clear error (real clusters, no mocks)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import assert_no_tasks, wait_gone
from distributed import Client, LocalCluster

import daskasync
from daskasync.data import placement
from daskasync.data.placement import PlacementError, aplace, round_robin

pytestmark = pytest.mark.slow


class Retries(logging.Handler):
    """Counts the groups of blocks :func:`aplace` had to place again."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def retries():
    handler = Retries()
    log = logging.getLogger("daskasync.data.placement")
    old = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    yield handler
    log.removeHandler(handler)
    log.setLevel(old)


def test_a_closed_client_is_refused_before_anything_is_sent(cluster):
    client = Client(cluster)
    client.close()
    X, y = np.eye(4), np.ones(4)
    with pytest.raises(ValueError, match="client"):
        daskasync.PartitionedData.from_arrays(X, y, client=client)
    with pytest.raises(ValueError, match="client"):
        daskasync.PartitionedData.synthetic(n=10, d=2, client=client)


def test_blocks_sent_to_a_departed_worker_are_placed_on_the_live_ones(process_cluster,
                                                                      retries):
    """A view of the workers taken before one died (what the issue's fit saw): its group
    is refused by the scheduler (a KeyError naming the worker) and placed again on the
    workers running at the next attempt."""
    pc = process_cluster(3)
    with Client(pc.address) as client:
        dead = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
                    if w["name"] == "w0")
        stale = client.nthreads()
        pc.kill("w0")
        wait_gone(client, dead)
        views: list[set[str]] = []

        def choose(indices, ncores):
            views.append(set(ncores))
            return round_robin(indices, stale if len(views) == 1 else ncores)

        blocks = [np.full((3, 2), float(i)) for i in range(6)]
        placed = client.sync(aplace, client, range(6), blocks.__getitem__, choose)
        assert len(views) == 2 and dead not in views[1]
        assert any(dead in m for m in retries.messages), retries.messages
        assert sorted(placed) == list(range(6))
        got = client.gather([placed[i] for i in range(6)])
        assert all(np.array_equal(g, b) for g, b in zip(got, blocks, strict=True))
        holders = client.who_has([placed[i] for i in range(6)])
        assert dead not in {w for hs in holders.values() for w in hs}
        for f in placed.values():
            f.release()
        assert_no_tasks(client, prefixes=("ndarray-",))


def test_no_worker_left_is_a_clear_error(process_cluster, monkeypatch):
    monkeypatch.setattr(placement, "BACKOFF", 0.02)
    pc = process_cluster(1)
    with Client(pc.address) as client:
        X = np.arange(40.0).reshape(20, 2)
        data = daskasync.PartitionedData.from_arrays(X, np.ones(20), n_partitions=2)
        pc.kill("w0")
        deadline = time.monotonic() + 30
        # the scheduler drops the worker, then tells the client its blocks are lost
        while client.nthreads() or not all(f.status in ("cancelled", "lost") for f in data.parts):
            assert time.monotonic() < deadline, "the client was not told the blocks are lost"
            time.sleep(0.05)
        with pytest.raises(RuntimeError, match="no worker is running"):
            data.recover()
        with pytest.raises(PlacementError, match="no worker is running"):
            client.sync(aplace, client, [0], lambda i: X, round_robin, attempts=2)
        with pytest.raises(ValueError, match="no workers"):
            daskasync.PartitionedData.from_arrays(X, np.ones(20), n_partitions=2)
        data.release()


def _worker_pids(client: Client) -> dict[str, int]:
    return client.run(os.getpid)


def _wait_noticed(data, timeout: float = 30.0) -> None:
    """Until every block no worker holds is seen as lost by the client."""
    deadline = time.monotonic() + timeout
    while True:
        unheld = {i for i, hs in data.locations().items() if not hs}
        if unheld <= set(data.lost()):
            return
        assert time.monotonic() < deadline, (unheld, data.lost())
        time.sleep(0.05)


def _wait_for_restarts(client: Client) -> None:
    """Until the nannies have restarted the workers killed so far. A nanny that has not
    brought its worker back within 20 s (distributed's business: seen in about one run in
    ten, and in two clean-clone runs in a row on a slow day, each costing the whole wait)
    is left alone: the test goes on with the others, as long as two remain to kill one
    of."""
    try:
        client.wait_for_workers(4, timeout=20)
    except TimeoutError:
        print(f"going on with {len(client.nthreads())} workers: a nanny did not restart its own")
        client.wait_for_workers(2, timeout=240)


@pytest.mark.parametrize("when", ["from_arrays", "fit"])
def test_fits_survive_a_worker_killed_and_restarted_at_any_moment(when, retries):
    """The issue's recipe, repeated so that the race is hit: SIGKILL one worker of a
    4-worker LocalCluster (its nanny restarts it) at once, or a little later from another
    thread, while ``from_arrays`` places the data or ``fit`` runs. Every placement and
    every fit finishes; none ends with the scheduler's KeyError or a CommClosedError."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40_000, 40))
    y = (X @ rng.standard_normal(40) > 0).astype(int)
    delays = [0.0, 0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2]
    with LocalCluster(n_workers=4, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cluster, \
            Client(cluster) as client:
        reference = None
        for k, delay in enumerate(delays):
            _wait_for_restarts(client)
            pids = sorted(_worker_pids(client).items())
            address, victim = pids[k % len(pids)]
            killer = threading.Timer(delay, os.kill, args=(victim, signal.SIGKILL))
            killer.start()
            if when == "from_arrays":
                data = daskasync.PartitionedData.from_arrays(X, y, n_partitions=8,
                                                             client=client)
                killer.join()
                wait_gone(client, address)
                _wait_noticed(data)
                data.recover()  # blocks lost with the victim after placement come back
                Xg, yg = data.gather()
                assert np.array_equal(Xg, X) and np.array_equal(yg, y)
                data.release()
            else:
                clf = daskasync.LogisticRegression(solver="lbfgs", client=client,
                                                   n_partitions=8, max_iter=30,
                                                   random_state=0)
                clf.fit(X, y)
                killer.join()
                if reference is None:
                    reference = clf.coef_.copy()
                # synchronous L-BFGS: the same iterates whatever was lost and re-created
                # (to rounding: fits on a changing cluster differ in the last bits)
                np.testing.assert_allclose(clf.coef_, reference, rtol=1e-9, atol=1e-12)
        print(f"{len(retries.messages)} group(s) placed again:", *retries.messages, sep="\n")
        if when == "from_arrays":  # the kill lands during placement in most rounds
            assert retries.messages
