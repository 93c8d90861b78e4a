"""The sparse result of a sequential SAGA task expands to the dense result, bit for bit.

No cluster: the task kernel is called directly on random CSR blocks, once with the dense
result and once with ``sparse_result=True``, from the same model and ``alpha_bar``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from daskasync.kernels_saga import saga_sequential_kernel
from daskasync.kernels_saga_apply import (
    DenseSagaChange,
    SagaChange,
    add_model_changes,
    saga_change,
)
from daskasync.kernels_saga_lazy import LazySagaResult, _segments, expand_saga_result
from daskasync.tasks import sample_rows

LOSSES = {"logistic": (0, 1), "squared": (1, 1), "multinomial3": (2, 3)}
PENALTIES = {"none": (0.0, 0.0), "l2": (0.5, 0.0), "l1": (0.0, 0.05), "elasticnet": (0.5, 0.05)}
# (rows in the block, d, density, sampled fraction): some columns touched, many not
SHAPES = {"d3000": (600, 3_000, 0.004, 0.9), "d50000": (300, 50_000, 0.0005, 0.5)}
STEP = 0.05


def _block(seed, m, d, density, loss_code, K):
    rng = np.random.default_rng(seed)
    X = sp.random(m, d, density=density, format="csr", random_state=rng)
    X.data = rng.standard_normal(X.nnz)
    if loss_code == 0:
        y = rng.choice([-1.0, 1.0], m)
    elif loss_code == 1:
        y = rng.standard_normal(m)
    else:
        y = rng.integers(0, K, m).astype(float)
    return X, y


def _start(seed, K, dim, B, *, big_mean=False):
    """Model (some exact zeros), alpha_bar (|M_j| below and above lam1) and old scalars."""
    rng = np.random.default_rng(seed + 100)
    shape = (dim,) if K == 1 else (K, dim)
    theta = rng.standard_normal(shape) * (1.0 if big_mean else 0.05)
    theta[rng.random(shape) < 0.2] = 0.0
    mean = rng.standard_normal(shape) * (0.5 if big_mean else 0.1)
    old = rng.standard_normal((B,) if K == 1 else (B, K)) * 0.3
    return theta, mean, old


def _run(X, y, theta, mean, old, *, loss_code, fraction, fit_intercept, lam2, lam1, **kw):
    """The task's dense result and its sparse result."""
    args = dict(loss_code=loss_code, fraction=fraction, fit_intercept=fit_intercept, old=old,
                step=STEP, lam2=lam2, lam1=lam1, n=X.shape[0], partition=1, task_index=2,
                seed=5, **kw)
    dense = saga_sequential_kernel((X, y), theta, mean=mean, **args)
    compact = saga_sequential_kernel((X, y), theta, mean=mean, sparse_result=True, **args)
    return dense, compact


def _assert_expands_exactly(dense, compact, theta, mean, *, fit_intercept, lam2, lam1):
    assert isinstance(compact, LazySagaResult)
    expanded = expand_saga_result(compact, theta, mean, step=STEP, lam2=lam2, lam1=lam1,
                                  fit_intercept=fit_intercept)
    for name, got, want in zip(("d_theta", "d_mean", "smooth"), expanded,
                               (dense[0], dense[1], dense[4]), strict=True):
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    np.testing.assert_array_equal(compact.new, dense[2])
    assert compact.new.shape == dense[2].shape
    assert compact.count == dense[3]
    _assert_adds_exactly(dense, compact, theta, mean, fit_intercept=fit_intercept, lam2=lam2,
                         lam1=lam1)


def _assert_adds_exactly(dense, compact, theta, mean, *, fit_intercept, lam2, lam1):
    """Adding the change from the compact result, without expanding it, gives the bits of
    adding the dense arrays (what the solvers did with the expansion)."""
    kw = dict(step=STEP, lam2=lam2, lam1=lam1, fit_intercept=fit_intercept)
    change = saga_change(compact, theta, mean, **kw)
    assert isinstance(change, SagaChange)
    assert isinstance(saga_change(dense, theta, mean, **kw), DenseSagaChange)
    rng = np.random.default_rng(7)
    start = rng.standard_normal(np.shape(theta))
    for weight in (1.0, 0.37):
        for add, arr in ((change.add_model, dense[0]), (change.add_smooth, dense[4])):
            got = start.copy()
            add(got, weight)
            np.testing.assert_array_equal(got, np.add(start, weight * arr), err_msg=add.__name__)
    got = start.copy()
    change.add_mean(got)
    np.testing.assert_array_equal(got, start + dense[1])
    assert change.count == dense[3] and change.new is compact.new


def _case(loss, penalty, fit_intercept, shape, *, big_mean=False, resets=False):
    loss_code, K = LOSSES[loss]
    m, d, density, fraction = SHAPES[shape]
    lam2, lam1 = PENALTIES[penalty]
    if resets:
        lam2 = 0.2 / STEP  # c = 0.8 ** t falls below RESCALE every 93 steps
    X, y = _block(10 * list(LOSSES).index(loss) + list(SHAPES).index(shape), m, d, density,
                  loss_code, K)
    B = len(sample_rows(m, fraction, 5, 1, 2))
    theta, mean, old = _start(d, K, d + fit_intercept, B, big_mean=big_mean)
    dense, compact = _run(X, y, theta, mean, old, loss_code=loss_code, fraction=fraction,
                          fit_intercept=fit_intercept, lam2=lam2, lam1=lam1)
    _assert_expands_exactly(dense, compact, theta, mean, fit_intercept=fit_intercept,
                            lam2=lam2, lam1=lam1)
    # the untouched coordinates are many and move (the expansion is not trivial)
    untouched = np.setdiff1d(np.arange(d), compact.indices)
    assert 100 <= untouched.size < d
    moved = np.reshape(dense[0], (K, -1))[:, untouched]
    assert np.count_nonzero(moved) > 0.5 * moved.size
    return theta, dense, compact


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("big_mean", [False, True], ids=["plain", "big_mean"])
@pytest.mark.parametrize("fit_intercept", [False, True], ids=["noint", "int"])
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("loss", LOSSES)
def test_expansion_equals_dense_result(loss, penalty, fit_intercept, big_mean, shape):
    theta, dense, compact = _case(loss, penalty, fit_intercept, shape, big_mean=big_mean)
    if big_mean and PENALTIES[penalty][1] > 0:
        # |M_j| > lam1 drives untouched coordinates to zero and across it
        K = LOSSES[loss][1]
        d = SHAPES[shape][1]
        untouched = np.setdiff1d(np.arange(d), compact.indices)
        w0 = np.reshape(theta, (K, -1))[:, untouched]
        w1 = w0 + np.reshape(dense[0], (K, -1))[:, untouched]
        crossed = np.sum(np.sign(w0) * np.sign(w1) < 0)
        landed = np.sum((w1 == 0.0) & (w0 != 0.0))
        print(f" crossed={crossed} landed={landed} of {w0.size}", end="")
        assert crossed > 20
        assert landed > 5


@pytest.mark.parametrize("fit_intercept", [False, True], ids=["noint", "int"])
@pytest.mark.parametrize("penalty", ["l2", "elasticnet"])
@pytest.mark.parametrize("loss", LOSSES)
def test_expansion_across_resets(loss, penalty, fit_intercept):
    _, _, compact = _case(loss, penalty, fit_intercept, "d3000", resets=True)
    _, _, starts, _, cs = _segments(compact.count, STEP, 0.2 / STEP)
    assert starts.size - 1 >= 5  # resets during the task
    assert (cs[:-1] < 1e-9).all()


@pytest.mark.parametrize("sparse_result", [False, True])
@pytest.mark.parametrize("loss", ["logistic", "multinomial3"])
def test_stacked_model_equals_mean_argument(loss, sparse_result):
    loss_code, K = LOSSES[loss]
    X, y = _block(3, 400, 2_000, 0.005, loss_code, K)
    B = len(sample_rows(400, 0.5, 5, 1, 2))
    theta, mean, old = _start(3, K, 2_001, B)
    kw = dict(loss_code=loss_code, fraction=0.5, fit_intercept=True, old=old, step=STEP,
              lam2=0.5, lam1=0.05, n=400, partition=1, task_index=2, seed=5,
              sparse_result=sparse_result)
    for block in [(X, y), (X.toarray(), y)]:
        a = saga_sequential_kernel(block, theta, mean=mean, **kw)
        b = saga_sequential_kernel(block, np.stack([theta, mean]), **kw)
        assert type(a) is type(b)
        assert isinstance(a, LazySagaResult) == (sparse_result and sp.issparse(block[0]))
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(u, v)


def _sized_task(rows, d=1_000_000, per_row=50, K=1):
    """A task over ``rows`` rows of ``per_row`` nonzeros each, d columns, L1 and intercept."""
    rng = np.random.default_rng(rows)
    indices = np.concatenate([np.sort(rng.choice(d, per_row, replace=False))
                              for _ in range(rows)]).astype(np.int32)
    X = sp.csr_matrix((rng.standard_normal(rows * per_row), indices,
                       np.arange(rows + 1) * per_row), shape=(rows, d))
    y = rng.choice([-1.0, 1.0], rows)
    theta = rng.standard_normal(d + 1) * 0.01
    mean = rng.standard_normal(d + 1) * 0.01
    kw = dict(loss_code=0, fraction=1.0, fit_intercept=True, old=np.zeros(rows), step=STEP,
              lam2=0.5, lam1=0.05, n=10 * rows, partition=0, task_index=0, seed=0)
    compact = saga_sequential_kernel((X, y), theta, mean=mean, sparse_result=True, **kw)
    return X, y, theta, mean, kw, compact


def _arrays(result):
    return [a for a in result if isinstance(a, np.ndarray)]


def test_result_size_follows_the_nonzeros():
    d = 1_000_000
    X, y, theta, mean, kw, compact = _sized_task(10, d)
    nnz = X.nnz
    nbytes = sum(a.nbytes for a in _arrays(compact))
    csr = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    pickled = len(pickle.dumps(compact, protocol=pickle.HIGHEST_PROTOCOL))
    print(f"\nnnz={nnz} touched={compact.indices.size} result nbytes={nbytes} "
          f"pickled={pickled} rows' CSR nbytes={csr}")
    assert nbytes <= 40 * nnz + 300
    assert max(a.size for a in _arrays(compact)) <= nnz
    assert all(d not in a.shape for a in _arrays(compact))
    assert compact.indices.dtype == np.int32
    assert pickled <= 40 * nnz + 1500
    # twice the rows, about twice the bytes: the size follows nnz, not d
    *_, bigger = _sized_task(20, d)
    pickled2 = len(pickle.dumps(bigger, protocol=pickle.HIGHEST_PROTOCOL))
    assert 1.8 * (pickled - 1500) < pickled2 < 2.2 * pickled
    # the dense form of the same task ships three arrays of d + 1 floats
    dense = saga_sequential_kernel((X, y), theta, mean=mean, **kw)
    assert len(pickle.dumps(dense, protocol=pickle.HIGHEST_PROTOCOL)) > 3 * 8 * d
    expanded = expand_saga_result(compact, theta, mean, step=STEP, lam2=0.5, lam1=0.05,
                                  fit_intercept=True)
    assert all(a.shape == (d + 1,) for a in expanded)


def test_dense_forms_pass_through():
    """Dense X, the eager fallback and step * lam2 >= 1 return the dense form, which
    expand_saga_result passes through."""
    X, y = _block(4, 300, 500, 0.02, 0, 1)
    B = len(sample_rows(300, 0.5, 5, 1, 2))
    theta, mean, old = _start(4, 1, 501, B)
    kw = dict(loss_code=0, fraction=0.5, fit_intercept=True, old=old, n=300, partition=1,
              task_index=2, seed=5, sparse_result=True, lam1=0.05)
    for block, extra in [((X.toarray(), y), dict(step=STEP, lam2=0.5)),
                         ((X, y), dict(step=STEP, lam2=0.5, lazy=False)),
                         ((X, y), dict(step=0.1, lam2=20.0))]:
        res = saga_sequential_kernel(block, theta, mean=mean, **kw, **extra)
        assert isinstance(res, tuple) and not isinstance(res, LazySagaResult)
        out = expand_saga_result(res, theta, mean, step=extra["step"], lam2=extra["lam2"],
                                 lam1=0.05, fit_intercept=True)
        for got, want in zip(out, (res[0], res[1], res[4]), strict=True):
            assert got is want


def test_expansion_checks_its_arguments():
    X, y = _block(5, 300, 500, 0.02, 0, 1)
    B = len(sample_rows(300, 0.5, 5, 1, 2))
    theta, mean, old = _start(5, 1, 501, B)
    _, compact = _run(X, y, theta, mean, old, loss_code=0, fraction=0.5, fit_intercept=True,
                      lam2=0.5, lam1=0.05)
    good = dict(step=STEP, lam2=0.5, lam1=0.05, fit_intercept=True)
    for bad in [dict(lam1=0.0), dict(fit_intercept=False), dict(lam2=1.0 / STEP)]:
        with pytest.raises(ValueError, match="match"):
            expand_saga_result(compact, theta, mean, **{**good, **bad})
    with pytest.raises(ValueError, match="do not fit"):
        expand_saga_result(compact, theta[:-1], mean[:-1], **good)


@pytest.mark.parametrize("penalty", ["none", "elasticnet"])
def test_float32_int64_repeated_indices_and_empty_rows(penalty):
    """Non-canonical CSR (an index repeated within a row), float32 data, int64 indices and
    empty rows: the sparse result still expands exactly; a task whose rows are all empty
    touches no column."""
    X, y = _block(6, 400, 2_000, 0.005, 0, 1)
    X = (sp.diags((np.arange(400) % 10 != 0).astype(float)) @ X).tocsr()  # empty rows
    X.eliminate_zeros()
    X = X.astype(np.float32)
    X.indices = X.indices.astype(np.int64)
    X.indptr = X.indptr.astype(np.int64)
    X.indices[1::9] = X.indices[0::9][: len(X.indices[1::9])]  # duplicates within rows
    lam2, lam1 = PENALTIES[penalty]
    B = len(sample_rows(400, 0.8, 5, 1, 2))
    theta, mean, old = _start(6, 1, 2_001, B)
    dense, compact = _run(X, y, theta, mean, old, loss_code=0, fraction=0.8,
                          fit_intercept=True, lam2=lam2, lam1=lam1)
    _assert_expands_exactly(dense, compact, theta, mean, fit_intercept=True, lam2=lam2,
                            lam1=lam1)
    assert compact.indices.dtype == np.int32
    empty = sp.csr_matrix((400, 2_000))
    dense, compact = _run(empty, y, theta, mean, old, loss_code=0, fraction=0.8,
                          fit_intercept=True, lam2=lam2, lam1=lam1)
    assert compact.indices.size == 0 and compact.model.shape == (1, 0)
    _assert_expands_exactly(dense, compact, theta, mean, fit_intercept=True, lam2=lam2,
                            lam1=lam1)


def test_stacked_model_shape_is_checked():
    X, y = _block(7, 100, 50, 0.1, 0, 1)
    with pytest.raises(ValueError, match="stacks"):
        saga_sequential_kernel((X, y), np.zeros((3, 51)), loss_code=0, fraction=0.5,
                               fit_intercept=True, old=np.zeros(50), step=STEP, lam2=0.0,
                               lam1=0.0, n=100, partition=0, task_index=0, seed=0)


@pytest.mark.parametrize("fit_intercept", [False, True], ids=["noint", "int"])
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("loss", LOSSES)
def test_a_round_of_changes_adds_as_their_sum(loss, penalty, fit_intercept):
    """add_model_changes: the sum of a round's model changes (tasks on one version, in one
    pass over the columns without L1, with resets in the schedule) equals adding each
    change's dense form, to rounding; changes from another version, dense ones and L1
    ones are added too."""
    loss_code, K = LOSSES[loss]
    lam2, lam1 = PENALTIES[penalty]
    m, d, density, fraction = SHAPES["d3000"]
    B = len(sample_rows(m, fraction, 5, 1, 2))
    theta, mean, old = _start(3, K, d + fit_intercept, B)
    other_theta, other_mean, _ = _start(4, K, d + fit_intercept, B)
    kw = dict(step=STEP, lam2=lam2, lam1=lam1, fit_intercept=fit_intercept)
    changes, dense_sum = [], np.zeros(np.shape(theta))
    for i, (t0, m0, l2) in enumerate([(theta, mean, lam2), (theta, mean, lam2),
                                     (theta, mean, lam2), (other_theta, other_mean, lam2)]):
        X, y = _block(50 + i, m, d, density, loss_code, K)
        dense, compact = _run(X, y, t0, m0, old, loss_code=loss_code, fraction=fraction,
                              fit_intercept=fit_intercept, lam2=l2, lam1=lam1)
        changes.append(saga_change(compact, t0, m0, **kw))
        dense_sum += dense[0]
    X, y = _block(60, m, d, density, loss_code, K)
    dense, _ = _run(X, y, theta, mean, old, loss_code=loss_code, fraction=fraction,
                    fit_intercept=fit_intercept, lam2=lam2, lam1=lam1)
    changes.append(saga_change(dense, theta, mean, **kw))
    dense_sum += dense[0]
    linear = [c.linear_drift() for c in changes[:4]]
    assert all((x is None) == (lam1 > 0) for x in linear)
    start = np.random.default_rng(1).standard_normal(np.shape(theta))
    for weight in (1.0, 0.25):
        got = start.copy()
        add_model_changes(got, changes, weight)
        want = start + weight * dense_sum
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14 * np.abs(want).max())
        assert np.count_nonzero(got != start) > 0.9 * got.size


def test_linear_drift_across_resets():
    """The coefficients of an untouched coordinate's drift follow the schedule's resets."""
    theta, dense, compact = _case("logistic", "l2", False, "d3000", resets=True)
    _, mean, _ = _start(3_000, 1, 3_000, compact.count)  # the mean the case ran with
    change = saga_change(compact, theta, mean, step=STEP, lam2=0.2 / STEP, lam1=0.0,
                         fit_intercept=False)
    a, b = change.linear_drift()
    untouched = np.setdiff1d(np.arange(3_000), compact.indices)
    got = (a - 1.0) * theta[untouched] + b * mean[untouched]
    np.testing.assert_allclose(got, dense[0][untouched], rtol=1e-12, atol=1e-300)
