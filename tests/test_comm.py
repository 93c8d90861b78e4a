"""Scattered data lands aligned on the workers (:class:`daskasync._comm.Landing`), on a
real cluster: a model version, copies of it, and the CSR blocks of driver-side data.

This relies on how distributed frames a message (its first out-of-band buffer shares the
header's allocation): the test fails loudly if that changes so that the wrapper no longer
keeps every array aligned."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from daskasync import PartitionedData
from daskasync._comm import scatter_retrying


def _alignment(value):
    """``(aligned, address mod 8)`` of every array in a model or a block."""
    if isinstance(value, tuple):
        return [a for v in value for a in _alignment(v)]
    if sp.issparse(value):
        return _alignment((value.data, value.indices, value.indptr))
    return [(bool(value.flags.aligned), value.ctypes.data % 8)]


def test_a_scattered_model_version_arrives_aligned(client):
    workers = sorted(client.nthreads())
    for n in (1_000, 250_001):  # small (read with the header) and large
        model = np.arange(2.0 * n).reshape(2, 1, n)
        [one] = client.sync(scatter_retrying, client, [model], workers=workers[:1])
        [copies] = client.sync(scatter_retrying, client, [model], keys=[f"test-land-{n}"],
                               workers=workers, broadcast=True)
        for fut in (one, copies):
            for w in client.who_has([fut])[fut.key]:
                got = client.submit(_alignment, fut, workers=[w], pure=False).result()
                assert got == [(True, 0)], (n, w, got)
        assert np.array_equal(client.submit(np.copy, one, pure=False).result(), model)
        del one, copies


def test_the_blocks_of_driver_side_sparse_data_arrive_aligned(client):
    rng = np.random.default_rng(0)
    X = sp.random(4_001, 3_000, density=0.01, format="csr", random_state=rng)
    X.indices = X.indices.astype(np.int32)  # int32 indices are the ones that landed at odd offsets
    y = np.sign(rng.normal(size=4_001))
    data = PartitionedData.from_arrays(X, y, n_partitions=3, client=client)
    try:
        for part in data.parts:
            got = client.submit(_alignment, part, pure=False).result()
            assert len(got) == 4 and all(ok and offset == 0 for ok, offset in got), got
        X2, y2 = data.gather()
        assert np.isclose(X2.sum(), X.sum()) and np.isclose(y2.sum(), y.sum())
    finally:
        data.release()


def test_workers_in_the_clients_process_get_the_objects_themselves():
    """An in-process cluster hands scattered objects over without serializing them: they
    must not stay wrapped."""
    from distributed import Client, LocalCluster

    with LocalCluster(processes=False, n_workers=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        model = np.arange(6.0)
        [fut] = client.sync(scatter_retrying, client, [model])
        assert type(client.submit(lambda x: x, fut).result()) is np.ndarray
        X = sp.random(40, 30, density=0.1, format="csr", random_state=0)
        data = PartitionedData.from_arrays(X, np.ones(40), n_partitions=2, client=client)
        assert sp.issparse(data.gather()[0])
        data.release()
        del fut
