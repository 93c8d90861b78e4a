"""Clients for the command line and the benchmarks: a client on an existing scheduler, or on a
cluster that the context starts and closes.

:func:`cluster_client` is what ``daskasync demo``, ``daskasync bench`` and the
``python -m daskasync.bench.*`` scripts connect with (``--scheduler``, or a LocalCluster);
:func:`subprocess_client` runs the scheduler and the workers in their own processes, as on
a real cluster (the soak and scaling measurements, where the driver's own memory and CPU are
what is measured).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["cluster_client", "subprocess_client"]


@contextlib.contextmanager
def cluster_client(
    scheduler: str | None, workers: int, threads: int, *, timeout: str = "20s",
    security: object | None = None, dashboard_address: str | None = None,
    direct: bool = False,
) -> Iterator[object]:
    """A client on ``scheduler``, or on a LocalCluster of ``workers`` processes that this
    context starts and closes, serving its dashboard on ``dashboard_address`` (``":8787"``;
    default none). An unreachable address raises ``ValueError`` naming it. ``direct``: the
    client sends and fetches data to and from the workers itself (distributed's
    ``direct_to_workers``), not through the scheduler: one hop less for every model
    version and result, where the workers are reachable from the driver."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout, security=security,
                            direct_to_workers=direct)
        except OSError as err:
            raise ValueError(
                f"scheduler: cannot connect to {scheduler!r} within {timeout} ({err}); is "
                "`dask scheduler` running there, and does it need TLS credentials?"
            ) from err
        with client:
            yield client
        return
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        dashboard_address=dashboard_address,
        host="127.0.0.1",
    ) as cluster, Client(cluster, direct_to_workers=direct) as client:
        yield client


@contextlib.contextmanager
def subprocess_client(workers: int, threads: int) -> Iterator[Any]:
    """A client on a ``SubprocessCluster`` of ``workers`` processes (scheduler in its own
    process too) that this context starts, waits for and closes."""
    from distributed import Client, SubprocessCluster

    with SubprocessCluster(host="127.0.0.1", n_workers=workers, threads_per_worker=threads,
                           dashboard_address=":0") as cluster, Client(cluster) as client:
        client.wait_for_workers(workers, timeout=120)
        yield client
