"""The ``daskasync`` console script.

``daskasync demo`` is the main job: it starts a LocalCluster (unless ``--scheduler`` is
given), builds a synthetic problem on the workers (or loads ``--data FILE`` in LIBSVM
format), and races synchronous SGD against ASGD, printing what each reached.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator, Sequence

__all__ = ["main", "cluster_client"]


@contextlib.contextmanager
def cluster_client(
    scheduler: str | None, workers: int, threads: int, *, timeout: str = "20s",
    security: object | None = None,
) -> Iterator[object]:
    """A client on ``scheduler``, or on a LocalCluster of ``workers`` processes that this
    context starts and closes. An unreachable address raises ``ValueError`` naming it."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout, security=security)
        except OSError as err:
            raise ValueError(
                f"scheduler: cannot connect to {scheduler!r} within {timeout} ({err}); is "
                "`dask scheduler` running there, and does it need TLS credentials?"
            ) from err
        with client:
            yield client
        return
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    ) as cluster, Client(cluster) as client:
        yield client


def _demo(args: argparse.Namespace) -> int:
    import daskasync

    with cluster_client(args.scheduler, args.workers, args.threads) as client:
        t0 = time.perf_counter()
        if args.data:
            data = daskasync.PartitionedData.from_libsvm(
                args.data, n_partitions=args.partitions, client=client
            )
            labels = data.label_values
            if labels is not None and set(labels.tolist()) - {-1.0, 1.0}:
                print(f"labels {labels.tolist()} are not +-1: fitting least squares instead")
                args.loss = "squared"
        else:
            data = daskasync.PartitionedData.synthetic(
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
            res = daskasync.minimize(
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
