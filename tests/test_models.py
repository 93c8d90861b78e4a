"""Cluster-free tests of the model pieces: losses, penalties, schedules, straggler models,
worker-side kernels, the problem definition, the SGD step and the stopping criteria."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

import daskasync
from daskasync.losses import LOSSES, LogisticLoss, SquaredLoss, get_loss
from daskasync.monitor import StopCriteria
from daskasync.penalties import L1, L2, ElasticNet, NoPenalty, make_penalty
from daskasync.problem import Problem
from daskasync.schedules import constant, inv_sqrt, make_schedule
from daskasync.solvers.sgd import sgd_step
from daskasync.stragglers import (
    Cloud,
    DelayFunction,
    Intensity,
    NoStragglers,
    make_straggler,
)
from daskasync.tasks import (
    eval_kernel,
    grad_kernel,
    margins,
    objectives_kernel,
    row_norm_stats_kernel,
    sample_rows,
)


def fd(f, z, h=1e-6):
    return (f(z + h) - f(z - h)) / (2 * h)


# ============================================================================================
# losses
# ============================================================================================
@pytest.mark.parametrize("y", [-1.0, 1.0])
def test_logistic_value_matches_naive_formula(y):
    z = np.linspace(-20, 20, 81)
    yy = np.full_like(z, y)
    expected = np.log1p(np.exp(-yy * z))
    np.testing.assert_allclose(LogisticLoss().value(z, yy), expected, rtol=1e-12, atol=1e-15)


def test_logistic_known_values():
    loss = LogisticLoss()
    assert loss.value(np.array([0.0]), np.array([1.0]))[0] == pytest.approx(math.log(2))
    assert loss.derivative(np.array([0.0]), np.array([1.0]))[0] == pytest.approx(-0.5)
    assert loss.derivative(np.array([0.0]), np.array([-1.0]))[0] == pytest.approx(0.5)
    # d/dz log(1 + exp(-y z)) = -y / (1 + exp(y z))
    z, y = np.array([1.3, -0.7]), np.array([1.0, -1.0])
    np.testing.assert_allclose(loss.derivative(z, y), -y / (1 + np.exp(y * z)), rtol=1e-12)


@pytest.mark.parametrize("loss", [LogisticLoss(), SquaredLoss()])
@pytest.mark.parametrize("y", [-1.0, 1.0])
def test_derivative_matches_finite_differences(loss, y):
    z = np.linspace(-8, 8, 33)
    yy = np.full_like(z, y)
    num = fd(lambda t: loss.value(t, yy), z)
    np.testing.assert_allclose(loss.derivative(z, yy), num, rtol=1e-6, atol=1e-8)


def test_logistic_curvature_bound():
    loss = LogisticLoss()
    z = np.linspace(-10, 10, 2001)
    y = np.ones_like(z)
    second = fd(lambda t: loss.derivative(t, y), z)
    assert second.max() <= loss.curvature + 1e-6
    assert second.max() == pytest.approx(0.25, abs=1e-6)


def test_logistic_stable_for_large_margins():
    loss = LogisticLoss()
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    with np.errstate(all="raise"):
        v = loss.value(z, y)
        g = loss.derivative(z, y)
    assert np.isfinite(v).all() and np.isfinite(g).all()
    np.testing.assert_allclose(v, [0.0, 1000.0, 1000.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(g, [0.0, -1.0, 1.0, 0.0], atol=1e-12)


def test_squared_loss():
    loss = SquaredLoss()
    z, y = np.array([3.0, -1.0, 0.5]), np.array([1.0, 1.0, 0.5])
    np.testing.assert_allclose(loss.value(z, y), [2.0, 2.0, 0.0])
    np.testing.assert_allclose(loss.derivative(z, y), [2.0, -2.0, 0.0])
    loss.check_labels(np.array([0.3, 7.0, -2.0]))  # any real labels


@pytest.mark.parametrize(
    "labels", [[-1.0, 1.0, 1.0], np.array([1, -1, -1]), np.array([], dtype=float)]
)
def test_logistic_check_labels_accepts(labels):
    LogisticLoss().check_labels(np.asarray(labels))


@pytest.mark.parametrize("labels", [[0.0, 1.0], [-1.0, 2.0], [1.0, np.nan], [0.5]])
def test_logistic_check_labels_rejects(labels):
    with pytest.raises(ValueError, match="labels"):
        LogisticLoss().check_labels(np.asarray(labels))


def test_get_loss():
    assert isinstance(get_loss("logistic"), LogisticLoss)
    assert isinstance(get_loss("squared"), SquaredLoss)
    lo = LogisticLoss()
    assert get_loss(lo) is lo
    assert set(LOSSES) == {"logistic", "squared", "multinomial"}
    assert LogisticLoss() == LogisticLoss() and LogisticLoss() != SquaredLoss()
    assert hash(SquaredLoss()) == hash(SquaredLoss())
    for bad in ("hinge", None, 3):
        with pytest.raises(ValueError, match="loss"):
            get_loss(bad)


# ============================================================================================
# penalties
# ============================================================================================
def test_penalty_values():
    w = np.array([1.0, -3.0])
    assert NoPenalty().value(w) == 0.0
    assert L2(0.5).value(w) == pytest.approx(0.25 * 10)
    assert L1(2.0).value(w) == pytest.approx(8.0)
    # a = 2 * 0.25 = 0.5 on |w|_1 = 4; b = 2 * 0.75 = 1.5 on ||w||^2 / 2 = 5
    assert ElasticNet(2.0, 0.25).value(w) == pytest.approx(0.5 * 4 + 1.5 * 5)


def soft_threshold(w, t):
    out = np.zeros_like(w)
    for i, x in enumerate(w):
        if x > t:
            out[i] = x - t
        elif x < -t:
            out[i] = x + t
    return out


def test_l1_prox_is_soft_thresholding():
    w = np.array([3.0, -0.5, 0.2, -2.0, 0.0, 0.5])
    got = L1(1.0).prox(w, 0.5)
    np.testing.assert_allclose(got, [2.5, 0.0, 0.0, -1.5, 0.0, 0.0])
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.normal(scale=2, size=8)
        lam, step = rng.uniform(0.01, 2), rng.uniform(0.01, 2)
        np.testing.assert_allclose(L1(lam).prox(v, step), soft_threshold(v, lam * step))
    assert L1(1.0).has_prox and L1(1.0).gradient(w) == 0.0
    assert L1(1.0).smooth_strength == 0.0


def prox_objective(pen, w, v, step):
    """The function the prox of the non-smooth part minimizes."""
    nonsmooth = pen.value(w) - (0.5 * pen.smooth_strength * float(w @ w))
    return step * nonsmooth + 0.5 * float((w - v) @ (w - v))


@pytest.mark.parametrize("pen", [L1(0.7), ElasticNet(1.2, 0.3), ElasticNet(0.5, 1.0)])
def test_prox_minimizes_its_objective(pen):
    rng = np.random.default_rng(1)
    for _ in range(10):
        v = rng.normal(size=6)
        step = 0.8
        p = pen.prox(v, step)
        f0 = prox_objective(pen, p, v, step)
        for _ in range(20):
            q = p + rng.normal(scale=0.05, size=6)
            assert f0 <= prox_objective(pen, q, v, step) + 1e-12


def test_elasticnet_consistent_with_l1_plus_l2():
    rng = np.random.default_rng(2)
    lam, r = 1.5, 0.4
    en = ElasticNet(lam, r)
    l1, l2 = L1(lam * r), L2(lam * (1 - r))
    for _ in range(5):
        w = rng.normal(size=5)
        assert en.value(w) == pytest.approx(l1.value(w) + l2.value(w))
        np.testing.assert_allclose(en.gradient(w), l2.gradient(w))
        np.testing.assert_allclose(en.prox(w, 0.3), l1.prox(w, 0.3))
        # gradient is the derivative of the smooth part (finite differences away from 0)
        for i in range(5):
            e = np.zeros(5)
            e[i] = 1e-6
            num = (l2.value(w + e) - l2.value(w - e)) / 2e-6
            assert en.gradient(w)[i] == pytest.approx(num, rel=1e-5, abs=1e-8)
    assert en.smooth_strength == pytest.approx(lam * (1 - r))
    assert en.has_prox
    assert not ElasticNet(1.0, 0.0).has_prox
    w = np.array([0.3, -0.1])
    np.testing.assert_allclose(ElasticNet(1.0, 0.0).prox(w, 5.0), w)


def test_l2_prox_and_gradient():
    w = np.array([2.0, -4.0, 0.5])
    np.testing.assert_allclose(L2(0.5).prox(w, 2.0), w / 2.0)
    np.testing.assert_allclose(L2(3.0).prox(w, 0.1), w / 1.3)
    np.testing.assert_allclose(L2(0.5).gradient(w), 0.5 * w)
    assert L2(0.5).smooth_strength == 0.5
    assert not L2(0.5).has_prox
    # L2 prox is the minimizer of step * lam/2 ||x||^2 + 1/2 ||x - w||^2
    lam, step = 0.7, 1.3
    p = L2(lam).prox(w, step)
    np.testing.assert_allclose(step * lam * p + (p - w), 0.0, atol=1e-12)


def test_no_penalty():
    w = np.array([1.0, -2.0])
    pen = NoPenalty()
    assert pen.gradient(w) == 0.0
    assert pen.prox(w, 1.0) is w
    assert not pen.has_prox and pen.smooth_strength == 0.0


def test_make_penalty():
    assert make_penalty("l2", 0.1) == L2(0.1)
    assert make_penalty("l1", 2) == L1(2.0)
    assert make_penalty("elasticnet", 1.0, 0.2) == ElasticNet(1.0, 0.2)
    assert make_penalty("elasticnet", 1.0, 0.0).l1_ratio == 0.0
    assert make_penalty("elasticnet", 1.0, 1.0).l1_ratio == 1.0
    assert make_penalty(None) == NoPenalty()
    assert make_penalty("none", 0.0) == NoPenalty()
    assert make_penalty("l2", np.float64(0.3)) == L2(0.3)
    assert make_penalty("l2", 0) == L2(0.0)
    p = L1(0.4)
    assert make_penalty(p, 100.0) is p


@pytest.mark.parametrize("name", ["l3", "lasso", "L2", ""])
def test_make_penalty_unknown(name):
    with pytest.raises(ValueError, match="penalty"):
        make_penalty(name, 0.1)


@pytest.mark.parametrize("lam", [-0.1, -1, float("nan"), float("inf"), "0.1", None])
def test_make_penalty_bad_lam(lam):
    with pytest.raises(ValueError, match="lam"):
        make_penalty("l2", lam)


@pytest.mark.parametrize("ratio", [-0.1, 1.01, float("nan")])
def test_make_penalty_bad_l1_ratio(ratio):
    with pytest.raises(ValueError, match="l1_ratio"):
        make_penalty("elasticnet", 1.0, ratio)


def test_penalty_messages_come_from_the_constraints_toolkit():
    with pytest.raises(ValueError, match=r"^lam: must be a number >= 0, got '0.1'$"):
        make_penalty("l2", "0.1")
    with pytest.raises(ValueError, match=r"^l1_ratio: must be a number in \[0, 1\], got 1.01$"):
        make_penalty("elasticnet", 1.0, 1.01)


# ============================================================================================
# schedules
# ============================================================================================
def test_constant_schedule():
    s = constant(0.5)
    assert [s(t) for t in (0, 1, 10.5, 1e9)] == [0.5] * 4


def test_inv_sqrt_schedule():
    s = inv_sqrt(2.0)
    assert s(0) == 2.0
    assert s(3) == pytest.approx(1.0)
    assert s(0.25) == pytest.approx(2.0 / math.sqrt(1.25))
    assert s(99) == pytest.approx(0.2)
    vals = [s(t) for t in range(10)]
    assert all(a > b for a, b in zip(vals[:-1], vals[1:], strict=True))


def test_make_schedule():
    c = make_schedule("constant", 0.3)
    assert isinstance(c, constant) and c(100) == 0.3
    i = make_schedule("invsqrt", 4)
    assert isinstance(i, inv_sqrt) and i(3) == pytest.approx(2.0)
    assert isinstance(i.gamma, float)

    def f(t):
        return 1.0 / (t + 2)

    assert make_schedule(f, None) is f
    assert make_schedule(f, -5.0) is f  # gamma unused by a callable
    assert make_schedule(f, None)(2) == 0.25


@pytest.mark.parametrize("gamma", [0, 0.0, -1.0, float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", ["constant", "invsqrt"])
def test_make_schedule_bad_step_value(name, gamma):
    with pytest.raises(ValueError, match="step_size"):
        make_schedule(name, gamma)


@pytest.mark.parametrize("gamma", ["0.1", None, True, [0.1]])
def test_make_schedule_bad_step_type(gamma):
    with pytest.raises(TypeError, match="step_size"):
        make_schedule("constant", gamma)


def test_schedule_message_comes_from_the_constraints_toolkit():
    with pytest.raises(ValueError, match=r"^step_size: must be a positive number, got 0$"):
        make_schedule("invsqrt", 0)


@pytest.mark.parametrize("name", ["linear", "inv_sqrt", "", None])
def test_make_schedule_unknown(name):
    with pytest.raises(ValueError, match="step_schedule"):
        make_schedule(name, 0.1)


# ============================================================================================
# straggler models
# ============================================================================================
def test_intensity():
    m = Intensity(c=2.0)
    assert m.delay(0, 5, 0.5) == 1.0
    assert all(m.delay(p, k, 0.5) == 0.0 for p in range(1, 8) for k in range(5))
    assert Intensity(c=0.0).delay(0, 0, 1.0) == 0.0
    m2 = Intensity(c=1.0, partitions=(1, 3))
    assert [m2.delay(p, 0, 0.2) for p in range(4)] == [0.0, 0.2, 0.0, 0.2]
    assert m.active
    assert m.describe() == {"model": "intensity", "c": 2.0, "partitions": [0]}


def test_cloud_sets():
    m = Cloud(n_partitions=32)
    assert m.stragglers == (0, 4, 8, 12, 16, 20)
    assert m.long_tail == (24, 28)
    m8 = Cloud(n_partitions=8)
    assert m8.stragglers == (0, 4)
    assert m8.long_tail == ()
    d = m.describe()
    assert d["stragglers"] == [0, 4, 8, 12, 16, 20] and d["long_tail"] == [24, 28]


def test_cloud_delay_ranges():
    m = Cloud(n_partitions=32, seed=7)
    avg = 0.2
    ks = range(400)
    for p in m.stragglers:
        c = np.array([m.delay(p, k, avg) for k in ks]) / avg
        assert c.min() >= 1.5 and c.max() < 2.5
        assert c.mean() == pytest.approx(2.0, abs=0.06)  # U[1.5, 2.5)
        assert c.min() < 1.55 and c.max() > 2.45
    for p in m.long_tail:
        c = np.array([m.delay(p, k, avg) for k in ks]) / avg
        assert c.min() >= 2.5 and c.max() < 10.0
        assert c.mean() == pytest.approx(6.25, abs=0.4)  # U[2.5, 10)
        assert c.min() < 3.0 and c.max() > 9.5
    for p in set(range(32)) - set(m.stragglers) - set(m.long_tail):
        assert all(m.delay(p, k, avg) == 0.0 for k in range(5))


def test_cloud_small_has_no_long_tail_delays():
    m = Cloud(n_partitions=8)
    c = np.array([m.delay(p, k, 1.0) for p in (0, 4) for k in range(200)])
    assert c.min() >= 1.5 and c.max() < 2.5
    assert all(m.delay(p, 0, 1.0) == 0.0 for p in (1, 2, 3, 5, 6, 7))


def test_cloud_delay_scales_with_avg():
    m = Cloud(n_partitions=32, seed=1)
    assert m.delay(24, 3, 2.0) == pytest.approx(2 * m.delay(24, 3, 1.0))
    assert m.delay(0, 3, 0.0) == 0.0


def test_cloud_deterministic():
    a = [Cloud(n_partitions=32, seed=3).delay(p, k, 1.0) for p in (0, 4, 24) for k in range(20)]
    b = [Cloud(n_partitions=32, seed=3).delay(p, k, 1.0) for p in (0, 4, 24) for k in range(20)]
    assert a == b
    m = Cloud(n_partitions=32, seed=3)
    assert m.delay(4, 17, 1.0) == m.delay(4, 17, 1.0)
    # different task indices and different partitions draw different delays
    assert len({m.delay(0, k, 1.0) for k in range(20)}) == 20
    assert [m.delay(0, k, 1.0) for k in range(20)] != [m.delay(4, k, 1.0) for k in range(20)]


def test_cloud_seeds_differ():
    s0 = [Cloud(seed=0).delay(0, k, 1.0) for k in range(20)]
    s1 = [Cloud(seed=1).delay(0, k, 1.0) for k in range(20)]
    assert s0 != s1
    assert all(a != b for a, b in zip(s0, s1, strict=True))


def test_no_stragglers_and_delay_function():
    n = NoStragglers()
    assert n.delay(0, 0, 1.0) == 0.0 and not n.active
    assert n.describe() == {"model": "none"}

    def fn(p, k, avg):
        return 0.01 * p + k * avg

    d = DelayFunction(fn)
    assert d.delay(3, 2, 0.5) == pytest.approx(1.03)
    assert isinstance(d.delay(1, 0, 0.0), float)
    assert d.active and d.describe() == {"model": "function", "fn": "fn"}


def test_make_straggler():
    assert isinstance(make_straggler(None, n_partitions=4), NoStragglers)
    assert isinstance(make_straggler("none", n_partitions=4), NoStragglers)
    m = make_straggler("intensity", n_partitions=4, c=3, seed=2)
    assert m == Intensity(c=3.0, seed=2)
    assert m.delay(0, 0, 1.0) == 3.0
    c = make_straggler("cloud", n_partitions=32, seed=5)
    assert isinstance(c, Cloud) and c.seed == 5 and c.long_tail == (24, 28)
    assert make_straggler("cloud", n_partitions=8).long_tail == ()
    obj = Intensity(c=0.5)
    assert make_straggler(obj, n_partitions=4) is obj

    def fn(p, k, a):
        return 1.5

    f = make_straggler(fn, n_partitions=4, seed=9)
    assert isinstance(f, DelayFunction) and f.fn is fn and f.seed == 9
    assert f.delay(0, 0, 0.0) == 1.5


@pytest.mark.parametrize("name", ["clouds", "Cloud", "", 3])
def test_make_straggler_unknown(name):
    with pytest.raises(ValueError, match="stragglers"):
        make_straggler(name, n_partitions=4)


@pytest.mark.parametrize("c", [-1.0, -1e-9, float("nan")])
def test_make_straggler_bad_intensity(c):
    with pytest.raises(ValueError, match="straggler_c"):
        make_straggler("intensity", n_partitions=4, c=c)


def test_straggler_message_comes_from_the_constraints_toolkit():
    with pytest.raises(ValueError, match=r"^straggler_c: must be a number >= 0, got -1.0$"):
        make_straggler("intensity", n_partitions=4, c=-1.0)
    with pytest.raises(TypeError, match=r"^straggler_c: must be a number >= 0, got '1'$"):
        make_straggler("intensity", n_partitions=4, c="1")


# ============================================================================================
# worker-side kernels
# ============================================================================================
def test_sample_rows_deterministic_distinct_sorted():
    a = sample_rows(1000, 0.1, seed=3, partition=2, task_index=5)
    b = sample_rows(1000, 0.1, seed=3, partition=2, task_index=5)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == len(a) == 100
    assert (np.diff(a) > 0).all()
    assert a.min() >= 0 and a.max() < 1000
    # the stream depends on seed, partition and task index
    for other in (
        sample_rows(1000, 0.1, seed=4, partition=2, task_index=5),
        sample_rows(1000, 0.1, seed=3, partition=3, task_index=5),
        sample_rows(1000, 0.1, seed=3, partition=2, task_index=6),
    ):
        assert not np.array_equal(a, other)


@pytest.mark.parametrize(
    ("m", "frac"),
    [(100, 0.1), (10, 0.01), (7, 0.5), (1000, 0.333), (3, 0.2), (50, 0.999), (1, 0.5)],
)
def test_sample_rows_size(m, frac):
    idx = sample_rows(m, frac, 0, 0, 0)
    assert len(idx) == max(1, round(frac * m))
    assert len(set(idx.tolist())) == len(idx)


@pytest.mark.parametrize("frac", [1.0, 1.5])
def test_sample_rows_full(frac):
    np.testing.assert_array_equal(sample_rows(9, frac, 1, 2, 3), np.arange(9))


def make_block(m=40, d=5, seed=0, sparse_fmt=None, density=0.4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d)) * (rng.random((m, d)) < density)
    y = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    if sparse_fmt is not None:
        return sparse_fmt(X), y, X
    return X, y, X


def hand_gradient(Xd, y, theta, idx, loss_name, fit_intercept):
    d = Xd.shape[1]
    g = np.zeros(d + int(fit_intercept))
    for i in idx:
        z = sum(Xd[i, j] * theta[j] for j in range(d))
        if fit_intercept:
            z += theta[-1]
        if loss_name == "logistic":
            s = -y[i] / (1.0 + math.exp(y[i] * z))
        else:
            s = z - y[i]
        for j in range(d):
            g[j] += s * Xd[i, j]
        if fit_intercept:
            g[-1] += s
    return g


SPARSE_FORMATS = {"dense": None, "csr_matrix": sp.csr_matrix, "csr_array": sp.csr_array}


@pytest.mark.parametrize("fmt", list(SPARSE_FORMATS))
@pytest.mark.parametrize("loss_name", ["logistic", "squared"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("fraction", [0.3, 1.0])
def test_grad_kernel_matches_hand_gradient(fmt, loss_name, fit_intercept, fraction):
    X, y, Xd = make_block(sparse_fmt=SPARSE_FORMATS[fmt])
    rng = np.random.default_rng(1)
    theta = rng.normal(size=Xd.shape[1] + int(fit_intercept))
    g, count = grad_kernel(
        (X, y),
        theta,
        loss=get_loss(loss_name),
        fraction=fraction,
        fit_intercept=fit_intercept,
        partition=3,
        task_index=4,
        seed=11,
    )
    idx = sample_rows(Xd.shape[0], fraction, 11, 3, 4)
    assert count == len(idx) == max(1, round(min(fraction, 1.0) * 40))
    expected = hand_gradient(Xd, y, theta, idx, loss_name, fit_intercept)
    assert isinstance(g, np.ndarray) and g.shape == expected.shape
    np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-12)


def test_grad_kernel_dense_and_sparse_agree_and_is_deterministic():
    X, y, Xd = make_block(sparse_fmt=sp.csr_matrix)
    theta = np.linspace(-1, 1, 6)
    kw = dict(loss=LogisticLoss(), fraction=0.25, fit_intercept=True, partition=0, seed=2)
    g1, _ = grad_kernel((X, y), theta, task_index=1, **kw)
    g2, _ = grad_kernel((Xd, y), theta, task_index=1, **kw)
    g3, _ = grad_kernel((Xd, y), theta, task_index=1, **kw)
    g4, _ = grad_kernel((Xd, y), theta, task_index=2, **kw)
    np.testing.assert_allclose(g1, g2, rtol=1e-12)
    np.testing.assert_array_equal(g2, g3)
    assert not np.allclose(g2, g4)


def test_margins():
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(margins(X, np.array([1.0, 1.0, 0.5]), True), [3.5, 2.5])
    np.testing.assert_allclose(margins(X, np.array([1.0, 1.0]), False), [3.0, 2.0])


@pytest.mark.parametrize("fmt", list(SPARSE_FORMATS))
@pytest.mark.parametrize("loss_name", ["logistic", "squared"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_eval_kernel(fmt, loss_name, fit_intercept):
    X, y, Xd = make_block(m=30, sparse_fmt=SPARSE_FORMATS[fmt], seed=4)
    theta = np.random.default_rng(5).normal(size=Xd.shape[1] + int(fit_intercept))
    loss = get_loss(loss_name)
    loss_sum, grad_sum, rows = eval_kernel(
        (X, y), theta, loss=loss, fit_intercept=fit_intercept, partition=0, seed=0
    )
    z = Xd @ theta[: Xd.shape[1]] + (theta[-1] if fit_intercept else 0.0)
    if loss_name == "logistic":
        expected_loss = np.log1p(np.exp(-y * z)).sum()
    else:
        expected_loss = 0.5 * ((z - y) ** 2).sum()
    assert rows == 30
    assert isinstance(loss_sum, float)
    assert loss_sum == pytest.approx(expected_loss, rel=1e-12)
    expected_grad = hand_gradient(Xd, y, theta, range(30), loss_name, fit_intercept)
    np.testing.assert_allclose(grad_sum, expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fmt", list(SPARSE_FORMATS))
@pytest.mark.parametrize("loss_name", ["logistic", "squared"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_objectives_kernel(fmt, loss_name, fit_intercept):
    X, y, Xd = make_block(m=25, sparse_fmt=SPARSE_FORMATS[fmt], seed=6)
    loss = get_loss(loss_name)
    # 130 models: crosses the kernel's blocks of 64
    thetas = np.random.default_rng(7).normal(size=(130, Xd.shape[1] + int(fit_intercept)))
    out = objectives_kernel((X, y), thetas, loss=loss, fit_intercept=fit_intercept)
    assert out.shape == (130,)
    for r in (0, 63, 64, 65, 127, 128, 129):
        th = thetas[r]
        z = Xd @ th[: Xd.shape[1]] + (th[-1] if fit_intercept else 0.0)
        assert out[r] == pytest.approx(float(loss.value(z, y).sum()), rel=1e-12)
    direct = np.array(
        [eval_kernel((Xd, y), th, loss=loss, fit_intercept=fit_intercept)[0] for th in thetas]
    )
    np.testing.assert_allclose(out, direct, rtol=1e-12)


def test_row_norm_stats_kernel():
    def row_norm_kernel(block, model=None):
        return row_norm_stats_kernel(block, model)[0]

    X = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, -1.0]])
    y = np.ones(3)
    assert row_norm_kernel((X, y)) == 9.0
    assert row_norm_kernel((sp.csr_matrix(X), y)) == 9.0
    assert row_norm_kernel((sp.csr_array(X), y), None) == 9.0
    X2 = np.array([[1.0, -3.0], [2.0, 0.5]])
    assert row_norm_kernel((X2, y[:2])) == pytest.approx(10.0)
    assert row_norm_kernel((sp.csr_matrix(X2), y[:2])) == pytest.approx(10.0)
    assert row_norm_kernel((np.zeros((0, 3)), np.zeros(0))) == 0.0
    assert row_norm_kernel((sp.csr_matrix((0, 3)), np.zeros(0))) == 0.0
    Xr, yr, _ = make_block(m=20, seed=8)
    assert row_norm_kernel((Xr, yr)) == pytest.approx(max((Xr**2).sum(axis=1)))
    # the sum and count give the mean squared row norm (L_avg)
    assert row_norm_stats_kernel((sp.csr_matrix(X), y)) == (9.0, 15.0, 3)
    assert row_norm_stats_kernel((np.zeros((0, 3)), np.zeros(0))) == (0.0, 0.0, 0)


# ============================================================================================
# Problem
# ============================================================================================
def test_problem_basics():
    p = Problem(LogisticLoss(), L2(0.1), True, n=10, d=3)
    theta = np.array([1.0, -2.0, 0.5, 7.0])
    assert p.dim == 4
    np.testing.assert_array_equal(p.coef(theta), [1.0, -2.0, 0.5])
    assert p.intercept(theta) == 7.0
    assert p.kernel_kwargs == {"loss": LogisticLoss(), "fit_intercept": True}
    q = Problem(SquaredLoss(), NoPenalty(), False, n=5, d=3)
    assert q.dim == 3 and q.intercept(theta[:3]) == 0.0


def test_problem_objective_does_not_penalize_intercept():
    p = Problem(LogisticLoss(), L2(0.1), True, n=10, d=3)
    theta = np.array([1.0, -2.0, 0.5, 7.0])
    assert p.objective(5.0, theta) == pytest.approx(0.5 + 0.05 * 5.25)
    theta2 = theta.copy()
    theta2[-1] = -100.0
    assert p.objective(5.0, theta2) == p.objective(5.0, theta)
    q = Problem(LogisticLoss(), L1(0.5), False, n=4, d=3)
    assert q.objective(2.0, np.array([1.0, -1.0, 2.0])) == pytest.approx(0.5 + 2.0)


def test_problem_smooth_gradient():
    theta = np.array([1.0, -2.0, 3.0])
    p = Problem(SquaredLoss(), L2(0.5), True, n=4, d=2)
    np.testing.assert_allclose(p.smooth_gradient(theta), [0.5, -1.0, 0.0])
    p = Problem(SquaredLoss(), L2(0.5), False, n=4, d=3)
    np.testing.assert_allclose(p.smooth_gradient(theta), [0.5, -1.0, 1.5])
    p = Problem(SquaredLoss(), ElasticNet(1.0, 0.75), True, n=4, d=2)
    np.testing.assert_allclose(p.smooth_gradient(theta), [0.25, -0.5, 0.0])
    assert Problem(SquaredLoss(), NoPenalty(), True, n=4, d=2).smooth_gradient(theta) == 0.0
    assert Problem(SquaredLoss(), L1(1.0), True, n=4, d=2).smooth_gradient(theta) == 0.0


def test_problem_prox_in_place_and_intercept_untouched():
    p = Problem(SquaredLoss(), L1(1.0), True, n=4, d=3)
    theta = np.array([3.0, -0.5, -2.0, 0.1])
    out = p.prox(theta, 0.5)
    assert out is theta
    np.testing.assert_allclose(theta, [2.5, 0.0, -1.5, 0.1])
    # L2 has no prox: the problem's prox leaves theta alone
    q = Problem(SquaredLoss(), L2(1.0), True, n=4, d=3)
    t2 = np.array([3.0, -0.5, -2.0, 0.1])
    np.testing.assert_array_equal(q.prox(t2, 0.5), [3.0, -0.5, -2.0, 0.1])


def test_problem_optimality_smooth():
    p = Problem(SquaredLoss(), L2(0.5), True, n=4, d=2)
    theta = np.array([1.0, -2.0, 3.0])
    grad_sum = np.array([4.0, 8.0, -2.0])
    # g = grad_sum / 4 + [0.5, -1, 0] = [1.5, 1.0, -0.5]
    assert p.optimality(grad_sum, theta) == pytest.approx(1.5)
    q = Problem(SquaredLoss(), NoPenalty(), False, n=2, d=2)
    assert q.optimality(np.array([1.0, -6.0]), np.zeros(2)) == pytest.approx(3.0)


def test_problem_optimality_prox():
    p = Problem(SquaredLoss(), L1(1.0), True, n=2, d=2)
    theta = np.array([2.0, 0.0, 1.0])
    grad_sum = np.array([2.0, 1.0, 0.4])
    # g = [1.0, 0.5, 0.2]; theta - g = [1.0, -0.5, 0.8]; prox(.,1) -> [0.0, 0.0, 0.8]
    # theta - moved = [2.0, 0.0, 0.2]
    assert p.optimality(grad_sum, theta) == pytest.approx(2.0)
    assert p.optimality(grad_sum, theta.copy()) == p.optimality(grad_sum, theta)
    np.testing.assert_array_equal(theta, [2.0, 0.0, 1.0])  # not modified
    # at w = 0 with |gradient| < lam and a zero intercept gradient: optimal
    assert p.optimality(np.array([1.0, -1.5, 0.0]), np.array([0.0, 0.0, 5.0])) == 0.0


# ============================================================================================
# sgd_step
# ============================================================================================
def test_sgd_step_l2_with_intercept():
    p = Problem(SquaredLoss(), L2(0.5), True, n=10, d=2)
    theta = np.array([1.0, -2.0, 0.5])
    grad_sum = np.array([4.0, 2.0, -6.0])
    # g = [2, 1, -3] + [0.5, -1, 0] = [2.5, 0, -3]; theta - 0.1 g
    out = sgd_step(theta, grad_sum, 2, 0.1, p)
    assert out is theta
    np.testing.assert_allclose(theta, [0.75, -2.0, 0.8])
    np.testing.assert_array_equal(grad_sum, [4.0, 2.0, -6.0])  # input not modified


def test_sgd_step_l1_prox():
    p = Problem(SquaredLoss(), L1(1.0), False, n=4, d=3)
    theta = np.array([1.0, 0.05, -1.0])
    # g = [1, 0, -1]; theta - 0.1 g = [0.9, 0.05, -0.9]; soft-threshold 0.1
    sgd_step(theta, np.array([2.0, 0.0, -2.0]), 2, 0.1, p)
    np.testing.assert_allclose(theta, [0.8, 0.0, -0.8])


def test_sgd_step_elasticnet():
    p = Problem(LogisticLoss(), ElasticNet(2.0, 0.5), True, n=4, d=2)
    theta = np.array([1.0, -1.0, 0.3])
    # g = [0.5, 0.5, 1] / 1 + 1.0 * [1, -1, 0] = [1.5, -0.5, 1]
    # theta - 0.2 g = [0.7, -0.9, 0.1]; soft-threshold 0.2 * 1.0 on coef -> [0.5, -0.7]
    sgd_step(theta, np.array([0.5, 0.5, 1.0]), 1, 0.2, p)
    np.testing.assert_allclose(theta, [0.5, -0.7, 0.1])


def test_sgd_step_doc_example():
    p = Problem(SquaredLoss(), NoPenalty(), False, n=4, d=2)
    assert sgd_step(np.zeros(2), np.array([2.0, 4.0]), 2, 0.5, p).tolist() == [-0.5, -1.0]


# ============================================================================================
# StopCriteria
# ============================================================================================
@pytest.mark.parametrize(
    "kw",
    [
        {"max_updates": 10},
        {"max_epochs": 2},
        {"max_epochs": 0.5},
        {"time_budget": 1.5},
        {"tol": 1e-3},
        {"gtol": 1e-4},
        {"max_updates": 1, "check_every": 3},
    ],
)
def test_stop_criteria_valid(kw):
    s = StopCriteria(**kw)
    for k, v in kw.items():
        assert getattr(s, k) == v


@pytest.mark.parametrize("kw", [{}, {"check_every": 5}])
def test_stop_criteria_nothing_given(kw):
    with pytest.raises(ValueError, match="stopping"):
        StopCriteria(**kw)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_updates", 0),
        ("max_updates", -3),
        ("max_epochs", 0.0),
        ("max_epochs", float("inf")),
        ("time_budget", -1.0),
        ("time_budget", float("nan")),
        ("tol", 0.0),
        ("gtol", -1e-6),
        ("check_every", 0),
    ],
)
def test_stop_criteria_non_positive(name, value):
    kw = {name: value}
    if name == "check_every":
        kw["max_updates"] = 5
    with pytest.raises(ValueError, match=name):
        StopCriteria(**kw)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_updates", 1.5),
        ("max_updates", True),
        ("max_updates", "10"),
        ("max_epochs", "2"),
        ("time_budget", [1.0]),
        ("tol", False),
        ("gtol", "1e-3"),
        ("check_every", 2.0),
    ],
)
def test_stop_criteria_wrong_type(name, value):
    kw = {name: value, "max_epochs": 1.0} if name != "max_epochs" else {name: value}
    with pytest.raises(TypeError, match=name):
        StopCriteria(**kw)


def test_target_objective_stops_the_run_once_a_check_reaches_it(client):
    data = daskasync.PartitionedData.synthetic(n=4000, d=10, n_partitions=4, seed=5,
                                               client=client)
    first = daskasync.minimize(data, solver="asgd", max_epochs=3, lam=1e-2)
    target = first.objective * 1.05  # reached within the first epochs
    res = daskasync.minimize(data, solver="asgd", max_epochs=200, lam=1e-2,
                             target_objective=target)
    assert res.stop_reason == "target_objective" and res.converged
    assert res.epochs < 200
    with pytest.raises(ValueError, match="target_objective"):
        daskasync.minimize(data, solver="asgd", target_objective=float("nan"))
    data.release()
