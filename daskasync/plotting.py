"""Pictures of a run: objective against time and updates, the staleness histogram, and
per-worker task times (matplotlib), plus a live view for Jupyter."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .problem import relative_suboptimality
from .progress import RunInfo, in_notebook
from .result import FitResult

__all__ = ["plot_history", "LivePlot"]


def _result(obj: Any) -> FitResult:
    if isinstance(obj, FitResult):
        return obj
    res = getattr(obj, "result_", None)
    if isinstance(res, FitResult):
        return res
    raise TypeError(
        f"plot_history: expected a FitResult or a fitted daskasync estimator, got "
        f"{type(obj).__name__}"
    )


def plot_history(
    result: Any,
    *,
    f_star: float | None = None,
    label: str | None = None,
    axes: Any = None,
) -> Any:
    """Draw a run: objective (or relative suboptimality) against wall time and against
    updates, the staleness histogram of the applied results, and per-worker task times.

    Parameters
    ----------
    result : FitResult or fitted estimator
        A :func:`daskasync.minimize` result, or an estimator after ``fit`` (its
        ``result_``; the records of all its ``partial_fit`` calls are in ``history_``).
    f_star : float, optional
        Optimal objective: the curves then show ``(f - f_star) / |f_star|`` on a log scale.
    label : str, optional
        Legend label of this run in every panel (default: the solver's name). Call again
        with the same ``axes`` to overlay runs.
    axes : array of 4 matplotlib Axes, optional
        Where to draw (default: a new 2 x 2 figure).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from distributed import Client, LocalCluster
    >>> import daskasync
    >>> with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
    ...     with Client(cluster):
    ...         data = daskasync.PartitionedData.synthetic("epsilon", n=2000, d=10,
    ...                                                    n_partitions=4)
    ...         res = daskasync.minimize(data, solver="asgd", max_epochs=2)
    >>> fig = daskasync.plot_history(res)
    >>> [ax.get_title() for ax in fig.axes]
    ['Objective vs time', 'Objective vs updates', 'Staleness of applied results', 'Task time per worker']
    """
    import matplotlib.pyplot as plt

    res = _result(result)
    records = getattr(result, "history_", None) or res.history
    if axes is None:
        fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    axes = np.asarray(axes).ravel()
    if axes.size != 4:
        raise ValueError(f"axes: need 4 Axes, got {axes.size}")
    fig = axes[0].figure
    label = label or res.solver
    t = np.array([r.time for r in records])
    u = np.array([r.update for r in records])
    f = np.array([r.objective for r in records])
    ok = np.isfinite(f)
    if f_star is not None:
        f = _relative(f, f_star)
        ylabel, scale = "relative suboptimality", "log"
    else:
        ylabel, scale = "objective", "linear"
    for ax, x, xlabel, title in (
        (axes[0], t, "wall time (s)", "Objective vs time"),
        (axes[1], u, "applied updates", "Objective vs updates"),
    ):
        ax.plot(x[ok], f[ok], marker=".", label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_yscale(scale)
        ax.set_title(title)
        ax.legend()
    counts = res.staleness_counts
    ax = axes[2]
    if counts:
        ax.bar(list(counts), list(counts.values()), alpha=0.6, label=label)
    ax.set_xlabel("staleness (updates applied meanwhile)")
    ax.set_ylabel("results")
    ax.set_title("Staleness of applied results")
    _legend(ax)
    ax = axes[3]
    workers = list(res.worker_stats)
    times = [res.worker_stats[w]["mean_task_time"] * 1e3 for w in workers]
    names = [w.rsplit(":", 1)[-1] if ":" in w else w for w in workers]
    ax.barh(names, times, alpha=0.6, label=label)
    ax.set_xlabel("mean task time (ms)")
    ax.set_ylabel("worker (port)")
    ax.set_title("Task time per worker")
    _legend(ax)
    fig.tight_layout()
    return fig


class LivePlot:
    """A ``callback`` for :func:`daskasync.minimize` that draws the objective as the run
    goes: in Jupyter the figure updates in place (at most every ``interval`` seconds);
    elsewhere it only collects the points (``.times``, ``.updates``, ``.objectives``).

    The objective comes from the full-data checks that run alongside the run (about one
    per epoch), so the curve is live without slowing the run.

    Parameters
    ----------
    interval : float, default 0.5
        Minimum seconds between redraws.
    f_star : float, optional
        Draw the relative suboptimality on a log scale instead of the objective.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from distributed import Client, LocalCluster
    >>> import daskasync
    >>> live = daskasync.LivePlot()
    >>> with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
    ...     with Client(cluster):
    ...         data = daskasync.PartitionedData.synthetic("epsilon", n=2000, d=10,
    ...                                                    n_partitions=4)
    ...         res = daskasync.minimize(data, solver="asgd", max_epochs=3, callback=live)
    >>> live.done and live.objectives[-1] == res.objective
    True
    """

    def __init__(self, interval: float = 0.5, f_star: float | None = None) -> None:
        self.interval = float(interval)
        self.f_star = f_star
        self.times: list[float] = []
        self.updates: list[int] = []
        self.objectives: list[float] = []
        self.done = False
        self._fig: Any = None
        self._line: Any = None
        self._handle: Any = None
        self._last_draw = -float("inf")

    def __call__(self, info: RunInfo) -> None:
        if np.isfinite(info.objective):
            if self.times and info.time <= self.times[-1]:  # same moment: newer value
                self.updates[-1], self.objectives[-1] = info.update, info.objective
            elif info.done or not self.objectives or info.objective != self.objectives[-1]:
                self.times.append(info.time)  # a new check (records repeat the last one)
                self.updates.append(info.update)
                self.objectives.append(info.objective)
        self.done = info.done
        now = time.monotonic()
        if info.done or now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw()

    def _values(self) -> np.ndarray:
        f = np.asarray(self.objectives, dtype=float)
        return f if self.f_star is None else _relative(f, self.f_star)

    def figure(self) -> Any:
        """The figure (created on first use)."""
        if self._fig is None:
            import matplotlib.pyplot as plt

            self._fig, ax = plt.subplots(figsize=(6, 3.5))
            (self._line,) = ax.plot([], [], marker=".")
            ax.set_xlabel("wall time (s)")
            ax.set_ylabel("objective" if self.f_star is None else "relative suboptimality")
            if self.f_star is not None:
                ax.set_yscale("log")
            plt.close(self._fig)  # shown through the display handle, not by pyplot
        return self._fig

    def _draw(self) -> None:
        if not in_notebook():
            return
        from IPython.display import display

        fig = self.figure()
        self._line.set_data(self.times, self._values())
        ax = fig.axes[0]
        ax.relim()
        ax.autoscale_view()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


def _legend(ax: Any) -> None:
    """A legend of the runs drawn on ``ax`` (none while nothing labelled is drawn)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def _relative(f: np.ndarray, f_star: float) -> np.ndarray:
    """:func:`~daskasync.problem.relative_suboptimality`, floored at 1e-16 for log scales."""
    return np.maximum(relative_suboptimality(f, f_star), 1e-16)

