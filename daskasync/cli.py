"""The ``daskasync`` console script.

``daskasync demo`` is the main job: it starts a LocalCluster (unless ``--scheduler`` is
given), builds a synthetic problem on the workers (or loads ``--data FILE`` in LIBSVM
format), and races synchronous SGD against ASGD, printing what each reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .clusters import cluster_client

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .api import minimize
    from .data import PartitionedData

    with cluster_client(args.scheduler, args.workers, args.threads) as client:
        t0 = time.perf_counter()
        if args.data:
            data = PartitionedData.from_libsvm(
                args.data, n_partitions=args.partitions, client=client
            )
            labels = data.label_values
            if labels is not None and set(labels.tolist()) - {-1.0, 1.0}:
                print(f"labels {labels.tolist()} are not +-1: fitting least squares instead")
                args.loss = "squared"
        else:
            data = PartitionedData.synthetic(
                args.kind,
                n=args.n,
                d=args.d,
                n_partitions=args.partitions,
                seed=args.seed,
                client=client,
            )
        print(f"{data!r} ready in {time.perf_counter() - t0:.1f}s on {len(client.nthreads())} workers")
        out = {}
        for solver in args.solvers:
            res = minimize(
                data,
                solver=solver,
                loss=args.loss,
                batch_fraction=args.batch_fraction,
                max_epochs=args.epochs,
                seed=args.seed,
                stragglers=None if args.stragglers == "none" else args.stragglers,
            )
            out[solver] = res
            print(
                f"{solver:>5}: objective {res.objective:.6f}  updates {res.updates:6d}  "
                f"epochs {res.epochs:5.2f}  time {res.wall_time:6.2f}s  "
                f"mean staleness {res.mean_staleness:5.2f}  dropped {res.dropped}"
            )
        if args.output:
            with open(args.output, "w") as fh:
                json.dump({k: v.to_dict() for k, v in out.items()}, fh, indent=1)
            print(f"wrote {args.output}")
        data.release()
    return 0


def _key_value(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not sep or not key.strip():
            raise ValueError
        return key.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KEY=NUMBER, got {text!r}") from None


def _bench(args: argparse.Namespace) -> int:
    from .bench.runner import run_benchmark

    kw = dict(
        data=args.data, synthetic=args.synthetic, n=args.n, d=args.d,
        synthetic_params=dict(args.synthetic_param or []), partitions=args.partitions,
        solvers=args.solvers, stragglers=args.stragglers, straggler_c=args.straggler_c,
        straggler_form=args.straggler_form, straggler_workers=args.straggler_workers,
        targets=args.targets, time_budget=args.time_budget, seeds=args.seeds,
        repeats=args.repeats, lam=args.lam, loss=args.loss, tune=args.tune,
        tune_seconds=args.tune_seconds, output=args.output, cache_dir=args.cache_dir,
        overhead_updates=args.overhead_updates,
        **({"tune_grid": args.tune_grid} if args.tune_grid else {}),
    )
    if args.scheduler:
        with cluster_client(args.scheduler, args.workers, args.threads) as client:
            run_benchmark(client, **kw)
        return 0
    # a fresh LocalCluster for each launch
    run_benchmark(
        cluster_factory=lambda: cluster_client(None, args.workers, args.threads),
        launches=args.launches,
        workers_info={"workers": args.workers, "threads_per_worker": args.threads}, **kw,
    )
    return 0


def _typed(name: str, parse: Callable[[str], Any], allowed: Sequence[Any]) -> dict[str, Any]:
    """``add_argument`` keywords: a ``type=`` that checks ``allowed`` (the library's
    constraints, so the parser refuses what the library refuses, with its words), and the
    choices as metavar when ``allowed`` is one :class:`~daskasync.constraints.Options`."""
    from .constraints import Options, argparse_type

    allowed = [c for c in allowed if c is not None]  # an option's text is never None
    kw: dict[str, Any] = {"type": argparse_type(name, parse, *allowed)}
    if len(allowed) == 1 and isinstance(allowed[0], Options):
        kw["metavar"] = "{" + ",".join(str(v) for v in allowed[0].values) + "}"
    return kw


def _cluster_options(parser: argparse.ArgumentParser, threads: int) -> None:
    from .data.checks import POSITIVE_INT

    parser.add_argument("--scheduler",
                        help="address of an existing scheduler (default: LocalCluster)")
    parser.add_argument("--workers", default=2, help="LocalCluster worker processes",
                        **_typed("--workers", int, [POSITIVE_INT]))
    parser.add_argument("--threads", default=threads, help="threads per worker",
                        **_typed("--threads", int, [POSITIVE_INT]))


def _add_demo(sub: Any) -> None:
    from .bench.peers import LOSSES
    from .bench.specs import STRAGGLER_CONSTRAINTS
    from .config import CONSTRAINTS
    from .constraints import Interval, Options
    from .data.checks import POSITIVE_INT
    from .datasets import SYNTHETIC_KINDS

    demo = sub.add_parser("demo", help="race SGD against ASGD on an embedded default problem")
    _cluster_options(demo, threads=1)
    demo.add_argument("--data", help="LIBSVM file (plain, .gz, .bz2, .xz) instead of synthetic data")
    demo.add_argument("--kind", default="epsilon",
                      **_typed("--kind", str, [Options(*SYNTHETIC_KINDS)]))
    demo.add_argument("--n", default=40_000, help="synthetic rows",
                      **_typed("--n", int, [POSITIVE_INT]))
    demo.add_argument("--d", default=100, help="synthetic columns",
                      **_typed("--d", int, [POSITIVE_INT]))
    demo.add_argument("--partitions", default=8, **_typed("--partitions", int, [POSITIVE_INT]))
    demo.add_argument("--loss", default="logistic", **_typed("--loss", str, [Options(*LOSSES)]))
    demo.add_argument("--solvers", nargs="+", default=["sgd", "asgd"],
                      **_typed("--solvers", str, [Options("sgd", "asgd")]))
    demo.add_argument("--epochs", default=3.0, help="passes over the data per solver",
                      **_typed("--epochs", float, [Interval("real", 0, closed="neither")]))
    demo.add_argument("--batch-fraction", default=0.1,
                      **_typed("--batch-fraction", float, CONSTRAINTS["batch_fraction"]))
    demo.add_argument("--stragglers", default="none",
                      **_typed("--stragglers", str, STRAGGLER_CONSTRAINTS["stragglers"]))
    demo.add_argument("--seed", default=0, **_typed("--seed", int, CONSTRAINTS["seed"]))
    demo.add_argument("--output", help="write the results as JSON here")
    demo.set_defaults(func=_demo)


def _add_bench(sub: Any) -> None:
    from .bench.peers import LOSSES, PEERS
    from .bench.runner import CONSTRAINTS, SEED, TARGET, TUNE_MULTIPLE, WORKER_NAME
    from .constraints import Options, argparse_list_type
    from .data.checks import POSITIVE_INT
    from .datasets import SYNTHETIC_KINDS
    from .solvers.registry import SOLVERS

    bench = sub.add_parser(
        "bench", help="straggler benchmark: daskasync's solvers and peers, same cluster",
        description="Race sync/async SGD and SAGA and peer solvers (dask-glm, dask-ml, "
        "scikit-learn) under ASYNC's straggler models; writes results.json, results.md and "
        "suboptimality.png into --output.",
    )
    _cluster_options(bench, threads=8)
    bench.add_argument("--data", help="LIBSVM file with binary labels (default: synthetic)")
    bench.add_argument("--synthetic", default="epsilon",
                       **_typed("--synthetic", str, [Options(*SYNTHETIC_KINDS)]))
    bench.add_argument("--n", default=100_000, help="synthetic rows",
                       **_typed("--n", int, [POSITIVE_INT]))
    bench.add_argument("--d", default=100, help="synthetic columns",
                       **_typed("--d", int, [POSITIVE_INT]))
    bench.add_argument("--synthetic-param", type=_key_value, action="append", metavar="KEY=NUMBER",
                       help="a parameter of the synthetic family (repeatable), e.g. decay=0.5 "
                       "for an ill-conditioned epsilon-like problem")
    bench.add_argument("--partitions", default=32,
                       **_typed("--partitions", int, CONSTRAINTS["partitions"]))
    bench.add_argument("--solvers", nargs="+", default=["sgd", "asgd", "saga", "asaga"],
                       help=f"daskasync's solvers {', '.join(sorted(SOLVERS))} (options as "
                       f"name[key=value,...]) and peers: {', '.join(sorted(PEERS))}")
    bench.add_argument("--stragglers", default="none",
                       **_typed("--stragglers", str, CONSTRAINTS["stragglers"]))
    bench.add_argument("--straggler-c", default=1.0, help="intensity c",
                       **_typed("--straggler-c", float, CONSTRAINTS["straggler_c"]))
    bench.add_argument("--straggler-form", default="partition",
                       help="inside daskasync's tasks, or on the workers (peers too)",
                       **_typed("--straggler-form", str, CONSTRAINTS["straggler_form"]))
    bench.add_argument("--straggler-workers", metavar="NAME,...",
                       type=argparse_list_type("--straggler-workers", str, WORKER_NAME),
                       help="worker form: names of the straggling workers, comma separated "
                       "(LocalCluster's are 0, 1, ...; default: the model's choice, workers "
                       "ordered by name)")
    bench.add_argument("--targets", default=[1e-2, 1e-4],
                       type=argparse_list_type("--targets", float, TARGET),
                       help="relative suboptimalities, comma separated")
    bench.add_argument("--time-budget", default=60.0, help="seconds per run",
                       **_typed("--time-budget", float, CONSTRAINTS["time_budget"]))
    bench.add_argument("--seeds", default=[0], type=argparse_list_type("--seeds", int, SEED),
                       help="comma separated")
    bench.add_argument("--repeats", default=1, **_typed("--repeats", int, CONSTRAINTS["repeats"]))
    bench.add_argument("--launches", default=1,
                       help="fresh LocalClusters to run every solver on, one after the other "
                       "(medians over seeds x repeats x launches; not with --scheduler)",
                       **_typed("--launches", int, CONSTRAINTS["launches"]))
    bench.add_argument("--lam", help="L2 strength (default 1/n)",
                       **_typed("--lam", float, CONSTRAINTS["lam"]))
    bench.add_argument("--loss", default="logistic", **_typed("--loss", str, [Options(*LOSSES)]))
    bench.add_argument("--tune", action="store_true",
                       help="tune daskasync's steps on a short prefix (same grid for all)")
    bench.add_argument("--tune-seconds", default=5.0,
                       **_typed("--tune-seconds", float, CONSTRAINTS["tune_seconds"]))
    bench.add_argument("--tune-grid", type=argparse_list_type("--tune-grid", float, TUNE_MULTIPLE),
                       help="multiples of the default step to try (default 0.25,1,4,16,64,256)")
    bench.add_argument("--cache-dir", help="f* cache (default ~/.cache/daskasync)")
    bench.add_argument("--overhead-updates", default=1000,
                       **_typed("--overhead-updates", int, CONSTRAINTS["overhead_updates"]))
    bench.add_argument("--output", default="bench-results")
    bench.set_defaults(func=_bench)


def build_parser() -> argparse.ArgumentParser:
    """The ``daskasync`` parser; every numeric or choice option is checked with the
    library's constraints (:func:`daskasync.constraints.argparse_type`)."""
    parser = argparse.ArgumentParser(prog="daskasync", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bench" and args.scheduler and args.launches > 1:
        parser.error(f"argument --launches: must be 1 with --scheduler (each launch starts a "
                     f"fresh LocalCluster), got {args.launches}")
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
