"""LIBSVM shards read on the workers: what they load, the errors that name the file (before
any task reaches the cluster when the driver can tell), float32 kept on the workers, and a
block lost with its worker recomputed from its file."""

from __future__ import annotations

import gzip
import os
import re

import numpy as np
import pytest
import scipy.sparse as sp
from distributed import Client
from sklearn.datasets import dump_svmlight_file

import daskasync as da
from daskasync.data.shards import expand_paths


def _held(paths):
    """What the files hold, read on the driver (dump_svmlight_file rounds the values)."""
    from sklearn.datasets import load_svmlight_files

    parts = load_svmlight_files([str(p) for p in paths], zero_based=False)
    return sp.vstack(parts[0::2], format="csr"), np.concatenate(parts[1::2])


def _write(folder, n_files=4, rows=30, d=12, seed=0, gz=(1,)):
    rng = np.random.default_rng(seed)
    Xs, ys, paths = [], [], []
    for i in range(n_files):
        X = sp.random(rows, d, density=0.3, random_state=seed + i, format="csr")
        X = sp.hstack([X[:, :-1], sp.csr_matrix(([1.0], ([0], [0])), shape=(rows, 1))],
                      format="csr")  # every file reaches column d
        y = rng.choice([-1.0, 1.0], size=rows)
        path = os.path.join(folder, f"part-{i:02d}.svm" + (".gz" if i in gz else ""))
        if path.endswith(".gz"):
            with gzip.open(path, "wb") as fh:
                dump_svmlight_file(X, y, fh, zero_based=False)
        else:
            dump_svmlight_file(X, y, path, zero_based=False)
        Xs.append(X)
        ys.append(y)
        paths.append(path)
    return sp.vstack(Xs, format="csr"), np.concatenate(ys), paths


def _transitions(client):
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)


def test_shards_load_on_the_workers_as_the_files_hold(client, tmp_path):
    _, _, paths = _write(tmp_path)
    X, y = _held(paths)
    data = da.PartitionedData.from_libsvm(str(tmp_path / "part-*"))
    assert (data.n, data.d, data.n_partitions, data.nnz) == (120, 12, 4, X.nnz)
    assert data.rows_per_partition.tolist() == [30, 30, 30, 30]
    Xg, yg = data.gather()
    assert (Xg != X).nnz == 0 and np.array_equal(yg, y)
    listed = da.PartitionedData.from_libsvm(paths[:2] + ["file://" + paths[2]],
                                            n_partitions=6, n_features=20)
    assert (listed.n, listed.d, listed.n_partitions) == (90, 20, 6)
    Xl, _ = listed.gather()
    assert (Xl[:, :12] != X[:90]).nnz == 0 and Xl[:, 12:].nnz == 0
    data.release()
    listed.release()


def test_float32_shards_stay_float32_and_fit_like_float64(client, tmp_path):
    _write(tmp_path, n_files=2, rows=200, d=8)
    pattern = str(tmp_path / "part-*")
    single = da.PartitionedData.from_libsvm(pattern, dtype=np.float32)
    double = da.PartitionedData.from_libsvm(pattern)
    dtypes = client.gather([client.submit(lambda b: str(b[0].dtype), f) for f in single.parts])
    assert dtypes == ["float32", "float32"]
    kw = dict(solver="lbfgs", max_epochs=30, lam=1e-2)
    r32, r64 = da.minimize(single, **kw), da.minimize(double, **kw)
    assert r32.coef.dtype == np.float64
    np.testing.assert_allclose(r32.coef, r64.coef, rtol=1e-5, atol=1e-6)
    single.release()
    double.release()


@pytest.mark.parametrize("bad, exc, named", [
    ("missing", FileNotFoundError, "part-99.svm"),
    ("no-match", ValueError, "nothing-*.svm"),
    ("garbage", ValueError, "part-00.svm"),
    ("letters", ValueError, "part-00.svm"),
    ("too-wide", ValueError, "part-0"),
])
def test_a_bad_shard_is_named(client, tmp_path, bad, exc, named):
    _, _, paths = _write(tmp_path, n_files=2, gz=())
    kw = {}
    if bad == "missing":
        paths = paths + [str(tmp_path / "part-99.svm")]
    elif bad == "no-match":
        paths = str(tmp_path / "nothing-*.svm")
    elif bad == "garbage":
        (tmp_path / "part-00.svm").write_bytes(b"\x00\xff not libsvm \x01\n")
    elif bad == "letters":
        (tmp_path / "part-00.svm").write_text("1 3:abc 4:1.0\n")
    else:
        kw["n_features"] = 5
    before = _transitions(client)
    with pytest.raises(exc, match=re.escape(named)):
        da.PartitionedData.from_libsvm(paths, **kw)
    if bad in ("missing", "no-match"):
        assert _transitions(client) == before  # refused on the driver, nothing submitted
    from conftest import assert_no_tasks

    assert_no_tasks(client, prefixes=("daskasync-",))


def test_expand_paths_refuses_what_is_not_a_path(tmp_path):
    with pytest.raises(TypeError, match="paths"):
        expand_paths([3])
    with pytest.raises(ValueError, match="paths"):
        expand_paths([])
    with pytest.raises(ValueError, match="shuffle"):
        da.PartitionedData.from_libsvm([str(tmp_path / "x")], shuffle=True)
    with pytest.raises(ValueError, match="dtype"):
        da.PartitionedData.from_libsvm(str(tmp_path / "x"), dtype=np.int32)


def test_a_block_lost_with_its_worker_is_read_again_from_its_file(process_cluster, tmp_path):
    X, y = _held(_write(tmp_path, n_files=4, rows=50)[2])
    pc = process_cluster(2)
    with Client(pc.address) as c:
        data = da.PartitionedData.from_libsvm(str(tmp_path / "part-*"), client=c)
        victim = data.locations()[0][0]
        names = {a: w["name"] for a, w in c.scheduler_info(n_workers=-1)["workers"].items()}
        pc.kill(names[victim])
        pc.add_worker("w9")
        c.wait_for_workers(2, timeout=60)
        assert data.lost() == []  # shards keep their lineage: nothing is lost for good
        Xg, yg = data.gather()  # the killed worker's blocks are read again from the files
        assert (Xg != X).nnz == 0 and np.array_equal(yg, y)
        res = da.minimize(data, solver="lbfgs", max_epochs=5)
        assert np.isfinite(res.objective)
        data.release()


def test_estimators_fit_data_on_the_cluster_and_files(client, tmp_path):
    _, _, paths = _write(tmp_path, n_files=3, rows=80, d=10)
    X, y = _held(paths)
    y37 = np.where(y > 0, 7.0, 3.0)  # any class labels: encoded on the workers
    arrays = da.LogisticRegression(solver="lbfgs", max_iter=30, tol=None, client=client)
    arrays.fit(X, y)
    on_files = da.LogisticRegression(solver="lbfgs", max_iter=30, tol=None, client=client)
    on_files.fit(str(tmp_path / "part-*"))
    np.testing.assert_allclose(on_files.coef_, arrays.coef_, rtol=1e-5, atol=1e-6)
    assert on_files.classes_.tolist() == [-1.0, 1.0] and on_files.n_features_in_ == 10
    data = da.PartitionedData.from_libsvm(str(tmp_path / "part-*"), client=client)
    assert on_files.score(data) == pytest.approx(arrays.score(X, y))
    np.testing.assert_allclose(on_files.decision_function(data), arrays.decision_function(X),
                               rtol=1e-5, atol=1e-6)
    named = da.PartitionedData.from_arrays(X, y37, n_partitions=3, client=client)
    clf = da.LogisticRegression(solver="lbfgs", max_iter=30, tol=None, client=client)
    assert clf.fit(named).classes_.tolist() == [3.0, 7.0]
    np.testing.assert_allclose(clf.coef_, arrays.coef_, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="y: give y=None"):
        clf.fit(data, y)
    reg = da.LinearRegression(solver="lbfgs", max_iter=30, tol=None, client=client).fit(data)
    assert reg.score(data) == pytest.approx(
        da.LinearRegression(solver="lbfgs", max_iter=30, tol=None, client=client)
        .fit(X, y).score(X, y), rel=1e-6)
    data.release()
    named.release()
