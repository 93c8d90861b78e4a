"""Peer solvers of the benchmark: each minimizes our objective (same f* as
``reference_solution``), traces are monotone in time, arguments are checked up front and
nothing is left on the cluster."""

from __future__ import annotations

import gc
import itertools
import time

import numpy as np
import pytest
from conftest import scheduler_keys
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from daskasync.bench.peers import PEERS, evaluate_objective, run_peer
from daskasync.bench.peers.common import REFINE
from daskasync.data import PartitionedData
from daskasync.penalties import L2
from daskasync.problem import relative_suboptimality
from daskasync.reference import objective, reference_solution

pytest.importorskip("dask_glm")
pytest.importorskip("dask_ml")

LAM = 1e-2
N, D = 2000, 20


def _keys(client) -> set[str]:
    return set(scheduler_keys(client))


def _wait_for_keys(client, expected: set[str], timeout: float = 10.0) -> set[str]:
    """Keys beyond ``expected`` still on the scheduler after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        extra = _keys(client) - expected
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


def _check_trace(run, f_star: float) -> np.ndarray:
    times = np.asarray(run.times)
    assert times[0] == 0.0 and np.all(np.diff(times) >= 0), times
    assert len(run.times) == len(run.objectives) >= 2
    sub = run.relative_suboptimality(f_star)
    assert np.all(sub > -1e-9), sub  # nobody beats the reference optimum
    return sub


def _check_crossings_bisected(run, f_star: float) -> None:
    """Every power of ten the restart trace crosses lies between two runs at most one
    iteration or an eighth of the shorter run's max_iter apart."""
    sub = {r["max_iter"]: relative_suboptimality(r["objective"], f_star)
           for r in run.info["runs"]}
    ks = sorted(sub)
    crossed = 0
    for j in range(1, 13):
        tau = 10.0**-j
        if not sub[ks[0]] > tau >= min(sub.values()):
            continue
        crossed += 1
        assert any(sub[lo] > tau >= sub[hi] and hi - lo <= max(1, lo // REFINE)
                   for lo, hi in itertools.pairwise(ks)), (tau, sub)
    assert crossed >= 3


@pytest.fixture
def epsilon(client):
    with PartitionedData.synthetic("epsilon", n=N, d=D, n_partitions=4, client=client) as data:
        X, y = data.gather()
        w, f = reference_solution(X, y, "logistic", L2(LAM))
        yield data, X, y, w, f


@pytest.fixture
def small(client):
    with PartitionedData.synthetic("epsilon", n=200, d=5, n_partitions=2, client=client) as data:
        yield data


@pytest.fixture
def regression(client):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 8))
    y = X @ rng.normal(size=8) + 0.5 * rng.normal(size=1000) + 1.5
    with PartitionedData.from_arrays(X, y, n_partitions=4, client=client) as data:
        Xs, ys = data.gather()
        yield data, Xs, ys


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #
def test_registry_names():
    assert set(PEERS) == {
        "dask-glm-lbfgs", "dask-glm-gradient_descent", "dask-glm-admm",
        "dask-glm-proximal_grad", "dask-ml-sgd", "sklearn-saga", "sklearn-lbfgs",
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "dask-glm-newton"}, r"unknown peer 'dask-glm-newton'.*dask-glm-admm"),
        ({"lam": 0.0}, "^lam: must be a positive number, got"),
        ({"lam": -1.0}, "^lam: must be a positive number, got"),
        ({"lam": float("nan")}, "^lam: must be a positive number, got"),
        ({"time_budget": 0}, "^time_budget: must be a positive number, got"),
        ({"time_budget": -5.0}, "^time_budget: must be a positive number, got"),
        ({"loss": "hinge"}, "^loss"),
        ({"name": "sklearn-lbfgs", "loss": "squared"}, "sklearn-lbfgs supports"),
        ({"fit_intercept": True}, "fit_intercept: dask-glm-lbfgs"),
        ({"target": 1e-3}, "target needs f_star"),
        ({"target": 0.0, "f_star": 0.5}, "^target: must be a positive number or None, got 0.0"),
        ({"max_iter": 0}, "^max_iter"),
        ({"options": {"rho": 2.0}}, r"does not accept \['rho'\]"),
        ({"name": "dask-glm-proximal_grad", "options": {"l2": "l1"}}, "'l2'"),
    ],
)
def test_invalid_arguments_raise_before_any_work(client, small, kwargs, match):
    data = small
    before = _keys(client)
    args = {"name": "dask-glm-lbfgs", "lam": LAM, **kwargs}
    with pytest.raises(ValueError, match=match):
        run_peer(args.pop("name"), data, **args)
    assert not _keys(client) - before  # nothing was submitted


def test_logistic_needs_pm1_labels(client, regression):
    with pytest.raises(ValueError, match=r"labels in \{-1, \+1\}"):
        run_peer("sklearn-saga", regression[0], lam=LAM)


def test_evaluate_objective_matches_driver(client, epsilon):
    data, X, y, w, f = epsilon
    assert evaluate_objective(data, w, lam=LAM) == pytest.approx(f, rel=1e-13)
    v = np.linspace(-1, 1, D)
    assert evaluate_objective(data, v, lam=LAM, intercept=0.3) == pytest.approx(
        objective(X, y, np.append(v, 0.3), "logistic", L2(LAM), fit_intercept=True),
        rel=1e-13)


# --------------------------------------------------------------------------- #
# dask-glm: lamduh = n * lam on the summed {0, 1} logistic loss, all four reach f*
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("algorithm", ["lbfgs", "admm", "gradient_descent", "proximal_grad"])
def test_dask_glm_reaches_f_star(client, epsilon, algorithm):
    data, X, y, w_star, f_star = epsilon
    before = _keys(client)
    run = run_peer(f"dask-glm-{algorithm}", data, lam=LAM, f_star=f_star, target=1e-8,
                   time_budget=20.0)
    sub = _check_trace(run, f_star)
    assert run.info["lamduh"] == pytest.approx(N * LAM)
    assert run.info["stopped"] in ("target", "solver_stopped")
    assert sub[-1] < 1e-6
    # the same minimizer, not just a close value: a lam off by 2x moves w by ~10%
    assert np.linalg.norm(run.coef - w_star) / np.linalg.norm(w_star) < 1e-3
    assert evaluate_objective(data, run.coef, lam=LAM) == run.objectives[-1]
    assert not _wait_for_keys(client, before)


def test_dask_glm_least_squares_mapping(client, regression):
    """Normal family: sum of squares = 2 n x ours, so lamduh = 2 n lam."""
    data, X, y = regression
    w_star, f_star = reference_solution(X, y, "squared", L2(LAM))
    run = run_peer("dask-glm-lbfgs", data, lam=LAM, loss="squared", f_star=f_star,
                   target=1e-9, time_budget=10.0)
    _check_trace(run, f_star)
    assert run.info["lamduh"] == pytest.approx(2 * data.n * LAM)
    assert np.linalg.norm(run.coef - w_star) / np.linalg.norm(w_star) < 1e-5


@pytest.mark.slow  # numba compiles sparse.COO kernels on each worker in the warm-up run
def test_dask_glm_sparse_blocks_as_coo(client):
    with PartitionedData.synthetic("rcv1", n=1000, d=30, n_partitions=3,
                                   client=client) as data:
        X, y = data.gather()
        w_star, f_star = reference_solution(X, y, "logistic", L2(LAM))
        run = run_peer("dask-glm-lbfgs", data, lam=LAM, f_star=f_star, target=1e-8)
        assert run.info["x_chunks"] == "coo"
        assert _check_trace(run, f_star)[-1] < 1e-6


# --------------------------------------------------------------------------- #
# dask-ml Incremental SGD: alpha = lam
# --------------------------------------------------------------------------- #
def test_dask_ml_sgd_alpha_is_lam(client, epsilon):
    data, X, y, w_star, f_star = epsilon
    before = _keys(client)
    run = run_peer("dask-ml-sgd", data, lam=LAM, f_star=f_star, max_iter=12, seed=3)
    sub = _check_trace(run, f_star)
    assert run.iterations == len(run.times) - 1 == 12
    assert run.step_size == pytest.approx(LAM ** -0.25)
    # the minimizer of a mis-scaled objective (alpha = lam / 2) is this far from f*:
    w_half, _ = reference_solution(X, y, "logistic", L2(LAM / 2))
    gap_half = (objective(X, y, w_half, "logistic", L2(LAM)) - f_star) / f_star
    assert sub[-1] < gap_half / 10, (sub[-1], gap_half)
    assert not _wait_for_keys(client, before)


def test_dask_ml_sgd_target_and_intercept(client, regression):
    data, X, y = regression
    theta, f_star = reference_solution(X, y, "squared", L2(LAM), fit_intercept=True)
    run = run_peer("dask-ml-sgd", data, lam=LAM, loss="squared", fit_intercept=True,
                   f_star=f_star, target=1e-2, max_iter=50)
    assert run.info["stopped"] == "target"
    assert _check_trace(run, f_star)[-1] <= 1e-2
    assert run.intercept == pytest.approx(theta[-1], abs=0.2)


# --------------------------------------------------------------------------- #
# scikit-learn on the driver: C = 1 / (lam n), Ridge alpha = n lam
# --------------------------------------------------------------------------- #
@pytest.fixture
def cancer(client):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = np.where(y == 1, 1.0, -1.0)
    with PartitionedData.from_arrays(X, y, n_partitions=4, client=client) as data:
        yield data, X, y


@pytest.mark.parametrize("solver", ["lbfgs", "saga"])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_sklearn_reaches_f_star(client, cancer, solver, fit_intercept):
    data, X, y = cancer
    lam = 1.0 / data.n
    theta, f_star = reference_solution(X, y, "logistic", L2(lam), fit_intercept=fit_intercept)
    run = run_peer(f"sklearn-{solver}", data, lam=lam, f_star=f_star, target=1e-7,
                   fit_intercept=fit_intercept, time_budget=20.0)
    assert run.info["C"] == pytest.approx(1.0)
    assert _check_trace(run, f_star)[-1] <= 1e-7
    doubling = [r["max_iter"] for r in run.info["runs"] if not r.get("refined")]
    assert doubling == [2**k for k in range(len(doubling))]
    _check_crossings_bisected(run, f_star)
    if fit_intercept:
        assert run.intercept == pytest.approx(theta[-1], abs=1e-3)


def test_sklearn_saga_ridge(client, regression):
    data, X, y = regression
    w_star, f_star = reference_solution(X, y, "squared", L2(LAM))
    run = run_peer("sklearn-saga", data, lam=LAM, loss="squared", f_star=f_star, target=1e-10)
    assert run.info["alpha"] == pytest.approx(data.n * LAM)
    assert _check_trace(run, f_star)[-1] <= 1e-10


# --------------------------------------------------------------------------- #
# stopping rules
# --------------------------------------------------------------------------- #
def test_restart_schedule_stops_on_time_budget(client, epsilon):
    data, *_, f_star = epsilon
    run = run_peer("dask-glm-admm", data, lam=LAM, time_budget=0.05,
                   options={"abstol": 0.0, "reltol": 0.0})
    assert run.info["stopped"] == "time_budget"
    assert run.info["runs"][-1]["seconds"] >= 0.05
    assert all(r["seconds"] < 0.05 for r in run.info["runs"][:-1])
    _check_trace(run, f_star)


def test_max_iter_caps_the_schedule(client, epsilon):
    data, *_, f_star = epsilon
    run = run_peer("sklearn-saga", data, lam=LAM, max_iter=3)
    assert [r["max_iter"] for r in run.info["runs"]] == [1, 2, 3]
    assert run.info["stopped"] == "max_iter" and run.iterations == 3


def test_proximal_grad_l2_forms(client, epsilon):
    """Default: the L2 term in the smooth part (extra rows, identity prox); "prox":
    dask-glm's own L2 prox with lamduh = n lam."""
    data = epsilon[0]
    rows = run_peer("dask-glm-proximal_grad", data, lam=LAM, max_iter=1)
    prox = run_peer("dask-glm-proximal_grad", data, lam=LAM, max_iter=1, options={"l2": "prox"})
    assert rows.info["l2"] == "rows" and rows.info["solver_kwargs"]["lamduh"] == 0.0
    assert prox.info["l2"] == "prox"
    assert prox.info["solver_kwargs"]["lamduh"] == rows.info["lamduh"] == pytest.approx(N * LAM)
    assert rows.objectives[-1] < rows.objectives[0] and np.isfinite(prox.objectives[-1])


# --------------------------------------------------------------------------- #
# dask-glm's lbfgs traced by its loss evaluations, in one run
# --------------------------------------------------------------------------- #
def test_dask_glm_lbfgs_is_traced_by_its_evaluations(client, epsilon):
    """A point per loss evaluation of one run: the recorder leaves dask-glm's iterates as
    they are (the coefficients of an untraced run with the same max_iter), and the trace
    is the best objective evaluated so far."""
    import dask.array as da
    from dask_glm import algorithms, families, regularizers

    from daskasync.bench.peers.common import quiet_warnings

    data, X, y, w_star, f_star = epsilon
    run = run_peer("dask-glm-lbfgs", data, lam=LAM, f_star=f_star, max_iter=6)
    assert PEERS["dask-glm-lbfgs"].trace == "evaluations"
    assert run.info["stopped"] == "solver_stopped"
    evaluated = run.info["evaluated_objectives"]
    assert run.iterations == run.info["evaluations"] == len(evaluated) == len(run.times) - 1
    assert len(evaluated) >= 6  # at least one evaluation per iteration
    f0 = evaluate_objective(data, np.zeros(D), lam=LAM)
    assert run.objectives == np.minimum.accumulate([f0, *evaluated]).tolist()
    _check_trace(run, f_star)

    rows = tuple(int(m) for m in data.rows_per_partition)
    Xd = da.from_array(X, chunks=(rows, D))
    yd = da.from_array((y > 0).astype(float), chunks=(rows,))
    with client.as_current(), quiet_warnings():
        plain = algorithms.lbfgs(Xd, yd, family=families.Logistic, regularizer=regularizers.L2(),
                                 lamduh=N * LAM, max_iter=6, tol=1e-12 * N, normalize=False)
    np.testing.assert_allclose(run.coef, np.asarray(plain), rtol=1e-9, atol=1e-12)
    assert evaluate_objective(data, run.coef, lam=LAM) == min(evaluated)


def test_dask_glm_lbfgs_trace_stops_at_its_budget(client, epsilon):
    data, *_, f_star = epsilon
    run = run_peer("dask-glm-lbfgs", data, lam=LAM, time_budget=0.05, options={"tol": 0.0})
    assert run.info["stopped"] == "time_budget"
    assert run.info["evaluations"] >= 1 and max(run.times) < 0.05
    _check_trace(run, f_star)
