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
from collections.abc import Sequence

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


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


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

    with cluster_client(args.scheduler, args.workers, args.threads) as client:
        info = None if args.scheduler else {"workers": args.workers,
                                            "threads_per_worker": args.threads}
        run_benchmark(
            client, data=args.data, synthetic=args.synthetic, n=args.n, d=args.d,
            synthetic_params=dict(args.synthetic_param or []), partitions=args.partitions,
            solvers=args.solvers, stragglers=args.stragglers,
            straggler_c=args.straggler_c, straggler_form=args.straggler_form,
            targets=args.targets, time_budget=args.time_budget, seeds=args.seeds,
            repeats=args.repeats, lam=args.lam, loss=args.loss, tune=args.tune,
            tune_seconds=args.tune_seconds, output=args.output, cache_dir=args.cache_dir,
            overhead_updates=args.overhead_updates, workers_info=info,
            **({"tune_grid": args.tune_grid} if args.tune_grid else {}),
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daskasync", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="race SGD against ASGD on an embedded default problem")
    demo.add_argument("--scheduler", help="address of an existing scheduler (default: LocalCluster)")
    demo.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    demo.add_argument("--threads", type=int, default=1, help="threads per worker")
    demo.add_argument("--data", help="LIBSVM file (plain, .gz, .bz2, .xz) instead of synthetic data")
    demo.add_argument("--kind", choices=("epsilon", "rcv1"), default="epsilon")
    demo.add_argument("--n", type=int, default=40_000, help="synthetic rows")
    demo.add_argument("--d", type=int, default=100, help="synthetic columns")
    demo.add_argument("--partitions", type=int, default=8)
    demo.add_argument("--loss", choices=("logistic", "squared"), default="logistic")
    demo.add_argument("--solvers", nargs="+", default=["sgd", "asgd"], choices=("sgd", "asgd"))
    demo.add_argument("--epochs", type=float, default=3.0)
    demo.add_argument("--batch-fraction", type=float, default=0.1)
    demo.add_argument("--stragglers", choices=("none", "intensity", "cloud"), default="none")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--output", help="write the results as JSON here")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser(
        "bench", help="straggler benchmark: daskasync's solvers and peers, same cluster",
        description="Race sync/async SGD and SAGA and peer solvers (dask-glm, dask-ml, "
        "scikit-learn) under ASYNC's straggler models; writes results.json, results.md and "
        "suboptimality.png into --output.",
    )
    bench.add_argument("--scheduler", help="address of an existing scheduler (default: LocalCluster)")
    bench.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    bench.add_argument("--threads", type=int, default=8, help="threads per worker")
    bench.add_argument("--data", help="LIBSVM file with binary labels (default: synthetic)")
    bench.add_argument("--synthetic", choices=("epsilon", "rcv1"), default="epsilon")
    bench.add_argument("--n", type=int, default=100_000, help="synthetic rows")
    bench.add_argument("--d", type=int, default=100, help="synthetic columns")
    bench.add_argument("--synthetic-param", type=_key_value, action="append", metavar="KEY=NUMBER",
                       help="a parameter of the synthetic family (repeatable), e.g. decay=0.5 "
                       "for an ill-conditioned epsilon-like problem")
    bench.add_argument("--partitions", type=int, default=32)
    bench.add_argument("--solvers", nargs="+", default=["sgd", "asgd", "saga", "asaga"],
                       help="sgd, asgd, saga, asaga (options as name[key=value,...]) and "
                       "peers: dask-glm-lbfgs, dask-glm-gradient_descent, dask-glm-admm, "
                       "dask-glm-proximal_grad, dask-ml-sgd, sklearn-saga, sklearn-lbfgs")
    bench.add_argument("--stragglers", choices=("none", "intensity", "cloud"), default="none")
    bench.add_argument("--straggler-c", type=float, default=1.0, help="intensity c")
    bench.add_argument("--straggler-form", choices=("partition", "worker"), default="partition",
                       help="inside daskasync's tasks, or on the workers (peers too)")
    bench.add_argument("--targets", type=_floats, default=[1e-2, 1e-4],
                       help="relative suboptimalities, comma separated")
    bench.add_argument("--time-budget", type=float, default=60.0, help="seconds per run")
    bench.add_argument("--seeds", type=_ints, default=[0], help="comma separated")
    bench.add_argument("--repeats", type=int, default=1)
    bench.add_argument("--lam", type=float, help="L2 strength (default 1/n)")
    bench.add_argument("--loss", choices=("logistic", "squared"), default="logistic")
    bench.add_argument("--tune", action="store_true",
                       help="tune daskasync's steps on a short prefix (same grid for all)")
    bench.add_argument("--tune-seconds", type=float, default=5.0)
    bench.add_argument("--tune-grid", type=_floats,
                       help="multiples of the default step to try (default 0.25,1,4,16,64,256)")
    bench.add_argument("--cache-dir", help="f* cache (default ~/.cache/daskasync)")
    bench.add_argument("--overhead-updates", type=int, default=1000)
    bench.add_argument("--output", default="bench-results")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
