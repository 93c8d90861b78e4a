"""Declarative checks of argument values, shared by ``minimize``, the estimators, the loaders,
the command line and the benchmark.

An argument is declared by the list of what it may be (scikit-learn's "parameter
constraints" idea, in small): :class:`Interval` of numbers, :class:`Options` among fixed
values, :data:`BOOLEAN`, :class:`Instance` of types, :data:`CALLABLE`, or ``None``.
:func:`check` accepts a value if one constraint does; otherwise it raises a ``TypeError``
when no constraint accepts the value's type and a ``ValueError`` when one accepts its type
but not the value. Both messages start with the argument's name and say what was expected,
so every bad value is refused with the same words everywhere, before any work reaches the
cluster.

Examples
--------
>>> check("batch_fraction", 0.5, Interval("real", 0, 1, closed="right"))
0.5
>>> check("batch_fraction", 0.0, Interval("real", 0, 1, closed="right"))
Traceback (most recent call last):
...
ValueError: batch_fraction: must be a number in (0, 1], got 0.0
>>> check("tau", 1.5, Interval("int", 0), None)
Traceback (most recent call last):
...
TypeError: tau: must be an int >= 0 or None, got 1.5
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "BOOLEAN",
    "CALLABLE",
    "Constraint",
    "Instance",
    "Interval",
    "Options",
    "check",
    "check_all",
    "argparse_type",
    "argparse_list_type",
]


class Constraint:
    """What an argument may be: :meth:`fits_type` (else ``TypeError``), :meth:`fits_value`
    (else ``ValueError``) and a description for the messages."""

    def fits_type(self, value: Any) -> bool:
        raise NotImplementedError

    def fits_value(self, value: Any) -> bool:
        return True

    def __str__(self) -> str:
        raise NotImplementedError


class Interval(Constraint):
    """A number (``kind="real"``: any real number, bools excluded) or an integer
    (``kind="int"``) between ``low`` and ``high`` (``None``: unbounded); ``closed`` says
    which ends belong to the interval. Reals must be finite.

    Examples
    --------
    >>> str(Interval("real", 0, 1, closed="left")), str(Interval("int", 1))
    ('a number in [0, 1)', 'an int >= 1')
    >>> Interval("int", 1).fits_value(10**400), Interval("real", 0).fits_value(10**400)
    (True, False)
    """

    def __init__(
        self, kind: str, low: float | None = None, high: float | None = None, *,
        closed: str = "both",
    ) -> None:
        if kind not in ("real", "int"):
            raise ValueError(f"kind: must be 'real' or 'int', got {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed: must be both, left, right or neither, got {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def fits_type(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return False
        return isinstance(value, numbers.Integral if self.kind == "int" else numbers.Real)

    def fits_value(self, value: Any) -> bool:
        if isinstance(value, numbers.Integral):
            v: float = int(value)  # exact, however large
            if self.kind == "real" and not _fits_float(v):
                return False
        else:
            v = float(value)
            if not math.isfinite(v):
                return False
        lo_in = self.closed in ("both", "left")
        hi_in = self.closed in ("both", "right")
        if self.low is not None and (v < self.low or (v == self.low and not lo_in)):
            return False
        return self.high is None or not (v > self.high or (v == self.high and not hi_in))

    def __str__(self) -> str:
        what = "an int" if self.kind == "int" else "a number"
        lo_in = self.closed in ("both", "left")
        hi_in = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            return (f"{what} in {'[' if lo_in else '('}{self.low:g}, "
                    f"{self.high:g}{']' if hi_in else ')'}")
        if self.low == 0 and not lo_in:
            return f"a positive {'int' if self.kind == 'int' else 'number'}"
        if self.low is not None:
            return f"{what} {'>=' if lo_in else '>'} {self.low:g}"
        if self.high is not None:
            return f"{what} {'<=' if hi_in else '<'} {self.high:g}"
        return f"a finite {'int' if self.kind == 'int' else 'number'}"


class Options(Constraint):
    """One of fixed values (strings, usually).

    Examples
    --------
    >>> str(Options("sync", "async"))
    "one of 'sync', 'async'"
    """

    def __init__(self, *values: Any) -> None:
        self.values = tuple(values)

    def fits_type(self, value: Any) -> bool:
        return any(type(value) is type(v) for v in self.values)

    def fits_value(self, value: Any) -> bool:
        return value in self.values

    def __str__(self) -> str:
        if len(self.values) == 1:
            return repr(self.values[0])
        return "one of " + ", ".join(repr(v) for v in self.values)


class Instance(Constraint):
    """An instance of ``types``, described as ``description``."""

    def __init__(self, types: type | tuple[type, ...], description: str) -> None:
        self.types, self.description = types, description

    def fits_type(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def __str__(self) -> str:
        return self.description


class _Boolean(Constraint):
    def fits_type(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def __str__(self) -> str:
        return "a bool"


class _Callable(Constraint):
    def fits_type(self, value: Any) -> bool:
        return callable(value) and not isinstance(value, str)

    def __str__(self) -> str:
        return "a callable"


#: ``True`` or ``False`` (numpy bools too)
BOOLEAN: Constraint = _Boolean()
#: any callable but a string
CALLABLE: Constraint = _Callable()


def _describe(allowed: Sequence[Constraint | None]) -> str:
    parts = [("None" if c is None else str(c)) for c in allowed]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _fits_float(v: int) -> bool:
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def check(
    name: str, value: Any, *allowed: Constraint | None, error: type[Exception] | None = None
) -> Any:
    """Return ``value`` if one of ``allowed`` accepts it (``None`` in ``allowed`` accepts
    ``None``); else raise ``TypeError`` (no constraint accepts its type) or ``ValueError``
    (one accepts its type, not its value), naming ``name``.

    ``error`` replaces that choice by one exception class, for a function whose documented
    contract raises it for every bad value (for example ``ValueError`` for
    :func:`daskasync.make_penalty`'s ``lam``).

    Examples
    --------
    >>> check("lam", "0.1", Interval("real", 0), error=ValueError)
    Traceback (most recent call last):
    ...
    ValueError: lam: must be a number >= 0, got '0.1'
    """
    if value is None and None in allowed:
        return value
    typed = [c for c in allowed if c is not None and c.fits_type(value)]
    if any(c.fits_value(value) for c in typed):
        return value
    if error is None:
        error = ValueError if typed else TypeError
    raise error(f"{name}: must be {_describe(allowed)}, got {value!r}")


def check_all(
    values: Mapping[str, Any], constraints: Mapping[str, Sequence[Constraint | None]]
) -> None:
    """:func:`check` every entry of ``values`` that ``constraints`` declares."""
    for name, allowed in constraints.items():
        if name in values:
            check(name, values[name], *allowed)


def argparse_type(
    name: str, parse: Callable[[str], Any], *allowed: Constraint | None
) -> Callable[[str], Any]:
    """An ``argparse`` ``type=``: ``parse`` the text, then :func:`check` it, so the command
    line refuses what the library refuses, with the same words.

    Examples
    --------
    >>> to_fraction = argparse_type("--batch-fraction", float, Interval("real", 0, 1))
    >>> to_fraction("0.5")
    0.5
    """

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"{name}: must be {_describe(allowed)}, got {text!r}"
            ) from None
        try:
            return check(name, value, *allowed)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return convert


def argparse_list_type(
    name: str, parse: Callable[[str], Any], *allowed: Constraint | None
) -> Callable[[str], list]:
    """An ``argparse`` ``type=`` for a comma separated list: each item as
    :func:`argparse_type` takes it; an empty list is refused.

    Examples
    --------
    >>> to_targets = argparse_list_type("--targets", float, Interval("real", 0, 1))
    >>> to_targets("0.1, 0.01")
    [0.1, 0.01]
    >>> to_targets("0.1,2")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: --targets: must be a number in [0, 1], got 2.0
    """
    convert_item = argparse_type(name, parse, *allowed)

    def convert(text: str) -> list:
        items = [x.strip() for x in text.split(",") if x.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"{name}: give at least one value, got {text!r}")
        return [convert_item(x) for x in items]

    return convert


def parse_list(parse: Callable[[str], Any]) -> Callable[[str], list]:
    """``"1,2,3"`` -> ``[parse("1"), parse("2"), parse("3")]`` (empty items skipped)."""

    def convert(text: str) -> list:
        return [parse(x) for x in text.split(",") if x.strip()]

    return convert


def iter_checked(
    name: str, values: Iterable[Any], *allowed: Constraint | None
) -> list[Any]:
    """:func:`check` every item of ``values`` (named ``name[i]``)."""
    return [check(f"{name}[{i}]", v, *allowed) for i, v in enumerate(values)]
