"""The shape of the package, checked: functions a reader can hold in view, small modules,
no import cycle, the engine's contract public, and only public names of distributed."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "daskasync"
MAX_FUNCTION_LINES = 100
MAX_MODULE_LINES = 600


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path, ast.parse(path.read_text(), filename=str(path)))
    return out


MODULES = _modules()


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function without its docstring."""
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
        first.value.value, str
    ):
        if len(body) == 1:
            return 0
        first = body[1]
    return node.end_lineno - first.lineno + 1


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, tree: ast.Module) -> set[str]:
    """Modules of the package that ``module`` imports (anywhere in its body)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m in MODULES and m != module}


def test_no_function_is_longer_than_a_reader_can_hold():
    long = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({_body_lines(node)})"
        for path, tree in MODULES.values()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and _body_lines(node) > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_module_is_too_long():
    big = {str(p.relative_to(PACKAGE.parent)): n for p, _ in MODULES.values()
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_no_import_cycle():
    graph = {m: _imports(m, p, t) for m, (p, t) in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_check_can_fail():
    """The graph sees function-local and relative imports (a cycle made of them counts)."""
    tree = ast.parse("def f():\n    from .api import minimize\n")
    assert "daskasync.api" in _imports("daskasync.cli", PACKAGE / "cli.py", tree)


def test_nothing_outside_the_engine_calls_its_private_methods():
    calls = []
    for path, tree in MODULES.values():
        if "engine" in path.relative_to(PACKAGE).parts[:-1]:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and re.search(r"\bengine\b|\beng\b", ast.unparse(node.value))):
                calls.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                             f"{ast.unparse(node)}")
    assert not calls, f"private engine names used outside daskasync/engine: {calls}"


def test_only_public_names_of_distributed():
    """``from distributed import X`` only: no import of ``distributed.client``,
    ``distributed.comm``, ``distributed.core`` or any other module inside distributed."""
    used = []
    for path, tree in MODULES.values():
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            used += [f"{path.relative_to(PACKAGE.parent)}: {n}" for n in names
                     if n.startswith("distributed.")]
    assert not used, f"imports of distributed's submodules: {used}"


def test_no_direct_scheduler_rpc():
    """The scheduler is asked through documented ``Client`` methods (``who_has``,
    ``scheduler_info``...), never through the client's RPC handle ``client.scheduler.<op>(...)``
    (an internal interface); its ``address`` is public."""
    calls = []
    for path, tree in MODULES.values():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Attribute)
                    and node.func.value.attr == "scheduler"):
                calls.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                             f"{ast.unparse(node.func)}")
    assert not calls, f"RPCs to the scheduler outside Client's public methods: {calls}"


def test_workers_import_daskasync_without_scikit_learn():
    """A worker imports daskasync with its first task: the package leaves scikit-learn (a
    second to import) to the estimators and the LIBSVM reader, loaded on first use."""
    code = (
        "import sys, daskasync\n"
        "assert 'sklearn' not in sys.modules, 'imported with daskasync'\n"
        "assert {'LogisticRegression', 'LinearRegression'} <= set(dir(daskasync))\n"
        "from daskasync import LogisticRegression\n"
        "assert daskasync.LogisticRegression is LogisticRegression\n"
        "assert LogisticRegression.__module__ == 'daskasync.estimators.linear'\n"
        "assert 'sklearn' in sys.modules\n"
        "try:\n"
        "    daskasync.NoSuchName\n"
        "except AttributeError as e:\n"
        "    assert 'NoSuchName' in str(e)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
