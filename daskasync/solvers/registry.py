"""The one list of solver names: ``SOLVERS`` maps each name to its :class:`Solver` class,
whose class attributes (``synchronous``, ``history``, ``losses``, ``penalties``) are what
``minimize``, the estimators, the command line and the benchmark read.

Adding a solver is one module with a :class:`~daskasync.solvers.base.Solver` subclass and one
:func:`register_solver` call (see ``docs/architecture.md``).
"""

from __future__ import annotations

from .albfgs import ALBFGS
from .asaga import ASAGA
from .asgd import ASGD
from .base import Solver
from .lbfgs import LBFGS
from .saga import SAGA
from .sgd import SGD

__all__ = ["AUTO", "SOLVERS", "choose_solver", "get_solver", "register_solver"]

#: the solver name that lets :func:`choose_solver` pick by the problem
AUTO = "auto"

#: solver classes by name
SOLVERS: dict[str, type[Solver]] = {}


def register_solver(cls: type[Solver]) -> type[Solver]:
    """Add ``cls`` to :data:`SOLVERS` under ``cls.name`` (usable as a class decorator).

    Raises ``TypeError`` if ``cls`` is not a :class:`Solver` subclass with a name, and
    ``ValueError`` if another class already has that name."""
    if not (isinstance(cls, type) and issubclass(cls, Solver)) or not cls.name:
        raise TypeError(f"solver: expected a named daskasync Solver subclass, got {cls!r}")
    if SOLVERS.get(cls.name, cls) is not cls:
        raise ValueError(f"solver: the name {cls.name!r} is already registered")
    SOLVERS[cls.name] = cls
    return cls


def choose_solver(penalty_has_prox: bool) -> str:
    """The default solver: ``"albfgs"`` (asynchronous L-BFGS, which keeps a quasi-Newton
    rate and never waits for a straggler) for smooth problems; ``"asaga"`` when the
    penalty has an L1 part, which L-BFGS cannot take and SAGA's proximal steps handle with
    exact zeros.

    Examples
    --------
    >>> choose_solver(False), choose_solver(True)
    ('albfgs', 'asaga')
    """
    return "asaga" if penalty_has_prox else "albfgs"


def get_solver(name: str) -> type[Solver]:
    """The registered solver class ``name`` (``ValueError`` naming ``solver`` otherwise).

    Examples
    --------
    >>> get_solver("asaga").synchronous
    False
    """
    if not isinstance(name, str) or name not in SOLVERS:
        raise ValueError(f"solver: unknown solver {name!r}; choose one of "
                         f"{[AUTO, *sorted(SOLVERS)]}")
    return SOLVERS[name]


for _cls in (SGD, ASGD, SAGA, ASAGA, LBFGS, ALBFGS):
    register_solver(_cls)
