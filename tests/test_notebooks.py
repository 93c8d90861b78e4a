"""The notebooks in ``notebooks/`` run top to bottom as a user sees them: no error, no
warning, nothing on stderr (progress bars are widgets), and no file left behind (each
starts and closes its own LocalCluster; what it writes goes to a temporary folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 3, f"expected the notebooks in {ROOT / 'notebooks'}"


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _text(out) -> str:
    if out.get("output_type") == "stream":
        return out.get("text", "")
    return str(out.get("data", {}).get("text/plain", ""))


#: the one line tolerated, in the closing cell only: distributed's nanny kills a worker
#: process that takes more than 4 s to exit after ``cluster.close()``, which happens on a
#: heavily loaded machine (the process exit, not the notebook's work)
SLOW_EXIT = re.compile(r"^\S+ \S+ - distributed\.nanny - WARNING - Worker process still alive "
                       r"after [\d.]+ seconds, killing\n$")


def complaints(nb) -> list[str]:
    """What an executed notebook shows that a user should not see: errors, anything on
    stderr, and warnings (wherever printed)."""
    found = []
    last = max(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code")
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            kind = out.get("output_type")
            if kind == "error":
                found.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
            elif kind == "stream" and out.get("name") == "stderr":
                lines = out.get("text", "").splitlines(keepends=True)
                if i == last and lines and all(SLOW_EXIT.match(t) for t in lines):
                    continue
                found.append(f"cell {i}: stderr: {out.get('text', '')[:300]!r}")
            elif "Warning" in _text(out):
                found.append(f"cell {i}: a warning: {_text(out)[:300]!r}")
    return found


def test_complaints_catch_errors_stderr_and_warnings():
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output
    nb.cells = [
        nbformat.v4.new_code_cell(outputs=[out("stream", name="stdout", text="fine\n")]),
        nbformat.v4.new_code_cell(outputs=[out("stream", name="stderr", text="  0%|")]),
        nbformat.v4.new_code_cell(outputs=[out("stream", name="stdout",
                                               text="x.py:1: TqdmWarning: IProgress\n")]),
        nbformat.v4.new_code_cell(outputs=[out("error", ename="ValueError", evalue="bad",
                                               traceback=[])]),
    ]
    assert [c.split(":")[0] for c in complaints(nb)] == ["cell 1", "cell 2", "cell 3"]
    nb.cells = nb.cells[:1]
    assert complaints(nb) == []
    slow = ("2026-11-30 00:53:00,856 - distributed.nanny - WARNING - Worker process still "
            "alive after 4.0 seconds, killing\n")
    nb.cells.append(nbformat.v4.new_code_cell(outputs=[out("stream", name="stderr",
                                                           text=slow)]))
    assert complaints(nb) == []  # tolerated in the closing cell
    nb.cells.append(nbformat.v4.new_code_cell(outputs=[]))
    assert len(complaints(nb)) == 1  # not elsewhere


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_cleanly(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    # committed without outputs
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{path.name}: commit the notebook without outputs"
            )
    work = tmp_path / "cwd"  # the kernel's working folder
    work.mkdir()
    folder_before = _files(path.parent)
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
    )
    client.execute()  # raises CellExecutionError on the first cell that errs
    assert complaints(nb) == []
    assert _files(work) == set(), f"{path.name} left files in its working folder"
    assert _files(path.parent) == folder_before
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    if path.stem.endswith("quickstart"):
        images = [out for out in outputs if "image/png" in out.get("data", {})]
        assert images, "the quickstart should draw at least one figure"
        bars = [out for out in outputs if WIDGET in out.get("data", {})]
        assert bars, "the quickstart's progress bars should be widgets"
