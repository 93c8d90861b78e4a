"""A SAGA task shipped its model on its block's columns only (a ColumnView) returns the
result it returns with the whole model, bit for bit: every loss, penalty, intercept,
sampled fraction, canonical or not. No cluster: the task kernel is called directly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_no_tasks
from distributed import Client
from test_reliability import At, Killer

import daskasync as da
from daskasync.kernels_saga import saga_sequential_kernel
from daskasync.views import ColumnView, block_columns, restrict, view_worthwhile

LOSSES = {"logistic": (0, 1), "squared": (1, 1), "multinomial3": (2, 3)}
PENALTIES = {"l2": (0.5, 0.0), "l1": (0.0, 0.05), "elasticnet": (0.5, 0.05)}


def _case(seed, loss_code, K, fit_intercept, *, m=400, d=20_000, density=0.0005):
    rng = np.random.default_rng(seed)
    X = sp.random(m, d, density=density, format="csr", random_state=rng)
    X.data = rng.standard_normal(X.nnz)
    y = (rng.choice([-1.0, 1.0], m) if loss_code == 0 else rng.standard_normal(m)
         if loss_code == 1 else rng.integers(0, K, m).astype(float))
    dim = d + fit_intercept
    shape = (2, dim) if K == 1 else (2, K, dim)
    model = rng.standard_normal(shape) * 0.05
    model[0][rng.random(shape[1:]) < 0.2] = 0.0
    return X, y, model


def _index(X, fit_intercept):
    cols = block_columns((X, None)).astype(np.int32)
    return np.append(cols, X.shape[1]).astype(np.int32) if fit_intercept else cols


def _same(a, b):
    assert type(a) is type(b)
    for name in a._fields:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray) or x is None:
            if x is None:
                assert y is None, name
            else:
                assert x.dtype == y.dtype and x.shape == y.shape, name
                np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x == y, name


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("fraction", [1.0, 0.3])
def test_a_view_of_the_blocks_columns_gives_the_same_result(loss, penalty, fit_intercept,
                                                            fraction):
    loss_code, K = LOSSES[loss]
    lam2, lam1 = PENALTIES[penalty]
    X, y, model = _case(7, loss_code, K, fit_intercept)
    B = max(1, round(fraction * X.shape[0]))
    old = np.random.default_rng(1).standard_normal((B,) if K == 1 else (B, K)) * 0.3
    args = dict(loss_code=loss_code, fraction=fraction, fit_intercept=fit_intercept, old=old,
                step=0.05, lam2=lam2, lam1=lam1, n=X.shape[0], partition=1, task_index=2,
                seed=5, sparse_result=True)
    whole = saga_sequential_kernel((X, y), model, **args)
    view = restrict(model, _index(X, fit_intercept))
    assert view.values.shape[-1] < model.shape[-1] // 4
    _same(saga_sequential_kernel((X, y), view, **args), whole)


def test_a_view_on_rows_out_of_canonical_order_and_through_resets():
    """Unsorted indices take the general pass; a large ``step * lam2`` forces the scale's
    resets, which flush only the view's columns."""
    X, y, model = _case(3, 0, 1, True)
    args = dict(loss_code=0, fraction=1.0, fit_intercept=True, old=np.zeros(X.shape[0]),
                step=0.5, lam2=1.5, lam1=0.0, n=X.shape[0], partition=0, task_index=0, seed=1,
                sparse_result=True)
    view = restrict(model, _index(X, True))
    _same(saga_sequential_kernel((X, y), view, **args),
          saga_sequential_kernel((X, y), model, **args))
    Xu = X.copy()
    for i in range(Xu.shape[0]):  # reverse each row's indices: same matrix, not canonical
        a, b = Xu.indptr[i], Xu.indptr[i + 1]
        Xu.indices[a:b] = Xu.indices[a:b][::-1].copy()
        Xu.data[a:b] = Xu.data[a:b][::-1].copy()
    Xu.has_sorted_indices = False
    assert not Xu.has_canonical_format
    args["step"], args["lam2"] = 0.05, 0.5
    _same(saga_sequential_kernel((Xu, y), view, **args),
          saga_sequential_kernel((Xu, y), model, **args))


def test_a_view_is_refused_where_the_whole_model_is_read():
    X, y, model = _case(3, 0, 1, False)
    view = restrict(model, _index(X, False))
    args = dict(loss_code=0, fraction=1.0, fit_intercept=False, old=np.zeros(X.shape[0]),
                step=0.05, lam2=0.5, lam1=0.0, n=X.shape[0], partition=0, task_index=0, seed=1)
    with pytest.raises(ValueError, match="ColumnView"):
        saga_sequential_kernel((X, y), view, **args)  # the dense result reads every column
    with pytest.raises(ValueError, match="ColumnView"):
        saga_sequential_kernel((X.toarray(), y), view, sparse_result=True, **args)


def test_when_a_view_is_worthwhile():
    assert view_worthwhile(250, 1000) and not view_worthwhile(251, 1000)
    assert not view_worthwhile(0, 1000)
    view = restrict(np.arange(12.0).reshape(2, 6), np.array([0, 5]))
    assert isinstance(view, ColumnView) and view.values.tolist() == [[0.0, 5.0], [6.0, 11.0]]


# -- on a cluster ------------------------------------------------------------------------

def _wide(seed=5):
    """Sparse rows whose blocks of 500 each hold about a tenth of the 50,000 columns."""
    return da.make_rcv1_like(n=2_000, d=50_000, density=0.0002, seed=seed)


def _round_robin(states, clock):
    return [clock % len(states)]


@pytest.mark.parametrize("loss, penalty, intercept", [
    ("logistic", "l2", True), ("squared", "elasticnet", False), ("multinomial", "l1", True),
])
def test_runs_with_views_equal_runs_with_whole_versions(client, loss, penalty, intercept):
    """``transport="auto"`` ships views on sparse, wide blocks; ``"scatter"`` whole
    versions. Synchronous SAGA and ASAGA in a fixed order give the same bits either way,
    and the run leaves neither versions nor views on the cluster."""
    X, y = _wide()
    if loss == "multinomial":
        y = (np.arange(len(y)) * 7 % 3).astype(float)
    elif loss == "squared":
        y = y + 0.1 * (np.arange(len(y)) % 3)
    data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client, shuffle=False)
    try:
        common = dict(loss=loss, penalty=penalty, lam=1e-3, fit_intercept=intercept,
                      batch_fraction=0.5, max_epochs=2, seed=3, record_every=1)
        for name, kw in {"saga": {}, "asaga": dict(barrier=_round_robin)}.items():
            auto = da.minimize(data, solver=name, transport="auto", **common, **kw)
            whole = da.minimize(data, solver=name, transport="scatter", **common, **kw)
            assert auto.settings["model_views"] == 4, name
            assert whole.settings["model_views"] == 0, name
            assert auto.updates == whole.updates > 0, name
            np.testing.assert_array_equal(auto.theta, whole.theta, err_msg=name)
            np.testing.assert_array_equal(auto.state.history.alpha, whole.state.history.alpha,
                                          err_msg=name)
        assert_no_tasks(client)
    finally:
        data.release()


def test_dense_or_narrow_blocks_keep_whole_versions(client):
    X, y = _wide()
    narrow = da.PartitionedData.from_arrays(X[:, :2_000].tocsr(), y, n_partitions=4,
                                            client=client)
    dense = da.PartitionedData.from_arrays(X[:, :300].toarray(), y, n_partitions=4,
                                           client=client)
    try:
        for data in (narrow, dense):
            res = da.minimize(data, solver="saga", lam=1e-3, batch_fraction=1.0, max_epochs=1)
            assert res.settings["model_views"] == 0
    finally:
        narrow.release()
        dense.release()


@pytest.mark.slow
def test_a_killed_worker_s_views_are_shipped_again(process_cluster, client_log):
    """Workers killed during a synchronous run with views: the lost blocks are re-created,
    the views the cancelled tasks needed are scattered again, and the run ends with the
    bits of the undisturbed run."""
    X, y = _wide()
    pc = process_cluster(3)
    with Client(pc.address) as client:
        data = da.PartitionedData.from_arrays(X, y, n_partitions=6)
        kw = dict(solver="saga", lam=1e-3, max_epochs=150, batch_fraction=1.0,
                  record_every=1, seed=3)
        calm = da.minimize(data, **kw)
        assert calm.settings["model_views"] == 6
        kill = Killer(pc, client, data)
        killer = At({4: "*", 12: "*"}, kill)
        hit = da.minimize(data, callback=killer, **kw)
        killer.join()
        assert len(set(kill.victims)) == 2 and len(kill.lost) >= 2
        assert hit.recovered["blocks"] == len(kill.lost) <= hit.recovered["tasks"]
        assert np.array_equal(hit.theta, calm.theta)
        assert hit.updates == calm.updates
        alarming = [ln for ln in client_log.lines if not ln.startswith("daskasync.")]
        assert not alarming, "\n".join(alarming)
        data.release()
        assert_no_tasks(client)
