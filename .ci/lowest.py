"""Print pip constraints pinning every direct dependency of pyproject.toml to its lower bound.

``python .ci/lowest.py > lowest.txt`` then ``pip install -c lowest.txt -e .`` installs the
oldest versions the package declares it works with (``numpy>=1.24`` becomes
``numpy==1.24``, which pip reads as 1.24.0), so that CI tests the bounds it publishes. A
dependency without a ``>=`` lower bound is an error: every bound must be tested.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

_REQ = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9A-Za-z.]*)\s*$")


def lowest(requirements: list[str]) -> list[str]:
    """``name==lower`` for each ``name[extras]>=lower`` requirement."""
    out = []
    for req in requirements:
        m = _REQ.match(req.split(";")[0])
        if m is None:
            raise SystemExit(f"{req!r}: give every dependency a plain '>=' lower bound")
        out.append(f"{m.group(1)}=={m.group(2)}")
    return out


def main() -> int:
    path = Path(__file__).resolve().parents[1] / "pyproject.toml"
    with open(path, "rb") as fh:
        project = tomllib.load(fh)["project"]
    print("\n".join(lowest(project["dependencies"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
