"""The documentation: every Python block of README.md and docs/*.md runs as written, and the
site builds with Sphinx, warnings treated as errors.

The blocks of one file run in order, in one namespace whose ``__name__`` is ``"__main__"``
(as in a script or a notebook), in a fresh Python process whose current folder is a
temporary one; each block starts the LocalCluster it needs, as a reader's copy would. A
block that cannot run here (it needs a remote scheduler, a batch queue, a cloud account or
TLS certificates) is skipped only when the line just above its fence is the marker

    <!-- docs-test: skip (why) -->

(invisible on GitHub and in the Sphinx site). ``SKIPPED`` pins how many blocks carry it, so
a new one is a deliberate change.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SKIP_MARKER = "<!-- docs-test: skip"
#: blocks marked with SKIP_MARKER, by file (remote scheduler, TLS files, SLURM, EC2, GCP)
SKIPPED = {"deployment.md": 5}

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")

#: what the child process runs: each block compiled under the document's name, padded so
#: that a traceback's line numbers are the document's
_RUNNER = """
import json, sys
path, blocks = sys.argv[1], json.loads(sys.stdin.read())
namespace = {"__name__": "__main__"}
for line, code in blocks:
    print(f"--- {path}:{line}", flush=True)
    exec(compile("\\n" * (line - 1) + code, path, "exec"), namespace)
"""


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """The ```python blocks of a markdown text: ``(line of the first code line, code,
    skipped)``, ``skipped`` when the line above the fence is the skip marker."""
    out: list[tuple[int, str, bool]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        end = next((j for j in range(i + 1, len(lines))
                    if lines[j].strip().startswith(fence)
                    and not lines[j].strip().strip(fence[0])), len(lines))
        if info.split()[:1] == ["python"]:
            skipped = i > 0 and lines[i - 1].strip().startswith(SKIP_MARKER)
            code = "\n".join(x[indent:] for x in lines[i + 1:end]) + "\n"
            out.append((i + 2, code, skipped))
        i = end + 1
    return out


def test_blocks_are_found_with_their_lines_and_skip_markers():
    text = ("# t\n\n```python\nx = 1\n```\n\n<!-- docs-test: skip (remote) -->\n"
            "```python\nraise SystemExit\n```\n````md\n```python\nnot code\n```\n````\n"
            "```bash\nls\n```\n1. item\n\n   ```python\n   if x:\n       y = 2\n   ```\n")
    assert python_blocks(text) == [(4, "x = 1\n", False), (9, "raise SystemExit\n", True),
                                   (22, "if x:\n    y = 2\n", False)]


def test_every_document_has_runnable_blocks_and_few_skips():
    skipped = {p.name: sum(s for *_, s in python_blocks(p.read_text())) for p in DOCUMENTS}
    assert {k: v for k, v in skipped.items() if v} == SKIPPED
    assert sum(not s for p in DOCUMENTS for *_, s in python_blocks(p.read_text())) >= 20


def run_blocks(path: Path, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the blocks of ``path`` not marked to skip, in order, in one namespace, in a
    fresh process whose current folder is ``cwd``."""
    blocks = [(line, code) for line, code, skip in python_blocks(path.read_text())
              if not skip]
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, str(path)], input=json.dumps(blocks), cwd=cwd,
        capture_output=True, text=True, timeout=timeout,
    )


def test_a_failing_block_fails_with_the_documents_line(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("```python\nx = 1\n```\n\ntext\n\n```python\ny = x + 1\nz = undefined\n```\n")
    proc = run_blocks(doc, tmp_path)
    assert proc.returncode != 0
    assert f'File "{doc}", line 9' in proc.stderr and "NameError" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_python_blocks_run_as_written(path, tmp_path):
    if not any(not s for *_, s in python_blocks(path.read_text())):
        pytest.skip(f"{path.name} has no Python block to run")
    proc = run_blocks(path, tmp_path)
    assert proc.returncode == 0, (
        f"a block of {path.name} failed (the last '---' line of stdout names it):\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")


@pytest.mark.slow
def test_sphinx_html_build_has_no_warnings(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         str(REPO / "docs"), str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        print(proc.stdout)
        print(proc.stderr, file=sys.stderr)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr[-5000:]}"
    api = tmp_path / "api.html"
    assert api.exists()
    assert "LogisticRegression" in api.read_text(encoding="utf-8")
