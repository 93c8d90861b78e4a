"""Sparse, wide data: the cost of an epoch as the number of features grows, the bytes a
task sends and receives, and L1 supports against scikit-learn's.

``epochs`` (default): for each ``d``, rcv1-like rows with about ``--nnz`` nonzeros each (density ``nnz / d``) are
generated on the workers; daskasync's SAGA and ASAGA make whole-partition passes
(``batch_fraction=1``, the sequential form) and scikit-learn's
``LogisticRegression(solver="saga")`` runs in this process on the same rows, same objective
(``lam = 1 / n``, i.e. ``C = 1``, no intercept). An epoch's time is the slope between the
end of the first epoch and the end of the last (the first epoch includes compilation and
warm-up), for every solver. ``--repeats k`` measures each k times, interleaved, and
reports the median run and the median of the ratios within each repetition.

``bytes``: at ``d = 1e6`` (``--ds``), one asynchronous SAGA task with ``--fraction`` of a
partition's rows: the pickled size of what it is shipped (its arguments, and the model
version or the view of it on its block's columns that it reads) and of its result, against
the CSR size of its sampled rows.

``round``: the driver's share of a synchronous SAGA round at ``d = 1e6``, in this process
(no cluster): adding ``P`` tasks' compact results to the model one by one against
:func:`~daskasync.kernels_saga_apply.add_model_changes` (one pass over the columns), and
storing 20 versions in a history window of 16 against the default window.

``l1``: rcv1-like text data, ``LogisticRegression(penalty="l1")`` with default settings
against scikit-learn's saga run to ``tol=1e-12``: the Jaccard index of the nonzero sets and
the epochs used.

Run ``python -m daskasync.bench.sparse [epochs|bytes|round|l1]`` (a LocalCluster of
``--workers`` single-thread processes) or pass ``--scheduler``; ``--output`` saves the
numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
import timeit
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..api import minimize
from ..constraints import Interval, argparse_type, parse_list
from ..data import PartitionedData

__all__ = ["epoch_costs", "round_costs", "sklearn_epoch"]


def _daskasync_epoch(data: PartitionedData, solver: str, epochs: int) -> dict[str, Any]:
    """Seconds per epoch of ``solver`` (slope over epochs 1..epochs+1), and where a
    gradient task's time went on its worker after the first epoch (the scheduler's task
    stream: running the task, and fetching its inputs, i.e. the model version)."""
    P = data.n_partitions
    client = data.client
    t0 = time.time()
    client.get_task_stream(start=t0)  # starts recording on the scheduler (returns nothing)
    res = minimize(data, solver=solver, batch_fraction=1.0, max_epochs=float(epochs + 1),
                   record_every=1 if solver == "saga" else P, record_objective=False)
    stream = client.get_task_stream(start=t0)
    times = {round(r.epoch): r.time for r in res.history}
    first, last = times[1], times[epochs + 1]
    spent = {"compute": 0.0, "transfer": 0.0}
    tasks = 0
    for rec in stream:
        phases = rec.get("startstops", ())
        if "-grad-" not in str(rec["key"]) or not phases or phases[0]["start"] < t0 + first:
            continue
        tasks += 1
        for ph in phases:
            if ph["action"] in spent:
                spent[ph["action"]] += ph["stop"] - ph["start"]
    per_task = {f"task_{k}_s": v / max(tasks, 1) for k, v in spent.items()}
    return {"epoch_s": (last - first) / epochs, "first_epoch_s": first,
            "objective": float(res.objective), "tasks_timed": tasks, **per_task}


def sklearn_epoch(X: Any, y: np.ndarray, epochs: int) -> dict[str, Any]:
    """Seconds per epoch of scikit-learn's saga on one core (slope between a 1-epoch and
    an ``epochs + 1``-epoch fit)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    def fit(k: int) -> float:
        clf = LogisticRegression(solver="saga", C=1.0, fit_intercept=False, max_iter=k, tol=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf.fit(X, y)
            return time.perf_counter() - t0

    one = min(fit(1) for _ in range(2))
    many = fit(epochs + 1)
    return {"epoch_s": (many - one) / epochs, "first_epoch_s": one}


def _median_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median epoch (an actual run's numbers, not a mix of runs)."""
    ranked = sorted(runs, key=lambda r: r["epoch_s"])
    return dict(ranked[(len(ranked) - 1) // 2])


def epoch_costs(
    client: Any, *, ds: Sequence[int] = (20_000, 200_000, 1_000_000), n: int = 100_000,
    nnz: int = 50, partitions: int = 4, epochs: int = 5, seed: int = 0,
    solvers: Sequence[str] = ("saga", "asaga"), repeats: int = 1,
) -> list[dict[str, Any]]:
    """One row per ``d``: seconds per epoch of each solver and of scikit-learn's saga.

    With ``repeats > 1`` every measurement is repeated, interleaved (each solver, then
    scikit-learn, then again), on the same data: a solver's row is its median run, and its
    ratio to scikit-learn the median of the ratios within each repetition (``ratios``
    lists them), which a slow drift of the machine's speed affects least."""
    rows = []
    for d in ds:
        data = PartitionedData.synthetic("rcv1", n=n, d=int(d), n_partitions=partitions,
                                         seed=seed, client=client, density=nnz / int(d))
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in [*solvers, "sklearn_saga"]}
        try:
            row: dict[str, Any] = {"d": int(d), "n": n, "nnz": int(data.nnz),
                                   "nnz_per_row": data.nnz / n, "partitions": partitions,
                                   "repeats": repeats}
            X, y = data.gather()
            for _ in range(repeats):
                for solver in solvers:
                    runs[solver].append(_daskasync_epoch(data, solver, epochs))
                runs["sklearn_saga"].append(sklearn_epoch(X, y, epochs))
        finally:
            data.release()
        for name, got in runs.items():
            row[name] = _median_of(got)
            row[name]["epoch_s_runs"] = [r["epoch_s"] for r in got]
        for solver in solvers:
            ratios = [a["epoch_s"] / b["epoch_s"]
                      for a, b in zip(runs[solver], runs["sklearn_saga"], strict=True)]
            row[solver]["ratios"] = ratios
            row[solver]["ratio_to_sklearn"] = float(np.median(ratios))
        rows.append(row)
    for solver in solvers:  # flat in d: each d against the smallest
        base = rows[0][solver]["epoch_s"]
        for row in rows:
            row[solver]["ratio_to_smallest_d"] = row[solver]["epoch_s"] / base
    return rows


def task_bytes(client: Any, *, d: int = 1_000_000, n: int = 100_000, nnz: int = 50,
               partitions: int = 4, fraction: float = 0.01, seed: int = 0) -> dict[str, Any]:
    """Pickled bytes in and out of one sequential SAGA task (as ASAGA ships it)."""
    import pickle

    from ..kernels_saga import saga_sequential_kernel, sequential_loss_code
    from ..losses import LogisticLoss
    from ..tasks import sample_rows
    from ..views import block_columns, restrict

    data = PartitionedData.synthetic("rcv1", n=n, d=d, n_partitions=partitions, seed=seed,
                                     client=client, density=nnz / d)
    try:
        rows = int(data.rows_per_partition[0])
        idx = sample_rows(rows, fraction, seed, 0, 0)
        rng = np.random.default_rng(seed)
        model = np.stack([rng.normal(size=d) * 1e-3, rng.normal(size=d) * 1e-4])
        kw = dict(loss_code=sequential_loss_code(LogisticLoss()), fraction=fraction,
                  fit_intercept=False, old=np.zeros(len(idx)), step=0.1, lam2=1.0 / n,
                  lam1=0.0, n=n, sparse_result=True)

        def run(block: Any, model: np.ndarray) -> tuple[int, int, int, int, int]:
            out = saga_sequential_kernel(block, model, partition=0, task_index=0, seed=seed,
                                         **kw)
            view = restrict(model, block_columns(block))
            same = saga_sequential_kernel(block, view, partition=0, task_index=0, seed=seed,
                                          **kw)
            assert np.array_equal(same.model, out.model)
            Xs = block[0][idx]
            csr = Xs.data.nbytes + Xs.indices.nbytes + Xs.indptr.nbytes
            return (len(pickle.dumps(out, protocol=5)), csr, int(Xs.nnz),
                    len(pickle.dumps(view, protocol=5)), len(view.index))

        [shipped] = client.scatter([model], hash=False)
        out_bytes, csr_bytes, sampled_nnz, view_bytes, block_cols = client.submit(
            run, data.parts[0], shipped).result()
        shipped.release()
    finally:
        data.release()
    args_bytes = len(pickle.dumps(kw, protocol=5))
    return {"d": d, "fraction": fraction, "sampled_rows": len(idx),
            "sampled_nnz": sampled_nnz, "sampled_rows_csr_bytes": csr_bytes,
            "result_bytes": out_bytes, "result_bytes_per_nnz": out_bytes / sampled_nnz,
            "task_arguments_bytes": args_bytes, "model_version_bytes": int(model.nbytes),
            "block_columns": block_cols, "model_view_bytes": view_bytes}


def _median_ms(fn: Any, repeats: int = 9) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` calls after a first one
    (compilation, first touch)."""
    fn()
    return 1e3 * float(np.median(timeit.repeat(fn, number=1, repeat=repeats)))


def round_costs(*, d: int = 1_000_000, n: int = 100_000, nnz: int = 50,
                partitions: Sequence[int] = (4, 16), seed: int = 0) -> dict[str, Any]:
    """Milliseconds of the driver's work in a synchronous SAGA round at ``d`` (this process,
    no cluster): the results of ``P`` whole-partition passes added one by one and with
    :func:`~daskasync.kernels_saga_apply.add_model_changes`; and 20 versions published
    into a window of 16 and into the default one."""
    from ..datasets import make_rcv1_like
    from ..engine.broadcast import Broadcaster
    from ..kernels_saga import saga_sequential_kernel, sequential_loss_code
    from ..kernels_saga_apply import add_model_changes, saga_change
    from ..losses import LogisticLoss

    rng = np.random.default_rng(seed)
    model = np.stack([rng.normal(size=d) * 1e-3, rng.normal(size=d) * 1e-4])
    kw = dict(step=0.1, lam2=1.0 / n, lam1=0.0, fit_intercept=False)
    out: dict[str, Any] = {"d": d, "n": n}
    for P in partitions:
        rows = n // P
        results = []
        for p in range(P):
            X, y = make_rcv1_like(n=rows, d=d, density=nnz / d, seed=seed + p)
            results.append(saga_sequential_kernel(
                (X, y), model, loss_code=sequential_loss_code(LogisticLoss()), fraction=1.0,
                old=np.zeros(rows), n=n, partition=p, task_index=0, seed=seed,
                sparse_result=True, **kw))
        theta, total = model[0].copy(), np.zeros(d)

        def one_by_one(results=results, theta=theta, total=total) -> None:
            total.fill(0.0)
            for r in results:
                saga_change(r, model[0], model[1], **kw).add_model(total)
            total *= 1.0 / len(results)
            theta += total

        def one_pass(results=results, theta=theta) -> None:
            add_model_changes(theta, [saga_change(r, model[0], model[1], **kw)
                                      for r in results], 1.0 / len(results))

        out[f"P={P}"] = {"one_by_one_ms": _median_ms(one_by_one),
                         "one_pass_ms": _median_ms(one_pass)}
    for name, window in (("window_default", None), ("window_16", 16)):
        b = Broadcaster(None, window=window)
        t0 = time.perf_counter()
        for _ in range(20):
            b.publish((model[0], model[1]))
        out[name] = {"window": b.window, "publish_20_versions_ms":
                     1e3 * (time.perf_counter() - t0)}
    return out


def l1_support(client: Any, *, n: int = 20_000, d: int = 20_000, nnz: int = 60,
               C: float = 0.5, seed: int = 1, solvers: Sequence[str] = ("saga", "asaga"),
               max_iter: int = 300) -> dict[str, Any]:
    """Nonzero sets of daskasync's L1 fits (default settings) against scikit-learn's saga
    run to ``tol=1e-12``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression as SkLogistic

    from ..datasets import make_rcv1_like
    from ..estimators import LogisticRegression
    from .peers.sklearn import logistic_penalty

    X, y = make_rcv1_like(n=n, d=d, density=nnz / d, seed=seed)
    t0 = time.perf_counter()
    sk = SkLogistic(**logistic_penalty(1.0), solver="saga", C=C, tol=1e-12, max_iter=20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X, y)
    ref = sk.coef_.ravel() != 0
    out: dict[str, Any] = {"n": n, "d": d, "C": C, "sklearn_nonzeros": int(ref.sum()),
                           "sklearn_epochs": int(np.max(sk.n_iter_)),
                           "sklearn_seconds": time.perf_counter() - t0}
    for solver in solvers:
        t0 = time.perf_counter()
        clf = LogisticRegression(penalty="l1", C=C, solver=solver, max_iter=max_iter,
                                 random_state=seed, client=client).fit(X, y)
        got = clf.coef_.ravel() != 0
        out[solver] = {"nonzeros": int(got.sum()),
                       "jaccard": float((got & ref).sum() / max(1, (got | ref).sum())),
                       "epochs": int(clf.n_iter_), "seconds": time.perf_counter() - t0,
                       "stop_reason": clf.result_.stop_reason}
    return out


def _ratio_text(got: dict[str, Any]) -> str:
    ratios = got.get("ratios", [got["ratio_to_sklearn"]])
    text = f"{got['ratio_to_sklearn']:.2f}"
    return text if len(ratios) == 1 else f"{text} [{min(ratios):.2f}-{max(ratios):.2f}]"


def table(rows: Sequence[dict[str, Any]], solvers: Sequence[str] = ("saga", "asaga")) -> str:
    """The rows as a markdown table (milliseconds per epoch)."""
    head = ["d", "nnz/row", "sklearn saga (1 core)"] + [f"{s} (ratio)" for s in solvers]
    head += [f"{s} task: run / fetch" for s in solvers]
    head += [f"{s} / smallest d" for s in solvers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r['d']:,}", f"{r['nnz_per_row']:.1f}",
                 f"{1e3 * r['sklearn_saga']['epoch_s']:.0f} ms"]
        cells += [f"{1e3 * r[s]['epoch_s']:.0f} ms ({_ratio_text(r[s])})" for s in solvers]
        cells += [f"{1e3 * r[s].get('task_compute_s', np.nan):.0f} / "
                  f"{1e3 * r[s].get('task_transfer_s', np.nan):.0f} ms" for s in solvers]
        cells += [f"{r[s]['ratio_to_smallest_d']:.2f}" for s in solvers]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    positive_int = Interval("int", 1)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", nargs="?", default="epochs", choices=("epochs", "bytes", "round", "l1"),
                   help="what to measure (default epochs)")
    p.add_argument("--scheduler", help="address of an existing scheduler (default: LocalCluster)")
    p.add_argument("--workers", type=argparse_type("--workers", int, positive_int), default=2,
                   help="LocalCluster worker processes (default 2)")
    p.add_argument("--threads", type=argparse_type("--threads", int, positive_int), default=1,
                   help="threads per worker (default 1)")
    p.add_argument("--ds", type=parse_list(lambda x: int(float(x))),
                   default=[20_000, 200_000, 1_000_000],
                   help="feature counts, comma separated (bytes: the first; l1: 2e4)")
    p.add_argument("--n", type=argparse_type("--n", int, positive_int), default=100_000,
                   help="rows (default 100000; l1: 20000)")
    p.add_argument("--nnz", type=argparse_type("--nnz", int, positive_int), default=50,
                   help="nonzeros per row (default 50)")
    p.add_argument("--partitions", type=argparse_type("--partitions", int, positive_int),
                   default=4, help="row blocks (default 4)")
    p.add_argument("--epochs", type=argparse_type("--epochs", int, positive_int), default=5,
                   help="timed epochs after the first (default 5)")
    p.add_argument("--repeats", type=argparse_type("--repeats", int, positive_int), default=1,
                   help="epochs: measurements per solver, interleaved; medians reported "
                        "(default 1)")
    p.add_argument("--fraction", type=argparse_type(
        "--fraction", float, Interval("real", 0, 1, closed="right")), default=0.01,
        help="bytes: rows a task samples, as a fraction of its partition (default 0.01)")
    p.add_argument("--C", type=argparse_type("--C", float, Interval("real", 0, closed="neither")),
                   default=0.5, help="l1: inverse regularization (default 0.5)")
    p.add_argument("--output", help="save the numbers as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..clusters import cluster_client

    a = _parser().parse_args(argv)
    if a.experiment == "round":  # the driver's work only: no cluster
        out = round_costs(d=max(a.ds), n=a.n, nnz=a.nnz)
        print(json.dumps(out, indent=1))
        if a.output:
            with open(a.output, "w") as fh:
                json.dump(out, fh, indent=1)
        return 0
    # the workers of the LocalCluster it starts are reachable from this process: data goes
    # to and from them directly, not through the scheduler (a cluster given by --scheduler
    # may only expose its scheduler)
    with cluster_client(a.scheduler, a.workers, a.threads,
                        direct=a.scheduler is None) as client:
        if a.experiment == "epochs":
            out: Any = epoch_costs(client, ds=a.ds, n=a.n, nnz=a.nnz,
                                   partitions=a.partitions, epochs=a.epochs,
                                   repeats=a.repeats)
            print(table(out))
        elif a.experiment == "bytes":
            out = task_bytes(client, d=max(a.ds), n=a.n, nnz=a.nnz, partitions=a.partitions,
                             fraction=a.fraction)
            print(json.dumps(out, indent=1))
        else:
            n = 20_000 if a.n == 100_000 else a.n
            out = l1_support(client, n=n, d=min(a.ds), nnz=60 if a.nnz == 50 else a.nnz,
                             C=a.C)
            print(json.dumps(out, indent=1))
    if a.output:
        with open(a.output, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
