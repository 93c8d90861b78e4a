"""The optimizer state a run ends with: enough to continue it exactly where it stopped.

A :class:`RunState` holds the model, the gradient history (SAGA/ASAGA), the logical clock,
the per-partition task counters (which seed every task's sampling, so a continued run draws
what one longer run would have drawn), the step size, the solver's own state and a
fingerprint of the data and settings it belongs to: the data's shape and the content of
each partition (a digest computed on the workers, :mod:`daskasync.fingerprint`) and every
setting that changes the iterates. A run continues from a state only if its fingerprint
agrees; otherwise ``ValueError`` names each difference.

What continuing means depends on the solver:

* **synchronous** (``"sgd"``, ``"saga"``, ``"lbfgs"``): exactly the run that did not stop.
  Every update waits for every partition and every sample is seeded by the task counters,
  so ``k`` epochs, saved, then continued to ``k + m`` equal one run of ``k + m`` epochs bit
  for bit.
* **asynchronous** (``"asgd"``, ``"asaga"``, ``"albfgs"``): the model, the gradient
  history, the clock, the task counters and the solver's state continue, so the run goes on
  from where it stopped (its records too). The order in which results arrive depends on
  the workers' timing and is not reproduced, so the continued run is a valid run of the
  same algorithm, not bit for bit the run that did not stop (nor is a second run of the same
  settings). Results of tasks still in flight when the state was taken are never applied;
  the continued run's tasks draw new samples (their counters go on).

It saves to a ``.npz`` file (numpy arrays and a JSON string, loaded
with ``allow_pickle=False``) atomically: a crash while saving leaves the previous file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine.history import GradientHistory

__all__ = ["RunState"]

_FORMAT = "daskasync-runstate-3"
#: formats whose fingerprint does not cover the data's content and every setting
_OLD_FORMATS = ("daskasync-runstate-1", "daskasync-runstate-2")


@dataclass
class RunState:
    """Optimizer state at the end of (or during) a run.

    Attributes
    ----------
    theta : ndarray
        Model ``[w, b]``, shape ``(dim,)`` or ``(K, dim)``.
    updates : int
        Applied updates (the logical clock).
    rows : int
        Sampled rows processed (``epochs = rows / n``).
    task_counts : ndarray of int
        Tasks submitted per partition: the next task's index, which seeds its sampling.
    step_size : float
        Base step the run used.
    fingerprint : dict
        The data's shape, its content (``"content"``: one digest per partition) and every
        setting that changes the iterates, by argument name; a run continues from a state
        only if they agree (:meth:`check_compatible`).
    history : GradientHistory or None
        Gradient history of SAGA/ASAGA.
    elapsed : float
        Seconds of optimization so far.
    solver_state : SolverState
        The solver's typed state (e.g. :class:`daskasync.solvers.LbfgsState`: L-BFGS's
        curvature pairs); a continued run starts from it (``Solver.from_state``).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> s = RunState(np.zeros(3), updates=5, rows=50, task_counts=np.array([3, 2]),
    ...              step_size=0.1, fingerprint={"n": 10, "solver": "sgd"})
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> s.save(path)
    >>> RunState.load(path).updates
    5
    """

    theta: np.ndarray
    updates: int
    rows: int
    task_counts: np.ndarray
    step_size: float
    fingerprint: dict[str, Any]
    history: GradientHistory | None = field(default=None, repr=False)
    elapsed: float = 0.0
    #: the solver's typed state (``Solver.State``)
    solver_state: Any = None

    def _solver_items(self) -> list[tuple[str, Any]]:
        state = self.solver_state
        if state is None:
            return []
        items = state.items() if isinstance(state, dict) else state.to_dict().items()
        return list(items)

    @property
    def epochs(self) -> float:
        """Passes over the data so far (``rows / n``)."""
        n = self.fingerprint.get("n")
        return self.rows / n if n else float("nan")

    def check_compatible(self, fingerprint: dict[str, Any], content: bool = True) -> None:
        """Raise ``ValueError`` naming every difference from ``fingerprint``: each setting
        that differs (its name, the state's value and this run's) and each partition whose
        content differs (``"partition 3's content"``).

        Parameters
        ----------
        fingerprint : dict
            The fingerprint of the run that would continue from this state.
        content : bool, default True
            Compare the data's content (the ``"content"`` entry: one digest per
            partition); ``False`` compares the shape and the settings only.
        """
        keys = sorted((set(self.fingerprint) | set(fingerprint)) - {"content"})
        diff = [
            f"{k}: state has {self.fingerprint.get(k)!r}, this run {fingerprint.get(k)!r}"
            for k in keys
            if _norm(self.fingerprint.get(k)) != _norm(fingerprint.get(k))
        ]
        if content:
            diff += _content_differences(self.fingerprint.get("content"),
                                         fingerprint.get("content"))
        if diff:
            raise ValueError(
                "init: the state comes from other data or other settings ("
                + "; ".join(diff)
                + ")"
            )

    # -- files -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state to ``path`` (``.npz``) atomically (temporary file + rename)."""
        path = os.fspath(path)
        meta = {
            "format": _FORMAT,
            "updates": int(self.updates),
            "rows": int(self.rows),
            "step_size": float(self.step_size),
            "elapsed": float(self.elapsed),
            "fingerprint": self.fingerprint,
            "solver_state": {},
            "history": None,
        }
        arrays: dict[str, np.ndarray] = {
            "theta": np.asarray(self.theta, dtype=np.float64),
            "task_counts": np.asarray(self.task_counts, dtype=np.int64),
        }
        for key, value in self._solver_items():
            if isinstance(value, np.ndarray):
                arrays[f"solver.{key}"] = value
            else:
                meta["solver_state"][key] = value
        h = self.history
        if h is not None:
            meta["history"] = {"dim": h.dim, "n_outputs": h.n_outputs, "n_updates": h.n_updates}
            arrays.update(alpha=h.alpha, mean=h.mean, offsets=h.offsets)
        arrays["meta"] = np.array(json.dumps(meta, default=_jsonable))
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".daskasync-", suffix=".npz", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunState:
        """Read a state written by :meth:`save` (no pickle is ever loaded)."""
        try:
            with np.load(os.fspath(path), allow_pickle=False) as z:
                meta = json.loads(str(z["meta"][()]))
                if meta.get("format") in _OLD_FORMATS:
                    raise ValueError(
                        f"{os.fspath(path)}: written by an older daskasync (format {meta['format']!r}) whose "
                        "fingerprint does not record the data's content and every "
                        "setting, so it cannot be checked against a run; start the run "
                        "again")
                if meta.get("format") != _FORMAT:
                    raise ValueError(f"not a daskasync run state (format {meta.get('format')!r})")
                history = None
                if meta["history"] is not None:
                    hm = meta["history"]
                    history = GradientHistory(z["offsets"], hm["dim"], hm["n_outputs"])
                    if history.alpha.shape != z["alpha"].shape:
                        raise ValueError("the history's scalars do not fit its offsets")
                    history.alpha[...] = z["alpha"]
                    history.mean[...] = z["mean"]
                    history.n_updates = int(hm["n_updates"])
                return cls(
                    theta=np.array(z["theta"]),
                    updates=int(meta["updates"]),
                    rows=int(meta["rows"]),
                    task_counts=np.array(z["task_counts"]),
                    step_size=float(meta["step_size"]),
                    fingerprint=dict(meta["fingerprint"]),
                    history=history,
                    elapsed=float(meta["elapsed"]),
                    solver_state=_solver_state(meta, z),
                )
        except (KeyError, json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{os.fspath(path)}: not a valid daskasync run state ({e})") from e


def _solver_state(meta: dict, z: Any) -> Any:
    """The saved solver state, typed by the solver the fingerprint names."""
    from .solvers.registry import SOLVERS

    plain: dict[str, Any] = dict(meta.get("solver_state", {}))
    for key in z.files:
        if key.startswith("solver."):
            plain[key[len("solver."):]] = np.array(z[key])
    solver = SOLVERS.get(meta["fingerprint"].get("solver"))
    return solver.State.from_dict(plain) if solver is not None else plain


def _content_differences(stored: Any, given: Any) -> list[str]:
    """The partitions whose digests differ (or why they cannot be compared)."""
    if stored is None:
        return ["content: the state does not record the data's content"]
    if given is None or len(stored) != len(given):
        count = "unknown" if given is None else len(given)
        return [f"content: state has {len(stored)} partitions, this run {count}"]
    return [f"partition {i}'s content" for i, (a, b) in enumerate(zip(stored, given, strict=True))
            if a != b]


def _norm(v: Any) -> Any:
    """JSON round trip, so that tuples and lists (or numpy scalars) compare equal."""
    return json.loads(json.dumps(v, default=_jsonable))


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON serializable: {type(v).__name__}")
