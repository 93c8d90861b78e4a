"""Tests for daskasync.data (PartitionedData) and daskasync.datasets, on a real cluster."""

from __future__ import annotations

import bz2
import gc
import gzip
import lzma
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sparse
from distributed import Client, LocalCluster
from sklearn.datasets import dump_svmlight_file

from daskasync.data import PartitionedData
from daskasync.datasets import (
    GEN_CHUNK,
    SYNTHETIC_KINDS,
    load_libsvm,
    make_epsilon_like,
    make_rcv1_like,
    synthetic_rows,
)

# Other processes on the machine may hold port 8787 (the scheduler's HTTP server default).
pytestmark = pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")

DATA_DIR = Path(__file__).parents[1] / ".." / "shared" / "data"
A9A = DATA_DIR / "a9a.xz"


# --------------------------------------------------------------------------- #
# fixtures / helpers
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def client() -> Any:
    # Not the default client: constructors must be given ``client=`` explicitly,
    # which also lets us test the ``client=None`` error path.
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as c,
    ):
        yield c


def n_scheduler_tasks(client: Client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


def wait_for_no_tasks(client: Client, timeout: float = 15.0) -> None:
    gc.collect()
    deadline = time.monotonic() + timeout
    while n_scheduler_tasks(client) != 0:
        if time.monotonic() > deadline:
            keys = client.run_on_scheduler(
                lambda dask_scheduler: {str(k): ts.state for k, ts in dask_scheduler.tasks.items()}
            )
            raise AssertionError(f"scheduler still holds tasks from earlier tests: {keys}")
        time.sleep(0.05)


def fetch_blocks(data: PartitionedData) -> list[tuple[Any, np.ndarray]]:
    return data.client.gather(data.parts)


def assert_canonical_csr(X: Any) -> None:
    assert isinstance(X, sp.csr_matrix)
    assert X.dtype == np.float64
    assert X.has_canonical_format
    Y = X.copy()
    Y.sum_duplicates()
    assert Y.nnz == X.nnz


@pytest.fixture
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((103, 7))
    X[X < 0.3] = 0.0  # ~60% zeros so sparse conversions are meaningful
    y = np.where(rng.random(103) < 0.5, -1.0, 1.0)
    return X, y


# --------------------------------------------------------------------------- #
# from_arrays
# --------------------------------------------------------------------------- #
def test_from_arrays_dense_roundtrip_and_layout(client: Client, xy: Any) -> None:
    X, y = xy
    # non-C order, a dtype that becomes float64 (float32 stays float32: test_float32.py)
    Xf = np.asfortranarray(X.astype(np.float16))
    with PartitionedData.from_arrays(Xf, y.tolist(), client=client, name="toy") as data:
        # default: 2 * (2 workers x 1 thread) partitions, np.array_split sizes
        assert data.n_partitions == 4
        expected = [len(b) for b in np.array_split(np.arange(103), 4)]
        assert data.rows_per_partition.tolist() == expected
        assert data.rows_per_partition.dtype == np.int64
        assert data.offsets.tolist() == [0, *np.cumsum(expected).tolist()]
        assert data.offsets.dtype == np.int64
        assert (data.n, data.d, data.nnz, data.is_sparse) == (103, 7, 103 * 7, False)
        assert data.name == "toy"
        assert "n=103" in repr(data) and "dense" in repr(data)

        Xg, yg = data.gather()
        np.testing.assert_array_equal(Xg, Xf.astype(np.float64))
        np.testing.assert_array_equal(yg, y)

        for (Xb, yb), a, b in zip(
            fetch_blocks(data), data.offsets[:-1], data.offsets[1:], strict=True
        ):
            assert isinstance(Xb, np.ndarray) and Xb.flags.c_contiguous
            assert Xb.dtype == np.float64 and yb.dtype == np.float64 and yb.ndim == 1
            np.testing.assert_array_equal(Xb, Xf[data.row_order[a:b]])

        # blocks are spread over both workers (round-robin scatter)
        locs = data.locations()
        assert sorted(locs) == [0, 1, 2, 3]
        assert all(len(w) >= 1 for w in locs.values())
        assert set().union(*locs.values()) == set(client.nthreads())


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(sp.csr_matrix, id="csr"),
        pytest.param(sp.csc_matrix, id="csc"),
        pytest.param(sp.coo_array, id="coo_array"),
        pytest.param(sparse.COO.from_numpy, id="sparse.COO"),
        pytest.param(lambda X: sparse.GCXS.from_numpy(X), id="sparse.GCXS"),
    ],
)
def test_from_arrays_sparse_roundtrip(client: Client, xy: Any, convert: Callable) -> None:
    X, y = xy
    Xs = convert(X)
    with PartitionedData.from_arrays(Xs, y, n_partitions=5, client=client) as data:
        assert data.is_sparse
        assert data.nnz == np.count_nonzero(X)
        assert data.rows_per_partition.tolist() == [21, 21, 21, 20, 20]
        Xg, yg = data.gather()
        assert_canonical_csr(Xg)
        np.testing.assert_array_equal(Xg.toarray(), X)
        np.testing.assert_array_equal(yg, y)
        for Xb, yb in fetch_blocks(data):
            assert_canonical_csr(Xb)
            assert yb.dtype == np.float64
        assert set().union(*data.locations().values()) == set(client.nthreads())


def test_from_arrays_does_not_mutate_noncanonical_input(client: Client) -> None:
    # duplicated, unsorted entries in a CSR input: blocks are canonical, input untouched
    indptr = np.array([0, 3, 4])
    indices = np.array([2, 0, 2, 1])
    values = np.array([1.0, 2.0, 3.0, 4.0])
    X = sp.csr_matrix((values, indices, indptr), shape=(2, 3))
    with PartitionedData.from_arrays(X, [1, -1], n_partitions=2, client=client) as data:
        Xg, _ = data.gather()
        assert_canonical_csr(Xg)
        np.testing.assert_array_equal(Xg.toarray(), [[2.0, 0.0, 4.0], [0.0, 4.0, 0.0]])
        assert data.nnz == 3
    np.testing.assert_array_equal(X.indices, indices)
    np.testing.assert_array_equal(X.data, values)


def test_from_arrays_dask_dense(client: Client, xy: Any) -> None:
    X, y = xy
    dX = da.from_array(X, chunks=(30, -1))
    # row chunks become the partitions; y as a pandas Series
    with PartitionedData.from_arrays(dX, pd.Series(y), client=client) as data:
        assert data.rows_per_partition.tolist() == [30, 30, 30, 13]
        assert not data.is_sparse and data.nnz == X.size
        Xg, yg = data.gather()
        np.testing.assert_array_equal(Xg, X)
        np.testing.assert_array_equal(yg, y)
        for Xb, _ in fetch_blocks(data):
            assert isinstance(Xb, np.ndarray) and Xb.flags.c_contiguous
        assert all(k.key.startswith("daskasync-data-") for k in data.parts)
    # explicit n_partitions re-chunks; dask y with different chunks
    dy = da.from_array(y, chunks=17)
    with PartitionedData.from_arrays(dX, dy, n_partitions=3, client=client) as data:
        assert data.rows_per_partition.tolist() == [35, 34, 34]
        Xg, yg = data.gather()
        np.testing.assert_array_equal(Xg, X)
        np.testing.assert_array_equal(yg, y)


def test_from_arrays_dask_sparse_blocks(client: Client, xy: Any) -> None:
    X, y = xy
    dX = da.from_array(X, chunks=(40, -1)).map_blocks(sparse.COO.from_numpy)
    with PartitionedData.from_arrays(dX, da.from_array(y, chunks=40), client=client) as data:
        assert data.is_sparse
        assert data.rows_per_partition.tolist() == [40, 40, 23]
        assert data.nnz == np.count_nonzero(X)
        for Xb, _ in fetch_blocks(data):
            assert_canonical_csr(Xb)
        Xg, yg = data.gather()
        np.testing.assert_array_equal(Xg.toarray(), X)
        np.testing.assert_array_equal(yg, y)


def test_from_arrays_dask_nonfinite_raises_from_task(client: Client, xy: Any) -> None:
    X, y = xy
    X = X.copy()
    X[77, 3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinite"):
        PartitionedData.from_arrays(da.from_array(X, chunks=(30, -1)), y, client=client)


def test_dask_y_with_numpy_x(client: Client, xy: Any) -> None:
    X, y = xy
    with PartitionedData.from_arrays(
        X, da.from_array(y, chunks=50), n_partitions=2, client=client
    ) as data:
        np.testing.assert_array_equal(data.gather()[1], y)


def test_client_none(client: Client, xy: Any) -> None:
    X, y = xy
    with client.as_current():
        with PartitionedData.from_arrays(X, y, n_partitions=2) as data:
            assert data.client is client
    try:
        Client.current(allow_global=True)
    except ValueError:
        with pytest.raises(ValueError, match="no distributed Client: pass client= or create one"):
            PartitionedData.from_arrays(X, y)
    else:  # pragma: no cover - another default client exists in this process
        pytest.skip("a default Client exists in this process")


def test_release_is_idempotent_and_frees_workers(client: Client, xy: Any) -> None:
    X, y = xy
    wait_for_no_tasks(client)
    data = PartitionedData.from_arrays(X, y, n_partitions=3, client=client)
    parts_keys = {f.key for f in data.parts}
    assert n_scheduler_tasks(client) == 3
    with data:
        pass
    assert data.released and data.parts == [] and "released" in repr(data)
    data.release()  # idempotent
    with pytest.raises(RuntimeError, match="released"):
        data.gather()
    assert data.n == 103 and data.n_partitions == 3  # metadata survives
    wait_for_no_tasks(client)
    assert not parts_keys & set(
        client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks))
    )


# --------------------------------------------------------------------------- #
# LIBSVM
# --------------------------------------------------------------------------- #
def test_load_libsvm_a9a() -> None:
    if not A9A.exists():
        pytest.skip(f"{A9A} not available")
    X, y = load_libsvm(A9A)
    assert X.shape == (32561, 123)
    assert X.nnz == 451592
    assert_canonical_csr(X)
    assert y.dtype == np.float64
    assert set(np.unique(y).tolist()) == {-1.0, 1.0}


def test_from_libsvm_a9a(client: Client) -> None:
    if not A9A.exists():
        pytest.skip(f"{A9A} not available")
    with PartitionedData.from_libsvm(A9A, n_partitions=5, client=client) as data:
        assert data.name == "a9a.xz"
        assert (data.n, data.d, data.nnz, data.n_partitions) == (32561, 123, 451592, 5)
        Xg, yg = data.gather()
        X, y = load_libsvm(A9A)
        assert (Xg != X).nnz == 0
        np.testing.assert_array_equal(yg, y)


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2", ".xz"])
def test_load_libsvm_compressed(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(1)
    X = sp.random(60, 15, density=0.3, format="csr", random_state=2)
    y = rng.choice([-1.0, 1.0], size=60)
    plain = tmp_path / "toy.svm"
    dump_svmlight_file(X, y, str(plain), zero_based=False)
    raw = plain.read_bytes()
    opener = {"": None, ".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix]
    path = tmp_path / f"toy.svm{suffix}"
    if opener is not None:
        path.write_bytes(opener(raw))
    Xl, yl = load_libsvm(path, n_features=15)
    assert_canonical_csr(Xl)
    assert Xl.shape == (60, 15)
    np.testing.assert_allclose(Xl.toarray(), X.toarray(), rtol=1e-15)
    np.testing.assert_array_equal(yl, y)
    X0, y0 = load_libsvm(plain, n_features=15)
    assert (Xl != X0).nnz == 0 and np.array_equal(yl, y0)


def test_load_libsvm_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.svm"
    with pytest.raises(FileNotFoundError, match="nope.svm"):
        load_libsvm(missing)
    bad = tmp_path / "bad.svm"
    bad.write_text("this is not libsvm\n")
    with pytest.raises(ValueError, match="bad.svm"):
        load_libsvm(bad)
    badxz = tmp_path / "bad.xz"
    badxz.write_bytes(b"not xz data at all")
    with pytest.raises(ValueError, match="bad.xz"):
        load_libsvm(badxz)
    empty = tmp_path / "empty.svm"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.svm"):
        load_libsvm(empty)


# --------------------------------------------------------------------------- #
# synthetic generators
# --------------------------------------------------------------------------- #
def test_synthetic_kinds() -> None:
    assert SYNTHETIC_KINDS == ("epsilon", "rcv1")


def test_epsilon_like_properties_and_determinism() -> None:
    X, y = make_epsilon_like(n=3000, d=30, seed=4)
    assert isinstance(X, np.ndarray) and X.flags.c_contiguous and X.dtype == np.float64
    assert X.shape == (3000, 30)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-12)
    assert set(np.unique(y).tolist()) == {-1.0, 1.0}
    assert 0.3 < np.mean(y == 1) < 0.7
    X2, y2 = make_epsilon_like(n=3000, d=30, seed=4)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = make_epsilon_like(n=3000, d=30, seed=5)
    assert not np.array_equal(X, X3)


def test_epsilon_like_decay_makes_a_power_law_spectrum() -> None:
    """``decay`` scales column k by (k + 1) ** (-decay / 2) before the rows are normalized:
    the feature variances fall as a power law and the covariance's condition number
    grows with decay, while rows keep unit norm and labels stay balanced."""
    n, d = 20_000, 50
    X0, _ = make_epsilon_like(n=n, d=d, seed=3)
    X1, y1 = make_epsilon_like(n=n, d=d, seed=3, decay=1.0)
    np.testing.assert_allclose(np.linalg.norm(X1, axis=1), 1.0, rtol=1e-12)
    assert 0.3 < np.mean(y1 == 1) < 0.7
    var0, var1 = X0.var(axis=0), X1.var(axis=0)
    assert var0.max() / var0.min() < 1.5  # isotropic
    ratio = var1[0] / var1[-1]  # expected (d / 1) ** 1.0 = 50
    assert 35 < ratio < 70, ratio
    slope = np.polyfit(np.log(np.arange(1, d + 1)), np.log(var1), 1)[0]
    assert -1.15 < slope < -0.85, slope
    cond = [np.linalg.cond(X.T @ X / n) for X in (X0, X1)]
    assert cond[1] > 20 * cond[0]
    # the same seed draws the same Gaussians: decay only rescales columns and renormalizes
    Xs = X0 * np.arange(1, d + 1) ** -0.5
    Xs /= np.linalg.norm(Xs, axis=1)[:, None]
    np.testing.assert_allclose(X1, Xs, rtol=1e-12)
    with pytest.raises(ValueError, match="decay: must be a number >= 0"):
        make_epsilon_like(n=10, d=3, decay=-1.0)
    with pytest.raises(TypeError, match="decay"):
        synthetic_rows("rcv1", 0, 10, 3, decay=1.0)


def test_rcv1_like_properties_and_determinism() -> None:
    X, y = make_rcv1_like(n=6000, d=200, density=0.05, seed=2)
    assert_canonical_csr(X)
    assert X.shape == (6000, 200)
    assert np.all(X.data > 0)
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0, rtol=1e-12)
    # about density * d = 10 draws per row (fewer stored entries after merging repeats)
    assert 5 <= X.nnz / X.shape[0] <= 10.5
    # power-law column frequencies
    freq = X.getnnz(axis=0)
    assert freq[:10].sum() > 10 * freq[-10:].sum()
    assert freq[0] > freq[50] > 0
    assert set(np.unique(y).tolist()) == {-1.0, 1.0}
    assert 0.3 < np.mean(y == 1) < 0.7
    X2, y2 = make_rcv1_like(n=6000, d=200, density=0.05, seed=2)
    assert (X != X2).nnz == 0 and np.array_equal(y, y2)
    X3, _ = make_rcv1_like(n=6000, d=200, density=0.05, seed=3)
    assert (X != X3).nnz > 0


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_synthetic_rows_blocks_match_whole(kind: str) -> None:
    n, d = GEN_CHUNK + 700, 12
    X, y = synthetic_rows(kind, 0, n, d, 7)
    cuts = [0, 5, GEN_CHUNK - 3, GEN_CHUNK + 2, n]
    blocks = [synthetic_rows(kind, a, b, d, 7) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    if kind == "rcv1":
        Xb = sp.vstack([b[0] for b in blocks], format="csr")
        assert (Xb != X).nnz == 0
    else:
        np.testing.assert_array_equal(np.vstack([b[0] for b in blocks]), X)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), y)
    # prefix of a longer data set is the shorter data set
    Xs, ys = synthetic_rows(kind, 0, 100, d, 7)
    np.testing.assert_array_equal(ys, y[:100])


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_partitioned_synthetic_independent_of_partitioning(client: Client, kind: str) -> None:
    n, d = GEN_CHUNK + 1500, 40
    kw = {"density": 0.1} if kind == "rcv1" else {}
    with (
        PartitionedData.synthetic(
            kind, n=n, d=d, n_partitions=3, seed=11, client=client, **kw
        ) as a,
        PartitionedData.synthetic(
            kind, n=n, d=d, n_partitions=7, seed=11, client=client, **kw
        ) as b,
    ):
        assert a.name == f"{kind}-like" and a.is_sparse == (kind == "rcv1")
        assert a.rows_per_partition.tolist() == [len(s) for s in np.array_split(np.arange(n), 3)]
        assert a.nnz == b.nnz
        assert all(f.key.startswith(f"daskasync-data-{kind}-") for f in a.parts)
        Xa, ya = a.gather()
        Xb, yb = b.gather()
        Xr, yr = synthetic_rows(kind, 0, n, d, 11, **kw)
        if kind == "rcv1":
            assert_canonical_csr(Xa)
            assert (Xa != Xb).nnz == 0 and (Xa != Xr).nnz == 0
            assert a.nnz == Xr.nnz
            for Xblk, _ in fetch_blocks(b):
                assert_canonical_csr(Xblk)
        else:
            np.testing.assert_array_equal(Xa, Xb)
            np.testing.assert_array_equal(Xa, Xr)
            assert a.nnz == n * d
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(ya, yr)
        # generated on the workers, spread over both of them
        assert set().union(*b.locations().values()) == set(client.nthreads())


def test_synthetic_default_matches_make_functions(client: Client) -> None:
    with PartitionedData.synthetic("epsilon", n=500, d=10, seed=3, client=client) as data:
        assert data.n_partitions == 4
        X, y = data.gather()
    Xe, ye = make_epsilon_like(n=500, d=10, seed=3)
    np.testing.assert_array_equal(X, Xe)
    np.testing.assert_array_equal(y, ye)


# --------------------------------------------------------------------------- #
# validation: clear errors, raised before anything reaches the cluster
# --------------------------------------------------------------------------- #
_X = np.arange(20.0).reshape(10, 2)
_Y = np.ones(10)


def _with_nan(X: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[3, 1] = np.nan
    return X


def _sparse_with_inf() -> sp.csr_matrix:
    S = sp.csr_matrix(_X)
    S.data[2] = np.inf
    return S


VALIDATION_CASES: list[Any] = [
    (
        "X 1-D",
        lambda c: PartitionedData.from_arrays(np.ones(5), np.ones(5), client=c),
        ValueError,
        "X must be 2-D",
    ),
    (
        "X 3-D",
        lambda c: PartitionedData.from_arrays(np.ones((2, 2, 2)), np.ones(2), client=c),
        ValueError,
        "X must be 2-D",
    ),
    (
        "X empty rows",
        lambda c: PartitionedData.from_arrays(np.ones((0, 3)), np.ones(0), client=c),
        ValueError,
        "X is empty",
    ),
    (
        "X empty cols",
        lambda c: PartitionedData.from_arrays(np.ones((4, 0)), np.ones(4), client=c),
        ValueError,
        "X is empty",
    ),
    (
        "X sparse empty",
        lambda c: PartitionedData.from_arrays(sp.csr_matrix((0, 3)), np.ones(0), client=c),
        ValueError,
        "X is empty",
    ),
    (
        "y length",
        lambda c: PartitionedData.from_arrays(_X, np.ones(9), client=c),
        ValueError,
        "y has 9 entries but X has 10 rows",
    ),
    (
        "y 2-D",
        lambda c: PartitionedData.from_arrays(_X, np.ones((10, 1)), client=c),
        ValueError,
        "y must be 1-D",
    ),
    (
        "X nan",
        lambda c: PartitionedData.from_arrays(_with_nan(_X), _Y, client=c),
        ValueError,
        "X contains NaN or infinite",
    ),
    (
        "X sparse inf",
        lambda c: PartitionedData.from_arrays(_sparse_with_inf(), _Y, client=c),
        ValueError,
        "X contains NaN or infinite",
    ),
    (
        "y inf",
        lambda c: PartitionedData.from_arrays(_X, np.r_[np.ones(9), np.inf], client=c),
        ValueError,
        "y contains NaN or infinite",
    ),
    (
        "X str",
        lambda c: PartitionedData.from_arrays(_X.astype(str), _Y, client=c),
        TypeError,
        "X must have a numeric",
    ),
    (
        "X object",
        lambda c: PartitionedData.from_arrays(_X.astype(object), _Y, client=c),
        TypeError,
        "X must have a numeric",
    ),
    (
        "X complex",
        lambda c: PartitionedData.from_arrays(_X.astype(complex), _Y, client=c),
        TypeError,
        "X must have a numeric",
    ),
    (
        "y str",
        lambda c: PartitionedData.from_arrays(_X, ["a"] * 10, client=c),
        TypeError,
        "y must have a numeric",
    ),
    (
        "n_partitions str",
        lambda c: PartitionedData.from_arrays(_X, _Y, n_partitions="2", client=c),
        TypeError,
        "n_partitions: must be an int >= 1 or None, got",
    ),
    (
        "n_partitions float",
        lambda c: PartitionedData.from_arrays(_X, _Y, n_partitions=2.0, client=c),
        TypeError,
        "n_partitions: must be an int >= 1 or None, got",
    ),
    (
        "n_partitions bool",
        lambda c: PartitionedData.from_arrays(_X, _Y, n_partitions=True, client=c),
        TypeError,
        "n_partitions: must be an int >= 1 or None, got",
    ),
    (
        "n_partitions zero",
        lambda c: PartitionedData.from_arrays(_X, _Y, n_partitions=0, client=c),
        ValueError,
        "n_partitions: must be an int >= 1 or None, got",
    ),
    (
        "n_partitions > n",
        lambda c: PartitionedData.from_arrays(_X, _Y, n_partitions=11, client=c),
        ValueError,
        "n_partitions=11 is larger than the number of rows",
    ),
    (
        "dask column chunks",
        lambda c: PartitionedData.from_arrays(da.from_array(_X, chunks=(5, 1)), _Y, client=c),
        ValueError,
        "X is chunked along columns",
    ),
    (
        "dask X 1-D",
        lambda c: PartitionedData.from_arrays(da.ones(10, chunks=5), _Y, client=c),
        ValueError,
        "X must be 2-D",
    ),
    (
        "dask y length",
        lambda c: PartitionedData.from_arrays(
            da.from_array(_X, chunks=(5, 2)), da.ones(9), client=c
        ),
        ValueError,
        "y has 9 entries",
    ),
    (
        "dask X dtype",
        lambda c: PartitionedData.from_arrays(
            da.from_array(_X.astype(str), chunks=(5, 2)), _Y, client=c
        ),
        TypeError,
        "X must have a numeric",
    ),
    (
        "dask n_partitions > n",
        lambda c: PartitionedData.from_arrays(
            da.from_array(_X, chunks=(5, 2)), _Y, n_partitions=12, client=c
        ),
        ValueError,
        "n_partitions=12 is larger than the number of rows",
    ),
    (
        "synthetic kind",
        lambda c: PartitionedData.synthetic("mnist", client=c),
        ValueError,
        "unknown synthetic kind 'mnist'; known kinds: epsilon, rcv1",
    ),
    (
        "synthetic n_partitions > n",
        lambda c: PartitionedData.synthetic("epsilon", n=5, d=2, n_partitions=6, client=c),
        ValueError,
        "n_partitions=6 is larger than the number of rows",
    ),
    (
        "synthetic n",
        lambda c: PartitionedData.synthetic("epsilon", n=0, client=c),
        ValueError,
        "n: must be an int >= 1, got 0",
    ),
    (
        "synthetic d",
        lambda c: PartitionedData.synthetic("rcv1", d=1.5, client=c),
        TypeError,
        "d: must be an int >= 1, got 1.5",
    ),
    (
        "synthetic kw",
        lambda c: PartitionedData.synthetic("epsilon", density=0.1, client=c),
        TypeError,
        "density",
    ),
    (
        "synthetic density",
        lambda c: PartitionedData.synthetic("rcv1", density=2.0, client=c),
        ValueError,
        "density: must be a number in (0, 1], got 2.0",
    ),
    (
        "libsvm missing",
        lambda c: PartitionedData.from_libsvm("/nonexistent/x.svm", client=c),
        FileNotFoundError,
        "/nonexistent/x.svm",
    ),
]


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [pytest.param(call, exc, match, id=name) for name, call, exc, match in VALIDATION_CASES],
)
def test_validation_errors_before_any_task(
    client: Client, call: Callable[[Client], Any], exc: type[Exception], match: str
) -> None:
    wait_for_no_tasks(client)
    with pytest.raises(exc, match=re.escape(match)):
        call(client)
    time.sleep(0.05)  # let any (wrongly) submitted message reach the scheduler
    assert n_scheduler_tasks(client) == 0


def test_synthetic_rows_validation() -> None:
    with pytest.raises(ValueError, match="known kinds: epsilon, rcv1"):
        synthetic_rows("nope", 0, 10, 3)
    with pytest.raises(ValueError, match="stop"):
        synthetic_rows("epsilon", 5, 2, 3)
    with pytest.raises(TypeError, match="alpha"):
        synthetic_rows("epsilon", 0, 2, 3, alpha=1.0)
    with pytest.raises(ValueError, match="flip"):
        make_epsilon_like(n=10, d=3, flip=0.9)
    X, y = synthetic_rows("rcv1", 3, 3, 5)
    assert X.shape == (0, 5) and y.shape == (0,)


def test_rows_are_shuffled_across_partitions_by_default(client):
    """A label-sorted file (like w8a) gives every partition both labels; the order is
    seeded, each block keeps its rows in file order, and gather() restores the order."""
    n = 400
    X = np.arange(n * 3, dtype=float).reshape(n, 3)
    y = np.r_[np.ones(100), -np.ones(300)]  # sorted by label
    with PartitionedData.from_arrays(X, y, n_partitions=4, client=client) as data:
        order = data.row_order
        assert sorted(order.tolist()) == list(range(n))
        for (Xb, yb), a, b in zip(
            fetch_blocks(data), data.offsets[:-1], data.offsets[1:], strict=True
        ):
            assert set(yb.tolist()) == {-1.0, 1.0}
            assert np.all(np.diff(order[a:b]) > 0)
            np.testing.assert_array_equal(Xb, X[order[a:b]])
        Xg, yg = data.gather()
        np.testing.assert_array_equal(Xg, X)
        np.testing.assert_array_equal(yg, y)
    with PartitionedData.from_arrays(X, y, n_partitions=4, client=client) as again:
        np.testing.assert_array_equal(again.row_order, order)  # seeded
    with PartitionedData.from_arrays(X, y, n_partitions=4, client=client,
                                     random_state=1) as other:
        assert not np.array_equal(other.row_order, order)
    with PartitionedData.from_arrays(X, y, n_partitions=4, client=client,
                                     shuffle=False) as plain:
        assert plain.row_order is None
        assert set(fetch_blocks(plain)[0][1].tolist()) == {1.0}


def test_shuffle_arguments_are_checked(client):
    X, y = np.ones((10, 2)), np.ones(10)
    with pytest.raises(TypeError, match="shuffle"):
        PartitionedData.from_arrays(X, y, client=client, shuffle="yes")
    with pytest.raises(TypeError, match="random_state"):
        PartitionedData.from_arrays(X, y, client=client, random_state=0.5)
    with pytest.raises(TypeError, match=r"^recoverable: must be a bool, got 1$"):
        PartitionedData.from_arrays(X, y, client=client, recoverable=1)
    with pytest.raises(TypeError, match=r"^client: must be a distributed.Client, got 'x'$"):
        PartitionedData.from_arrays(X, y, client="x")
    with pytest.raises(ValueError, match="shuffle=True is not supported for dask"):
        PartitionedData.from_arrays(da.ones((10, 2), chunks=5), y, client=client,
                                    shuffle=True)
