"""Bad input to `minimize` and `Engine`: a clear error naming the argument, raised before any
task reaches the cluster."""

from __future__ import annotations

import numpy as np
import pytest
from distributed import Client

import daskasync as da


@pytest.fixture(scope="module")
def vdata(cluster):
    with Client(cluster) as c:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(200, 4))
        y = np.sign(X[:, 0])
        data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=c)
        yield data
        data.release()


def _n_tasks(client):
    """Task transitions the scheduler has ever made: any submitted task moves it."""
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)


BAD = [
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


@pytest.mark.parametrize("kwargs, exc, name", BAD, ids=[b[2] + str(i) for i, b in enumerate(BAD)])
def test_bad_argument_is_refused_before_any_task(vdata, kwargs, exc, name):
    client = vdata.client
    before = _n_tasks(client)
    kw = {"max_updates": 5, **kwargs}
    with pytest.raises(exc, match=name):
        da.minimize(vdata, **kw)
    assert _n_tasks(client) == before  # nothing was submitted


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
    from conftest import free_port

    from daskasync.clusters import cluster_client

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ValueError, match=f"scheduler: cannot connect to '{address}'"):
        with cluster_client(address, 1, 1, timeout="2s"):
            pass
