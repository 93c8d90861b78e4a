"""What SAGA and ASAGA share: their options, the per-task arguments built from the
gradient history, the batch-form step and the automatic step rule.

The history (one scalar per sample per output, plus ``alpha_bar``) lives on the driver in a
:class:`~daskasync.engine.history.GradientHistory`. Each task is shipped the scalars of the
rows it will sample (the driver draws the same seeded sample the task will), and its result
updates them. Dropped results (staler than ``tau``) change nothing: tasks are pure, so the
history stays consistent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..constraints import Interval, Options, check
from ..engine.history import GradientHistory
from ..kernels_saga import saga_batch_kernel, saga_sequential_kernel, sequential_loss_code
from ..kernels_saga_apply import DenseSagaChange, SagaChange, saga_change
from ..problem import Problem, RowStats, lipschitz_constant
from ..tasks import sample_rows
from ..views import block_columns, view_worthwhile

__all__ = ["SagaOptions", "SagaTasks", "batch_step", "check_saga_options", "saga_auto_step"]

@dataclass(frozen=True)
class SagaOptions:
    """Options of the SAGA solvers (see :func:`daskasync.minimize`): the task form
    ``inner`` and ``combine``, the weight of each partition's model change (``None``:
    ``1 / P``, their average)."""

    inner: str = "sequential"
    combine: float | None = None

    def weight(self, n_partitions: int) -> float:
        """Weight of each partition's change."""
        return 1.0 / n_partitions if self.combine is None else self.combine


def check_saga_options(
    name: str, synchronous: bool, problem: Problem, n_partitions: int, *,
    inner: Any = "sequential", combine: Any = None, **others: Any,
) -> SagaOptions:
    """Check the SAGA options of solver ``name``: the task form and the weight of each
    partition's change (``"average"`` is ``1 / P``)."""
    if others:
        raise ValueError(f"solver_options: solver {name!r} has no option "
                         f"{sorted(others)[0]!r} (its options: combine, inner)")
    check("inner", inner, Options("sequential", "batch"))
    if inner == "sequential":
        sequential_loss_code(problem.loss)  # a ValueError naming the loss if unsupported
    check("combine", combine, Options("average"), Interval("real", 0, 1, closed="right"), None)
    weight = None if combine in (None, "average") else float(combine)
    return SagaOptions(inner=inner, combine=weight)


def saga_auto_step(problem: Problem, options: SagaOptions, stats: RowStats, *,
                   synchronous: bool, tau_bar: int, staleness_aware: bool) -> float:
    """SAGA's ``1 / (3 L)`` (Defazio, Bach and Lacoste-Julien 2014; scikit-learn's
    ``get_auto_step_size``), ``L`` from the largest squared row norm; ASAGA's batch form
    divides it by ``1 + tau_bar``, the expected staleness (Leblond, Pedregosa and
    Lacoste-Julien 2017), unless ``staleness_aware`` scales each result."""
    gamma = 1.0 / (3.0 * lipschitz_constant(stats.max_sq_norm, problem))
    if options.inner == "batch" and not synchronous and not staleness_aware:
        gamma /= 1.0 + tau_bar
    return gamma


class SagaTasks:
    """Builds per-task arguments (the history scalars of the sampled rows), remembers which
    rows each in-flight task sampled, so its result can be stored back, and decodes the
    results.

    In the sequential form the model version a task reads is ``(theta, alpha_bar)``
    stacked (:meth:`model`: both travel once per version, not ``alpha_bar`` once per
    task), and a task on sparse rows returns a result whose size follows their nonzeros
    (:class:`~daskasync.kernels_saga_lazy.LazySagaResult`), which :meth:`decode` reads
    with the version it was shipped, without expanding it to ``d`` columns."""

    def __init__(self, engine: Any, problem: Problem, history: GradientHistory,
                 fraction: float, inner: str, step: float) -> None:
        self.engine = engine
        self.problem = problem
        self.history = history
        self.fraction = fraction
        self.inner = inner
        self.sizes = np.diff(engine.data.offsets)
        self._rows: dict[tuple[int, int], np.ndarray] = {}
        self._zeros: np.ndarray | None = None
        pen = problem.penalty
        self.kernel = saga_sequential_kernel if inner == "sequential" else saga_batch_kernel
        base: dict[str, Any] = {"fraction": fraction, "fit_intercept": problem.fit_intercept}
        if inner == "sequential":
            base.update(
                loss_code=sequential_loss_code(problem.loss),
                lam2=pen.smooth_strength,
                lam1=pen.l1_strength,
                n=problem.n,
                step=step,
                sparse_result=True,
            )
        else:
            base["loss"] = problem.loss
        self.base = base

    async def arestrict(self) -> None:
        """Ship each sequential task its version on its block's columns only (a
        :class:`~daskasync.views.ColumnView`) where the block has few of the ``d``
        columns (:func:`~daskasync.views.view_worthwhile`): on sparse blocks with the
        just-in-time pass, which reads nothing else, when versions travel as the
        broadcaster sees fit (``transport="auto"``). One pass per block finds its
        columns."""
        b, engine = self.base, self.engine
        if (self.inner != "sequential" or not engine.data.is_sparse
                or engine.broadcaster.transport != "auto" or not b["step"] * b["lam2"] < 1.0):
            return
        d = engine.data.d
        width = d + bool(b["fit_intercept"])
        index = []
        for cols in await engine.amap_partitions(block_columns, None, "columns"):
            if b["fit_intercept"]:
                cols = np.append(cols, np.asarray(d, dtype=cols.dtype))
            index.append(cols if view_worthwhile(len(cols), width) else None)
        if any(i is not None for i in index):
            engine.views.restrict(index)

    def zeros_like(self, theta: np.ndarray) -> np.ndarray:
        """A zeroed array shaped like ``theta``, the same one every call (a round's sum
        of changes): a fresh large array costs a page fault per 4 KB each round."""
        held = self._zeros
        if held is None or held.shape != theta.shape or held.dtype != theta.dtype:
            held = self._zeros = np.zeros_like(theta)
        else:
            held.fill(0.0)
        return held

    def model(self, theta: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """What a model version holds: ``(theta, alpha_bar)`` in the sequential form (the
        broadcaster stores them stacked), ``theta`` in the batch form."""
        if self.inner == "sequential":
            return theta, self.history.mean
        return theta

    def decode(self, value: Any, version: int) -> Any:
        """A task's value as its solver applies it: in the sequential form a
        :class:`~daskasync.kernels_saga_apply.SagaChange` (a compact result, read with the
        version it was shipped) or :class:`~daskasync.kernels_saga_apply.DenseSagaChange`;
        in the batch form the value itself."""
        if self.inner != "sequential":
            return value
        shipped = self.engine.broadcaster.shipped(version)
        b = self.base
        return saga_change(value, shipped[0], shipped[1], step=b["step"], lam2=b["lam2"],
                           lam1=b["lam1"], fit_intercept=b["fit_intercept"])

    def args(self, partition: int, task_index: int) -> dict:
        rows = sample_rows(
            int(self.sizes[partition]), self.fraction, self.engine.seed, partition, task_index
        )
        self._rows[(partition, task_index)] = rows
        return dict(self.base, old=self.history.scalars(partition, rows))

    def store(self, partition: int, task_index: int, new: np.ndarray, mean_delta) -> None:
        rows = self._rows.pop((partition, task_index))
        self.history.update(partition, rows, new, mean_delta)

    def store_change(self, partition: int, task_index: int,
                     change: SagaChange | DenseSagaChange) -> None:
        """Store a sequential task's new scalars and add its ``alpha_bar`` change."""
        rows = self._rows.pop((partition, task_index))
        self.history.update(partition, rows, change.new, change.add_mean)

    def forget(self, partition: int, task_index: int) -> None:
        self._rows.pop((partition, task_index), None)


def batch_step(theta, diff_sum, count, step, problem: Problem, history: GradientHistory):
    """``theta <- prox(theta - step * (diff_sum / count + alpha_bar + smooth penalty grad))``."""
    v = diff_sum / count
    v += history.mean
    v += problem.smooth_gradient(theta)
    theta -= step * v
    return problem.prox(theta, step)
