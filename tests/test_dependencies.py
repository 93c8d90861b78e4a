"""Declared dependencies are true: every third-party module the package imports is declared in
pyproject.toml (the peers' packages in the ``bench`` extra, imported lazily), and what the
declared versions must provide is there (run by CI against the lowest of them too)."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "daskasync"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: the optional packages of the peers: declared in the bench extra only
BENCH_ONLY = {"dask_glm", "dask_ml"}
#: imported only inside a running IPython (plotting's notebook display): a requirement of
#: ipywidgets, which is declared
IN_IPYTHON_ONLY = {"IPython": "ipywidgets"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imports() -> dict[str, list[tuple[str, bool]]]:
    """Top-level module -> ``(file:line, at module level)`` of each import in the package."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        top_level = {id(n) for n in tree.body}
        top_level |= {id(c) for n in tree.body if isinstance(n, ast.Try | ast.If)
                      for c in ast.walk(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for n in names:
                found.setdefault(n.split(".")[0], []).append((where, id(node) in top_level))
    return found


def test_every_imported_module_is_declared():
    third_party = {m: w for m, w in _imports().items()
                   if m not in sys.stdlib_module_names and m != "daskasync"}
    dists = importlib.metadata.packages_distributions()
    main = {_name(r) for r in PROJECT["dependencies"]}
    bench = {_name(r) for r in PROJECT["optional-dependencies"]["bench"]}
    undeclared = {}
    for module, where in sorted(third_party.items()):
        # a module not installed (the peers' packages may not be): its usual distribution
        names = {_name(d) for d in dists.get(module, [module])}
        if module in IN_IPYTHON_ONLY:
            requires = importlib.metadata.requires(IN_IPYTHON_ONLY[module]) or []
            assert names & {_name(r) for r in requires}, (module, requires)
            continue
        declared = main | bench if module in BENCH_ONLY else main
        if not names & declared:
            undeclared[module] = (sorted(names), where[0][0])
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    assert {"bokeh", "ipywidgets"} <= main  # the dashboard and the notebook progress bars


def test_peer_packages_are_imported_lazily():
    at_module_level = [w for m in BENCH_ONLY for w, top in _imports().get(m, []) if top]
    assert not at_module_level, f"import of a bench-only package at import time: {at_module_level}"
    assert BENCH_ONLY <= set(_imports())


def test_a_missing_peer_package_names_the_bench_extra(client):
    from daskasync.bench.peers import run_peer
    from daskasync.data import PartitionedData

    missing = [m for m in sorted(BENCH_ONLY) if importlib.util.find_spec(m) is None]
    if not missing:
        pytest.skip("dask-glm and dask-ml are installed")
    peer = {"dask_glm": "dask-glm-lbfgs", "dask_ml": "dask-ml-sgd"}[missing[0]]
    X = np.random.default_rng(0).normal(size=(40, 3))
    data = PartitionedData.from_arrays(X, np.sign(X[:, 0]), n_partitions=2, client=client)
    try:
        with pytest.raises(ImportError, match=r"pip install 'daskasync\[bench\]'"):
            run_peer(peer, data, lam=0.1, time_budget=1.0)
    finally:
        data.release()


def test_the_dashboard_serves_with_the_installed_bokeh():
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as c:
        port = c.scheduler_info()["services"]["dashboard"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as page:
            assert page.status == 200
            assert b"Bokeh.embed" in page.read()  # a Bokeh document, not "install bokeh"


@pytest.mark.parametrize("module", sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")))
def test_every_module_imports(module):
    """Each module imports with the installed versions (CI: the lowest declared too); the
    peers' packages are optional and imported lazily."""
    importlib.import_module(module)
