"""Bad input to `minimize`, the estimators, the loaders and the command line: an error naming
the argument (``ValueError`` or ``TypeError``; the parser's usage error for the command
line), raised before any task reaches the cluster, which the scheduler itself confirms
(:mod:`scheduler_probe`: no new key, no transition)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import pytest
import scheduler_probe
import scipy.sparse as sp
from distributed import Client
from sklearn.datasets import dump_svmlight_file

import daskasync as da
from daskasync.cli import main as cli_main


@dataclass
class Ctx:
    """What a case works with: a client, data on the cluster, arrays, LIBSVM files."""

    client: Client
    data: da.PartitionedData
    X: np.ndarray
    y: np.ndarray
    folder: Path
    sparse32: Any = None  #: float32 CSR data (set by the ``extra`` fixture)
    state: Any = None  #: a short run's state

    @property
    def svm(self) -> str:
        return str(self.folder / "part-0.svm")

    @property
    def address(self) -> str:
        return self.client.scheduler.address


@pytest.fixture(scope="module")
def ctx(cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = np.sign(X[:, 0])
    for i in range(2):
        dump_svmlight_file(X[100 * i:100 * (i + 1)], y[100 * i:100 * (i + 1)],
                           str(folder / f"part-{i}.svm"), zero_based=False)
    (folder / "notes.txt").write_text("this is not LIBSVM\n")
    with Client(cluster) as c:
        scheduler_probe.install(c)
        data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=c)
        yield Ctx(c, data, X, y, folder)
        data.release()


def _minimize(**kwargs: Any) -> Callable[[Ctx], Any]:
    return lambda c: da.minimize(c.data, **{"max_updates": 5, **kwargs})


def _fit(params: dict | None = None, X: Any = None, y: Any = None, kind: str = "logistic",
         method: str = "fit", **fit_kw: Any) -> Callable[[Ctx], Any]:
    """An estimator's ``fit`` (or ``partial_fit``) with ``params``, on the context's arrays
    unless ``X``/``y`` (a value or a function of the context) are given."""

    def call(c: Ctx) -> Any:
        cls = da.LogisticRegression if kind == "logistic" else da.LinearRegression
        est = cls(**{"client": c.client, "max_iter": 2, **(params or {})})
        Xv = c.X if X is None else (X(c) if callable(X) else X)
        yv = c.y if y is None else (y(c) if callable(y) else y)
        return getattr(est, method)(Xv, yv, **fit_kw)

    return call


def _predict(X: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
    """``predict`` of a model fitted without the cluster's help (coefficients set)."""

    def call(c: Ctx) -> Any:
        est = da.LogisticRegression(client=c.client)
        est.coef_, est.intercept_ = np.ones((1, 4)), np.zeros(1)
        est.classes_, est.n_features_in_ = np.array([-1.0, 1.0]), 4
        return est.predict(X(c))

    return call


def _arrays(X: Any = None, y: Any = None, **kw: Any) -> Callable[[Ctx], Any]:
    def call(c: Ctx) -> Any:
        Xv = c.X if X is None else (X(c) if callable(X) else X)
        yv = c.y if y is None else (y(c) if callable(y) else y)
        return da.PartitionedData.from_arrays(Xv, yv, client=c.client, **kw)

    return call


def _libsvm(path: Callable[[Ctx], Any], **kw: Any) -> Callable[[Ctx], Any]:
    return lambda c: da.PartitionedData.from_libsvm(path(c), client=c.client, **kw)


def _synthetic(kind: str = "epsilon", **kw: Any) -> Callable[[Ctx], Any]:
    return lambda c: da.PartitionedData.synthetic(kind, client=c.client,
                                                  **{"n": 100, "d": 5, **kw})


def _cli(*argv: str, scheduler: bool = True) -> Callable[[Ctx], Any]:
    """``daskasync ARGV`` on the test cluster (``--scheduler``)."""
    return lambda c: cli_main([argv[0], *(["--scheduler", c.address] if scheduler else []),
                               *argv[1:]])


def _nan(c: Ctx) -> np.ndarray:
    X = c.X.copy()
    X[3, 1] = np.nan
    return X


def _inf_sparse(c: Ctx) -> sp.csr_matrix:
    X = sp.csr_matrix(c.X.astype(np.float32))
    X.data[0] = np.inf
    return X


def _with(X: np.ndarray, i: int, value: float) -> np.ndarray:
    out = X.copy()
    out.flat[i] = value
    return out


_MINIMIZE = [
    ({"solver": "newton"}, ValueError, "solver"),
    ({"solver": "lbfgs", "penalty": "l1"}, ValueError, "penalty"),
    ({"solver": "albfgs", "solver_options": {"quorum": 0.0}}, ValueError, "quorum"),
    ({"solver": "albfgs", "solver_options": {"patience": -0.5}}, ValueError, "patience"),
    ({"solver": "lbfgs", "solver_options": {"memory": 0}}, ValueError, "memory"),
    ({"solver": "lbfgs", "solver_options": {"quorum": 0.5}}, ValueError, "solver_options"),
    ({"solver": "saga", "solver_options": {"memory": 5}}, ValueError, "solver_options"),
    ({"solver_options": [1]}, TypeError, "solver_options"),
    ({"loss": "hinge"}, ValueError, "loss"),
    ({"loss": "multinomial"}, ValueError, "y"),  # labels -1/+1 are not class indices
    ({"penalty": "l3"}, ValueError, "penalty"),
    ({"lam": -1.0}, ValueError, "lam"),
    ({"lam": float("nan")}, ValueError, "lam"),
    ({"penalty": "elasticnet", "l1_ratio": 2.0}, ValueError, "l1_ratio"),
    ({"fit_intercept": "yes"}, TypeError, "fit_intercept"),
    ({"batch_fraction": 0.0}, ValueError, "batch_fraction"),
    ({"batch_fraction": 1.5}, ValueError, "batch_fraction"),
    ({"batch_fraction": "all"}, TypeError, "batch_fraction"),
    ({"step_size": -0.1}, ValueError, "step_size"),
    ({"step_size": 0.0}, ValueError, "step_size"),
    ({"step_size": "big"}, ValueError, "step_size"),
    ({"step_schedule": "cosine", "step_size": 0.1}, ValueError, "step_schedule"),
    ({"max_updates": 0}, ValueError, "max_updates"),
    ({"max_epochs": -1.0}, ValueError, "max_epochs"),
    ({"time_budget": 0}, ValueError, "time_budget"),
    ({"tol": -1e-3}, ValueError, "tol"),
    ({"max_updates": 2.5}, TypeError, "max_updates"),
    ({"barrier": "hogwild"}, ValueError, "barrier"),
    ({"barrier": "quorum", "beta": 0.0}, ValueError, "beta"),
    ({"barrier": "quorum", "beta": 1.5}, ValueError, "beta"),
    ({"tau": -1}, ValueError, "tau"),
    ({"tau": 1.5}, TypeError, "tau"),
    ({"barrier": "ssp", "tau": 0}, ValueError, "tau"),
    ({"solver": "sgd", "barrier": "quorum"}, ValueError, "barrier"),
    ({"window": 0}, ValueError, "window"),
    ({"transport": "carrier-pigeon"}, ValueError, "transport"),
    ({"stragglers": "sometimes"}, ValueError, "stragglers"),
    ({"stragglers": "intensity", "straggler_c": -1.0}, ValueError, "straggler_c"),
    ({"warmup_tasks": -5}, ValueError, "warmup_tasks"),
    ({"theta0": np.zeros(3)}, ValueError, "theta0"),
    ({"theta0": np.full(4, np.nan)}, ValueError, "theta0"),
    ({"seed": "zero"}, TypeError, "seed"),
    ({"solver": "saga", "inner": "parallel"}, ValueError, "inner"),
    ({"solver": "saga", "loss": da.LogisticLoss.__new__(type("MyLoss", (da.LogisticLoss,),
                                                             {}))}, ValueError, "loss"),
    ({"record_every": 0}, ValueError, "record_every"),
    ({"staleness_aware": "yes"}, TypeError, "staleness_aware"),
    ({"solver": "saga", "combine": 1.5}, ValueError, "combine"),
    ({"solver": "saga", "combine": "search"}, ValueError, "combine"),
    ({"solver": "asgd", "combine": 0.5}, ValueError, "combine"),
    ({"solver": "asgd", "inner": "batch"}, ValueError, "inner"),
]


#: every kind of bad input: (id, the call, the error, what its message must name)
CASES: list[tuple[str, Callable[[Ctx], Any], type, str]] = [
    *[(f"minimize-{name}-{i}", _minimize(**kw), exc, name)
      for i, (kw, exc, name) in enumerate(_MINIMIZE)],
    # minimize: the data's float32 / sparse forms change nothing about the checks
    ("minimize-sparse-float32-lbfgs-l1",
     lambda c: da.minimize(c.sparse32, solver="lbfgs", penalty="l1"), ValueError, "penalty"),
    ("minimize-record_interval", _minimize(record_interval=0.0), ValueError,
     "record_interval"),
    ("minimize-checkpoint-type", _minimize(checkpoint=3), TypeError, "checkpoint"),
    ("minimize-history-type", _minimize(history=np.zeros(3)), TypeError, "history"),
    ("minimize-init-and-theta0", lambda c: da.minimize(
        c.data, solver="saga", init=c.state, theta0=np.zeros(4)), ValueError, "init"),
    ("minimize-target_objective", _minimize(target_objective="low"), TypeError,
     "target_objective"),
    ("minimize-gtol", _minimize(gtol=-1.0), ValueError, "gtol"),
    ("minimize-check_every", _minimize(check_every=0), ValueError, "check_every"),
    # the estimators: constructor parameters (checked at fit), fit / predict inputs
    ("est-C", _fit({"C": 0.0}), ValueError, "C"),
    ("est-C-type", _fit({"C": "big"}), TypeError, "C"),
    ("est-max_iter", _fit({"max_iter": 0}), ValueError, "max_iter"),
    ("est-tol", _fit({"tol": -1.0}), ValueError, "tol"),
    ("est-solver", _fit({"solver": "newton"}), ValueError, "solver"),
    ("est-penalty", _fit({"penalty": "l3"}), ValueError, "penalty"),
    ("est-lbfgs-l1", _fit({"solver": "lbfgs", "penalty": "l1"}), ValueError, "penalty"),
    ("est-l1_ratio", _fit({"penalty": "elasticnet", "l1_ratio": 2.0}), ValueError,
     "l1_ratio"),
    ("est-batch_fraction", _fit({"batch_fraction": 0.0}), ValueError, "batch_fraction"),
    ("est-tau", _fit({"tau": -2}), ValueError, "tau"),
    ("est-n_partitions", _fit({"n_partitions": 0}), ValueError, "n_partitions"),
    ("est-n_partitions-too-many", _fit({"n_partitions": 500}), ValueError, "n_partitions"),
    ("est-random_state", _fit({"random_state": "seed"}), TypeError, "random_state"),
    ("est-step_size", _fit({"step_size": -1.0}), ValueError, "step_size"),
    ("est-client", _fit({"client": "tcp://127.0.0.1:1"}), TypeError, "client"),
    ("est-verbose", _fit({"verbose": -1}), ValueError, "verbose"),
    ("est-combine", _fit({"solver": "saga", "combine": 2.0}), ValueError, "combine"),
    ("est-combine-lbfgs", _fit({"solver": "lbfgs", "combine": 0.5}), ValueError, "combine"),
    ("est-solver_options-type", _fit({"solver_options": "jacobi"}), TypeError,
     "solver_options"),
    ("est-solver_options-value", _fit({"solver": "lbfgs",
                                       "solver_options": {"precondition": "yes"}}),
     ValueError, "precondition"),
    ("est-barrier", _fit({"solver": "asgd", "barrier": "hogwild"}), ValueError, "barrier"),
    ("est-X-nan", _fit(X=_nan), ValueError, "X"),
    ("est-X-1d", _fit(X=lambda c: c.X[:, 0]), ValueError, "X"),
    ("est-X-strings", _fit(X=lambda c: c.X.astype(str).astype(object) + "x"), ValueError,
     "X"),
    ("est-y-2d", _fit(y=lambda c: np.stack([c.y, c.y], axis=1)), ValueError, "y"),
    ("est-n-mismatch", _fit(y=lambda c: c.y[:-1]), ValueError, "y"),
    ("est-single-class", _fit(y=lambda c: np.ones(len(c.y))), ValueError, "y"),
    ("est-continuous-labels", _fit(y=lambda c: c.X[:, 1]), ValueError, "y"),
    ("est-y-nan-regression", _fit(kind="linear", y=lambda c: _with(c.y, 5, np.nan)),
     ValueError, "y"),
    ("est-y-with-data", _fit(X=lambda c: c.data), TypeError, "y"),
    ("est-partial-classes", _fit(method="partial_fit", y=lambda c: np.where(c.y > 0, 2, 3),
                                 classes=[0, 1]), ValueError, "y"),
    ("est-files-glob", _fit(X=lambda c: str(c.folder / "none-*.svm"), y=lambda c: None),
     ValueError, "paths"),
    ("est-predict-features", _predict(lambda c: c.X[:, :3]), ValueError, "X"),
    ("est-predict-nan", _predict(_nan), ValueError, "X"),
    # the loaders: arrays (dask ones too), LIBSVM files and shards, synthetic data
    ("arrays-X-1d", _arrays(X=lambda c: c.X[:, 0]), ValueError, "X"),
    ("arrays-X-nan", _arrays(X=_nan), ValueError, "X"),
    ("arrays-X-inf-sparse-float32", _arrays(X=_inf_sparse), ValueError, "X"),
    ("arrays-X-empty", _arrays(X=np.zeros((0, 4)), y=np.zeros(0)), ValueError, "X"),
    ("arrays-X-strings", _arrays(X=lambda c: c.X.astype(str)), TypeError, "X"),
    ("arrays-y-2d", _arrays(y=lambda c: c.y[:, None]), ValueError, "y"),
    ("arrays-y-nan", _arrays(y=lambda c: _with(c.y, 7, np.nan)), ValueError, "y"),
    ("arrays-n-mismatch", _arrays(y=lambda c: c.y[:-3]), ValueError, "y"),
    ("arrays-y-sparse", _arrays(y=lambda c: sp.csr_matrix(c.y)), TypeError, "y"),
    ("arrays-n_partitions", _arrays(n_partitions=0), ValueError, "n_partitions"),
    ("arrays-n_partitions-type", _arrays(n_partitions=2.5), TypeError, "n_partitions"),
    ("arrays-n_partitions-too-many", _arrays(n_partitions=201), ValueError, "n_partitions"),
    ("arrays-shuffle", _arrays(shuffle="yes"), TypeError, "shuffle"),
    ("arrays-random_state", _arrays(random_state=1.5), TypeError, "random_state"),
    ("arrays-client", lambda c: da.PartitionedData.from_arrays(c.X, c.y, client="here"),
     TypeError, "client"),
    ("dask-X-column-chunks", _arrays(X=lambda c: dsa.from_array(c.X, chunks=(50, 2))),
     ValueError, "X"),
    ("dask-X-unknown-chunks", _arrays(X=lambda c: dsa.from_array(c.X, chunks=(50, 4))[
        dsa.from_array(c.X[:, 0] > -10, chunks=50)]), ValueError, "X"),
    ("dask-shuffle", _arrays(X=lambda c: dsa.from_array(c.X, chunks=(50, 4)), shuffle=True),
     ValueError, "shuffle"),
    ("dask-y-n-mismatch", _arrays(X=lambda c: dsa.from_array(c.X, chunks=(50, 4)),
                                  y=lambda c: dsa.from_array(c.y[:-1], chunks=50)),
     ValueError, "y"),
    ("libsvm-missing-file", _libsvm(lambda c: c.folder / "missing.svm"), FileNotFoundError,
     "missing.svm"),
    ("libsvm-not-libsvm", _libsvm(lambda c: c.folder / "notes.txt"), ValueError, "notes.txt"),
    ("libsvm-dtype", _libsvm(lambda c: c.svm, dtype="float16"), ValueError, "dtype"),
    ("libsvm-n_partitions", _libsvm(lambda c: c.svm, n_partitions=0), ValueError,
     "n_partitions"),
    ("shards-glob-matches-nothing", _libsvm(lambda c: str(c.folder / "none-*.svm")),
     ValueError, "paths"),
    ("shards-item-type", _libsvm(lambda c: [c.svm, 3]), TypeError, "paths"),
    ("shards-empty-list", _libsvm(lambda c: []), ValueError, "paths"),
    ("shards-missing-file", _libsvm(lambda c: [c.svm, str(c.folder / "gone.svm")]),
     FileNotFoundError, "gone.svm"),
    ("shards-shuffle", _libsvm(lambda c: str(c.folder / "part-*.svm"), shuffle=True),
     ValueError, "shuffle"),
    ("shards-n_partitions", _libsvm(lambda c: str(c.folder / "part-*.svm"), n_partitions=0),
     ValueError, "n_partitions"),
    ("synthetic-kind", _synthetic("mnist"), ValueError, "kind"),
    ("synthetic-n", _synthetic(n=0), ValueError, "n"),
    ("synthetic-d", _synthetic(d=-1), ValueError, "d"),
    ("synthetic-param", _synthetic(noise=-1.0), ValueError, "noise"),
    ("synthetic-unknown-param", _synthetic(bogus=1.0), TypeError, "bogus"),
    ("synthetic-seed", _synthetic(seed=-1), ValueError, "seed"),
    # the command line (the parser's usage error, exit status 2, names the option)
    ("cli-demo-epochs", _cli("demo", "--epochs", "0"), SystemExit, "--epochs"),
    ("cli-demo-targets", _cli("demo", "--targets", "2"), SystemExit, "--targets"),
    ("cli-demo-kind", _cli("demo", "--kind", "mnist"), SystemExit, "--kind"),
    ("cli-bench-targets", _cli("bench", "--targets", "2"), SystemExit, "--targets"),
    ("cli-bench-launches", _cli("bench", "--launches", "2"), SystemExit, "--launches"),
    ("cli-demo-data-missing", _cli("demo", "--data", "/nonexistent/file.svm"),
     ValueError, "data: no such file"),
    ("cli-bench-solver", _cli("bench", "--solvers", "newton", "--n", "100", "--d", "3",
                              "--partitions", "2"), ValueError, "solvers"),
    ("cli-bench-solver-option", _cli("bench", "--solvers", "asaga[speed=3]", "--n", "100",
                                     "--d", "3", "--partitions", "2"), ValueError, "solvers"),
]


@pytest.fixture(scope="module")
def extra(ctx):
    """Float32 sparse data, and a state to continue from."""
    X = sp.csr_matrix(ctx.X.astype(np.float32))
    ctx.sparse32 = da.PartitionedData.from_arrays(X, ctx.y, n_partitions=2, client=ctx.client)
    ctx.state = da.minimize(ctx.data, solver="saga", max_updates=2).state
    yield ctx
    ctx.sparse32.release()


def test_there_are_at_least_forty_kinds_across_the_entry_points():
    kinds = {case[0].split("-")[0] for case in CASES}
    assert {"minimize", "est", "arrays", "dask", "libsvm", "shards", "synthetic", "cli"} <= kinds
    assert len(CASES) >= 40 + len(_MINIMIZE)


@pytest.mark.parametrize(("call", "exc", "name"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_it_before_any_task(extra, call, exc, name):
    """The error's type, its message naming the argument, and the scheduler's word that
    nothing reached it (no new key, no transition)."""
    before = scheduler_probe.seen(extra.client)
    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(exc) as info:
        call(extra)
    text = err.getvalue() if exc is SystemExit else str(info.value)
    if exc is SystemExit:
        assert info.value.code == 2
    assert re.search(rf"(?<![\w-]){re.escape(name)}(?!\w)", text), f"{name!r} not in: {text}"
    assert scheduler_probe.seen(extra.client) == before, "something reached the scheduler"


def test_not_partitioned_data_is_refused():
    with pytest.raises(TypeError, match="data"):
        da.minimize(np.zeros((3, 3)))


def test_labels_that_do_not_fit_the_loss(cluster):
    with Client(cluster) as c:
        X = np.random.default_rng(1).normal(size=(50, 3))
        data = da.PartitionedData.from_arrays(X, np.arange(50.0) % 3, n_partitions=2, client=c)
        with pytest.raises(ValueError, match=r"y: the logistic loss needs labels in \{-1, \+1\}"):
            da.minimize(data, loss="logistic", max_updates=3)
        data.release()


def test_closed_client_is_refused(cluster):
    c = Client(cluster)
    data = da.PartitionedData.from_arrays(np.eye(4), np.array([1.0, -1, 1, -1]),
                                          n_partitions=2, client=c)
    c.close()
    with pytest.raises(ValueError, match="client"):
        da.minimize(data, max_updates=3)


def test_unreachable_scheduler_address_is_named():
    import socket

    from daskasync.clusters import cluster_client

    with socket.socket() as held:  # bound, never listening: refused, and no one can take it
        held.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{held.getsockname()[1]}"
        with pytest.raises(ValueError, match=f"scheduler: cannot connect to '{address}'"):
            with cluster_client(address, 1, 1, timeout="2s"):
                pass


def test_the_scheduler_check_sees_a_late_failure(ctx):
    """The check of the table can fail: an error raised after a task ran (here a
    ``from_arrays`` whose dask labels hold NaN, found by the block tasks) moves it."""
    before = scheduler_probe.seen(ctx.client)
    logged = _failed_computes(ctx.client)
    y = dsa.from_array(_with(ctx.y, 3, np.nan), chunks=50)
    with pytest.raises(ValueError, match="y contains NaN"):
        da.PartitionedData.from_arrays(dsa.from_array(ctx.X, chunks=(50, 4)), y,
                                       client=ctx.client)
    assert scheduler_probe.seen(ctx.client) != before
    # the block tasks say what is wrong instead of raising: no worker logged a traceback
    assert _failed_computes(ctx.client) == logged


def _failed_computes(client) -> set[str]:
    """Messages of the workers' "Compute Failed" log records (a task that raised)."""
    return {msg for lines in client.get_worker_logs().values() for _level, msg in lines
            if "Compute Failed" in msg}
