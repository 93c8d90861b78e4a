"""Where the L-BFGS solvers' Jacobi preconditioner pays: passes over the data to a target.

For every data set, synchronous L-BFGS (``lbfgs``, whose iterates do not depend on timing)
runs with each ``precondition`` (``"none"``, ``"jacobi"``, ``"standardize"``) until its
objective stops changing (``tol``, or ``--max-updates``); ``f*`` is the smallest of the
final objectives. It reports the passes over the data (line-search trials included; plus
one for the column pass of a preconditioner) and the seconds to each relative
suboptimality target.

Data sets (``--sets``): LIBSVM files (binary labels mapped to -1/+1), ``breast_cancer``
(scikit-learn's, features left at their own scales), ``breast_cancer01`` (the same
scaled to [0, 1] per feature), ``digits`` (scikit-learn's, multinomial, pixels 0..16),
``digits01`` (pixels / 16), ``wine`` (scikit-learn's, multinomial, raw measurements),
all with an intercept; ``rcv1`` and ``epsilon`` (the synthetic families, at ``--n`` x
``--d``, with ``--synthetic-param``). The LIBSVM and synthetic sets have an intercept
with ``--fit-intercept``. ``lam = 1 / n``.

Run ``python -m daskasync.bench.precondition --sets ../shared/data/a9a.xz,breast_cancer``
(``--scheduler`` for an existing cluster; default a LocalCluster of ``--workers`` x
``--threads``).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

from ..api import minimize
from ..data import PartitionedData
from ..problem import relative_suboptimality
from .problem import load_benchmark_data

__all__ = ["check_sets", "passes_to_targets", "precondition_race"]

TARGETS = (1e-4, 1e-6, 1e-8)


PRECONDITIONERS = ("none", "jacobi", "standardize")
SKLEARN_SETS = ("breast_cancer", "breast_cancer01", "digits", "digits01", "wine")
BUILT_IN = (*SKLEARN_SETS, "rcv1", "epsilon")


def check_sets(sets: list[str]) -> None:
    """Refuse (``ValueError`` naming it) a set that is neither built in nor an existing
    file, before any data set is loaded."""
    for name in sets:
        if name not in BUILT_IN and not os.path.exists(name):
            raise ValueError(f"sets: {name!r} is not a file, nor one of "
                             f"{', '.join(BUILT_IN)}")


def _sklearn_set(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    if name.startswith("breast_cancer"):
        X, y = load_breast_cancer(return_X_y=True)
        y, loss = np.where(y > 0, 1.0, -1.0), "logistic"
    else:
        X, y = (load_digits if name.startswith("digits") else load_wine)(return_X_y=True)
        y, loss = y.astype(np.float64), "multinomial"
    if name == "digits01":
        X = X / 16.0
    elif name == "breast_cancer01":
        X = (X - X.min(axis=0)) / np.ptp(X, axis=0)
    return X, y, loss


def _load(client: Any, name: str, *, n: int, d: int, partitions: int,
          params: dict[str, float], intercept: bool) -> tuple[PartitionedData, str, bool]:
    """The data set ``name``, its loss and whether to fit an intercept."""
    if name in SKLEARN_SETS:
        X, y, loss = _sklearn_set(name)
        return (PartitionedData.from_arrays(X, y, n_partitions=partitions, client=client,
                                            name=name), loss, True)
    if name in ("rcv1", "epsilon"):
        return (load_benchmark_data(client, data=None, synthetic=name, n=n, d=d,
                                    partitions=partitions, synthetic_params=params),
                "logistic", intercept)
    return (load_benchmark_data(client, data=name, synthetic="", n=0, d=0,
                                partitions=partitions), "logistic", intercept)


def passes_to_targets(history: list, f_star: float, extra_passes: int = 0,
                      targets: tuple[float, ...] = TARGETS) -> dict[str, Any]:
    """Passes (``epoch + extra_passes``) and seconds at the first record of ``history``
    at or below each relative suboptimality target (None if never).

    Examples
    --------
    >>> from daskasync.result import Record
    >>> h = [Record(0.1, 1, 1.0, 2.0, 0, 0), Record(0.2, 2, 3.0, 1.0 + 1e-7, 0, 0)]
    >>> passes_to_targets(h, 1.0, extra_passes=1, targets=(1e-6,))
    {'passes': {'1e-06': 4.0}, 'seconds': {'1e-06': 0.2}}
    """
    out: dict[str, Any] = {"passes": {}, "seconds": {}}
    for t in targets:
        rec = next((r for r in history
                    if relative_suboptimality(r.objective, f_star) <= t), None)
        out["passes"][f"{t:g}"] = None if rec is None else rec.epoch + extra_passes
        out["seconds"][f"{t:g}"] = None if rec is None else rec.time
    return out


def precondition_race(client: Any, sets: list[str], *, n: int, d: int, partitions: int,
                      params: dict[str, float], max_updates: int,
                      intercept: bool = False) -> list[dict[str, Any]]:
    """One row per data set and preconditioner (see the module description)."""
    check_sets(sets)
    rows = []
    for name in sets:
        data, loss, icpt = _load(client, name, n=n, d=d, partitions=partitions,
                                 params=params, intercept=intercept)
        try:
            runs = {pre: minimize(data, solver="lbfgs", loss=loss, lam=1.0 / data.n,
                                  fit_intercept=icpt, max_updates=max_updates,
                                  tol=1e-14, record_every=1,
                                  solver_options={"precondition": pre})
                    for pre in PRECONDITIONERS}
        finally:
            data.release()
        f_star = min(min(r.objective for r in res.history) for res in runs.values())
        for pre, res in runs.items():
            rows.append({"set": os.path.basename(name), "n": data.n, "d": data.d,
                         "loss": loss, "intercept": icpt, "precondition": pre,
                         "f_star": f_star,
                         "updates": res.updates, "stop_reason": res.stop_reason,
                         **passes_to_targets(res.history, f_star, int(pre != "none"))})
    return rows


def main(argv: list[str] | None = None) -> int:
    from ..cli import _key_value
    from ..clusters import cluster_client

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="breast_cancer,digits,rcv1,epsilon")
    p.add_argument("--scheduler")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--d", type=int, default=2_000)
    p.add_argument("--synthetic-param", type=_key_value, action="append", default=[],
                   help="KEY=NUMBER, e.g. decay=0.5 (epsilon) or density=0.0014 (rcv1)")
    p.add_argument("--max-updates", type=int, default=2_000)
    p.add_argument("--fit-intercept", action="store_true",
                   help="fit the LIBSVM and synthetic sets with an intercept")
    p.add_argument("--output")
    a = p.parse_args(argv)
    params = dict(a.synthetic_param)
    check_sets(a.sets.split(","))
    with cluster_client(a.scheduler, a.workers, a.threads) as client:
        rows = precondition_race(client, a.sets.split(","), n=a.n, d=a.d,
                                 partitions=a.partitions, params=params,
                                 max_updates=a.max_updates, intercept=a.fit_intercept)
    head = " / ".join(f"{t:g}" for t in TARGETS)
    print(f"| data | precondition | passes to {head} | seconds to {head} |")
    print("|---|---|---|---|")
    for r in rows:
        passes = " / ".join("—" if v is None else f"{v:.0f}" for v in r["passes"].values())
        secs = " / ".join("—" if v is None else f"{v:.2f}" for v in r["seconds"].values())
        print(f"| {r['set']} | {r['precondition']} | {passes} | {secs} |")
    if a.output:
        with open(a.output, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
