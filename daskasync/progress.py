"""What a user sees while a run goes: a progress bar and a per-record callback.

The bar is a widget in Jupyter (``tqdm.notebook``, with ipywidgets) and one line redrawn in
place elsewhere (``tqdm`` on stderr). It counts applied updates and shows the epoch, the last
full-data objective and the staleness of recent results.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

__all__ = ["RunInfo", "ProgressBar"]


@dataclass(frozen=True)
class RunInfo:
    """A snapshot handed to ``callback`` at each history record (and at the end)."""

    time: float  #: seconds since the run (or the run it continues) started
    update: int  #: applied updates
    epoch: float  #: passes over the data
    objective: float  #: last full-data objective known (NaN until the first check)
    mean_staleness: float  #: mean staleness of results applied since the previous record
    max_staleness: int
    theta: np.ndarray  #: a copy of the model ``[w, b]``
    done: bool = False  #: True for the final call


class ProgressBar:
    """A tqdm bar over applied updates (``total`` from ``max_updates`` or ``max_epochs``).

    In a Jupyter kernel (and without ``file``) the bar is a widget; without ipywidgets it
    is one text line on stdout, redrawn in place (no warning, nothing on stderr).
    Elsewhere it is one line on ``file`` (default stderr) redrawn in place, which stays on
    screen when the bar closes.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar("sgd", total=10, file=out)
    >>> bar.update(10, epoch=1.0, objective=0.5, staleness=0.0)
    >>> bar.close()
    >>> "10/10" in out.getvalue() and "obj=0.5" in out.getvalue()
    True
    """

    def __init__(
        self, solver: str, total: int | None, *, initial: int = 0, file: IO[str] | None = None
    ) -> None:
        bar, out = _bar_class(file)
        self._bar: Any = bar(
            total=total,
            initial=initial,
            desc=solver,
            unit="upd",
            file=out,
            dynamic_ncols=True,
            leave=True,
        )
        self._n = initial

    def update(self, updates: int, *, epoch: float, objective: float, staleness: float) -> None:
        post = {"epoch": f"{epoch:.2f}", "stale": f"{staleness:.1f}"}
        if np.isfinite(objective):
            post["obj"] = f"{objective:.6g}"
        self._bar.set_postfix(post, refresh=False)
        self._bar.update(updates - self._n)
        self._n = updates

    def close(self) -> None:
        self._bar.close()


def _bar_class(file: IO[str] | None) -> tuple[Any, IO[str]]:
    """The tqdm class and stream of a bar: the notebook widget in a Jupyter kernel with
    ipywidgets, text on stdout in one without, text on ``file`` (or stderr) elsewhere."""
    from tqdm.std import tqdm

    if file is not None or not in_notebook():
        return tqdm, file if file is not None else sys.stderr
    try:
        import ipywidgets  # noqa: F401  (what tqdm.notebook draws with)
    except ImportError:
        return tqdm, sys.stdout
    from tqdm.notebook import tqdm as notebook_tqdm

    return notebook_tqdm, sys.stdout


def in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel (where rich output is displayed)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
