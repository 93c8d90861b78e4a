"""TLS-secured clusters (what dask-cloudprovider sets up), clients without credentials,
and files that must never execute anything."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest
from distributed import Client
from distributed.security import Security
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

import daskasync

pytestmark = pytest.mark.slow


def _write_credentials(sec: Security, folder) -> dict[str, str]:
    paths = {}
    for name, pem in (("ca", sec.tls_ca_file), ("cert", sec.tls_client_cert),
                      ("key", sec.tls_client_key)):
        path = folder / f"{name}.pem"
        path.write_text(pem)
        paths[name] = str(path)
    return paths


@pytest.fixture
def tls_cluster(process_cluster, tmp_path):
    creds = _write_credentials(Security.temporary(), tmp_path)
    args = ["--tls-ca-file", creds["ca"], "--tls-cert", creds["cert"], "--tls-key", creds["key"]]
    security = Security(tls_ca_file=creds["ca"], tls_client_cert=creds["cert"],
                        tls_client_key=creds["key"], require_encryption=True)
    pc = process_cluster(2, extra=args, security=security)
    return pc.address, security


@pytest.fixture(scope="module")
def xy():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_everything_runs_on_a_tls_cluster(tls_cluster, xy, client):
    address, security = tls_cluster
    assert address.startswith("tls://")
    X, y = xy
    kw = dict(solver="saga", lam=1e-2, max_epochs=5, batch_fraction=1.0, seed=0)
    with Client(address, security=security) as tls_client:
        data = daskasync.PartitionedData.from_arrays(X, 2.0 * y - 1.0, n_partitions=4)
        secure = daskasync.minimize(data, **kw)
        asynchronous = daskasync.minimize(data, solver="asaga", lam=1e-2, max_epochs=5)
        data.release()
        clf = daskasync.LogisticRegression(client=tls_client, max_iter=5, random_state=0)
        clf.fit(X, y)
        assert clf.score(X, y) > 0.95
        assert asynchronous.objective < 0.2
    # the same run on the plain test cluster gives the same model
    plain_data = daskasync.PartitionedData.from_arrays(X, 2.0 * y - 1.0, n_partitions=4,
                                                       client=client)
    plain = daskasync.minimize(plain_data, **kw)
    plain_data.release()
    assert np.array_equal(secure.theta, plain.theta)


def _connect(address: str, security: Security | None = None) -> None:
    """Connect an asynchronous client and close it, in one event loop of this thread (a
    synchronous client starts a loop thread per attempt, which distributed gives 10 s to
    start: a loaded machine failed that once)."""
    async def main():
        client = Client(address, security=security, timeout="5s", asynchronous=True)
        try:
            await client
        finally:
            await client.close()  # also after a refusal, while its loop still runs

    asyncio.run(main())


def test_a_client_without_the_credentials_is_refused(tls_cluster, tmp_path):
    address, _ = tls_cluster
    with pytest.raises((OSError, TypeError)):  # no TLS context at all
        _connect(address)
    stranger = Security.temporary()  # a certificate from another authority
    with pytest.raises(OSError):
        _connect(address, stranger)
    with pytest.raises(OSError):  # plain TCP to the TLS port
        _connect(address.replace("tls://", "tcp://"))
    _connect(address, tls_cluster[1])  # the right credentials connect


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['DASKASYNC_MARKER']}",))


def test_a_pickle_planted_in_a_checkpoint_is_never_loaded(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("DASKASYNC_MARKER", str(marker))
    path = tmp_path / "state.npz"
    np.savez(path, theta=np.array([_Exploit()], dtype=object), updates=np.array(3))
    with pytest.raises(ValueError):
        daskasync.RunState.load(path)
    assert not marker.exists()


def test_a_data_file_is_parsed_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.svm"
    path.write_text(f"__import__('os').system('touch {marker}') 1:1\n+1 1:0.5\n")
    with pytest.raises(ValueError):
        daskasync.load_libsvm(path)
    assert not marker.exists()
