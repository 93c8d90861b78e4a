"""What a benchmark runs: its solvers (``name`` or ``name[key=value,...]``, daskasync's from
the registry :data:`daskasync.solvers.SOLVERS`, peers from
:data:`daskasync.bench.peers.PEERS`), the synchronous/asynchronous pairs it compares, and
its straggler models.

Examples
--------
>>> SYNC_ASYNC_PAIRS
(('sgd', 'asgd'), ('saga', 'asaga'), ('lbfgs', 'albfgs'))
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..constraints import Instance, Interval, Options, check, check_all
from ..solvers import SOLVERS
from ..stragglers import Cloud, Intensity, NoStragglers, Straggler
from .peers import PEERS

__all__ = [
    "BenchSettings",
    "BenchSolver",
    "SOLVER_OPTIONS",
    "STRAGGLER_CONSTRAINTS",
    "SYNC_ASYNC_PAIRS",
    "parse_solver",
    "straggler_model",
    "straggling_units",
]

#: ``minimize`` options a solver spec may set, e.g. ``asaga[barrier=bounded,tau=8]``
SOLVER_OPTIONS = (
    "barrier", "tau", "beta", "batch_fraction", "step_size", "inner", "combine",
    "staleness_aware", "step_schedule", "window",
)
STRAGGLER_MODELS = ("none", "intensity", "cloud")
STRAGGLER_FORMS = ("partition", "worker")
#: what :func:`straggler_model`'s arguments may be, by the names of ``run_benchmark``
STRAGGLER_CONSTRAINTS: dict[str, list] = {
    "stragglers": [Options(*STRAGGLER_MODELS)],
    "straggler_form": [Options(*STRAGGLER_FORMS)],
    "straggler_c": [Interval("real", 0)],
}

#: ``(synchronous, asynchronous)`` solver names whose times to target the benchmark
#: compares: every asynchronous solver of the registry with the synchronous one of its
#: family (the same update rule, run with a barrier per round).
SYNC_ASYNC_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (sync.name, asyn.name)
    for asyn in SOLVERS.values() if not asyn.synchronous
    for sync in SOLVERS.values() if sync.synchronous and sync.family == asyn.family
)

_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[(.*)\])?\s*$")


@dataclass(frozen=True)
class BenchSolver:
    """One solver of a benchmark: its label, what runs, and its options."""

    label: str
    name: str
    kind: str  # "daskasync" or "peer"
    options: Mapping[str, Any]

    def minimize_options(self) -> dict[str, Any]:
        """The options as :func:`daskasync.minimize` takes them: the solver's own options
        (e.g. ``memory``, ``precondition``) go into ``solver_options``.

        Examples
        --------
        >>> parse_solver("lbfgs[precondition=jacobi,window=4]").minimize_options()
        {'window': 4, 'solver_options': {'precondition': 'jacobi'}}
        """
        opts = {k: v for k, v in self.options.items() if k in SOLVER_OPTIONS}
        own = {k: v for k, v in self.options.items() if k not in SOLVER_OPTIONS}
        if own:
            opts["solver_options"] = own
        return opts


@dataclass(frozen=True)
class BenchSettings:
    """The checked arguments of one :func:`~daskasync.bench.runner.run_benchmark` call
    (``targets`` largest first, ``model`` the straggler model they describe)."""

    specs: list[BenchSolver]
    data: str | None
    synthetic: str
    n: int
    d: int
    synthetic_params: Mapping[str, float] | None
    partitions: int
    stragglers: str
    straggler_c: float
    straggler_form: str
    model: Straggler
    targets: list[float]
    time_budget: float
    seeds: list[int]
    repeats: int
    lam: float | None
    loss: str
    tune: bool
    tune_seconds: float
    tune_grid: Sequence[float]
    #: names of the workers that straggle (worker form), or ``None``: the model's choice by
    #: index, the workers ordered by name
    straggler_workers: tuple[str, ...] | None = None
    #: clusters started one after the other, each running every solver
    launches: int = 1

    @property
    def task_stragglers(self) -> Straggler | None:
        """The model to sleep inside daskasync's tasks (partition form), if it is active;
        peers run without it."""
        return self.model if (self.straggler_form == "partition" and self.model.active) else None

    @property
    def worker_stragglers(self) -> bool:
        """Whether the workers' executors are slowed (worker form): everyone runs under it."""
        return self.straggler_form == "worker" and self.model.active


def _value(text: str) -> Any:
    text = text.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _own_options(cls: type) -> tuple[str, ...]:
    """The names of a solver's own options (its ``Options`` dataclass's fields)."""
    return tuple(f.name for f in dataclasses.fields(cls.Options))


def parse_solver(spec: str) -> BenchSolver:
    """Parse ``"name"`` or ``"name[key=value,...]"``.

    Examples
    --------
    >>> parse_solver("asaga[barrier=bounded,tau=8]")
    BenchSolver(label='asaga[barrier=bounded,tau=8]', name='asaga', kind='daskasync', options={'barrier': 'bounded', 'tau': 8})
    >>> parse_solver("dask-glm-lbfgs").kind
    'peer'
    """
    check("solvers", spec, Instance(str, "a string (name or name[key=value,...])"))
    m = _SPEC.match(spec)
    if not m:
        raise ValueError(f"solvers: cannot parse {spec!r}; use name or name[key=value,...]")
    name, body = m.group(1), m.group(2)
    if name in SOLVERS:
        kind = "daskasync"
    elif name in PEERS:
        kind = "peer"
    else:
        raise ValueError(
            f"solvers: unknown solver {name!r}; daskasync solvers are "
            f"{', '.join(SOLVERS)} and peers are {', '.join(sorted(PEERS))}"
        )
    options: dict[str, Any] = {}
    for item in filter(None, (body or "").split(",")):
        if "=" not in item:
            raise ValueError(f"solvers: option {item!r} of {spec!r} is not key=value")
        key, val = item.split("=", 1)
        key = key.strip()
        if kind == "daskasync":
            check(f"solvers: an option of {spec!r}", key,
                  Options(*dict.fromkeys((*SOLVER_OPTIONS, *_own_options(SOLVERS[name])))))
        options[key] = _value(val)
    return BenchSolver(spec.strip(), name, kind, options)


def straggler_model(
    model: str, *, form: str, n_units: int, c: float = 1.0, seed: int = 0,
    n_straggling: int | None = None,
) -> Straggler:
    """The delay model over ``n_units`` partitions (``form="partition"``) or workers
    (``form="worker"``): ``"none"``, ``"intensity"`` (unit 0 sleeps ``c`` times its task
    time; units ``0 .. n_straggling - 1`` when given) or ``"cloud"`` (ASYNC's long tail:
    25% of the units straggle).

    Examples
    --------
    >>> straggler_model("cloud", form="partition", n_units=32).describe()["long_tail"]
    [24, 28]
    >>> straggler_model("intensity", form="worker", n_units=2, c=0.5).delay(0, 1, 2.0)
    1.0
    """
    check_all({"stragglers": model, "straggler_form": form, "straggler_c": c},
              STRAGGLER_CONSTRAINTS)
    if model == "none":
        return NoStragglers(seed=seed)
    if model == "intensity":
        k = 1 if n_straggling is None else int(check("n_straggling", n_straggling,
                                                      Interval("int", 1)))
        return Intensity(c=float(c), partitions=tuple(range(k)), seed=seed)
    return Cloud(n_partitions=n_units, seed=seed)


def straggling_units(model: Straggler) -> tuple[int, ...]:
    """The units (partitions or worker indices) that ``model`` slows: an intensity model's
    partitions, a cloud's stragglers then its long tail, none otherwise.

    Examples
    --------
    >>> straggling_units(straggler_model("cloud", form="worker", n_units=8))
    (0, 4)
    >>> straggling_units(straggler_model("intensity", form="worker", n_units=3,
    ...                                  n_straggling=2))
    (0, 1)
    """
    if isinstance(model, Intensity):
        return tuple(model.partitions)
    if isinstance(model, Cloud):
        return tuple(model.stragglers) + tuple(model.long_tail)
    return ()
