"""The solver registry: the only list of names; a solver added with one module and one
registration is usable by minimize and the estimators (the example of
docs/architecture.md, run as written)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import daskasync as da
from daskasync.solvers import SOLVERS, Solver

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


@pytest.fixture(scope="module")
def gd():
    """The example solver of docs/architecture.md, registered by executing the page's code."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    (code,) = [b for b in blocks if "register_solver" in b]
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    yield namespace["GradientDescent"]
    SOLVERS.pop("gd", None)


def test_the_registry_is_the_list_of_names():
    assert {n: (c.synchronous, c.history) for n, c in SOLVERS.items() if n != "gd"} == {
        "sgd": (True, False), "asgd": (False, False), "saga": (True, True),
        "asaga": (False, True), "lbfgs": (True, False), "albfgs": (False, False),
    }
    assert SOLVERS["lbfgs"].penalties == ("none", "l2")
    with pytest.raises(ValueError, match="solver: unknown solver 'newton'"):
        da.get_solver("newton")


def test_registration_refuses_what_is_not_a_solver():
    with pytest.raises(TypeError, match="solver"):
        da.register_solver(int)

    class Nameless(Solver):
        pass

    with pytest.raises(TypeError, match="solver"):
        da.register_solver(Nameless)

    class Impostor(Solver):
        name = "saga"

    with pytest.raises(ValueError, match="already registered"):
        da.register_solver(Impostor)


def test_a_solver_from_the_docs_runs_in_minimize_and_the_estimators(client, gd):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = np.sign(X @ np.arange(1.0, 6.0) + 0.1 * rng.normal(size=400))
    data = da.PartitionedData.from_arrays(X, y, n_partitions=4, client=client)
    res = da.minimize(data, solver="gd", max_epochs=30)
    obj = res.history_array("objective")
    assert res.updates == 30 and obj[-1] < obj[0] and np.all(np.diff(obj) <= 1e-12)
    data.release()
    clf = da.LogisticRegression(solver="gd", max_iter=30, tol=None, client=client).fit(X, y)
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="combine: solver 'gd' does not take combine"):
        da.LogisticRegression(solver="gd", combine=0.5, client=client).fit(X, y)
