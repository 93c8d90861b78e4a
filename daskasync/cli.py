"""The ``daskasync`` console script.

``daskasync demo`` makes the library's case in under a minute: on a LocalCluster it starts
(or ``--scheduler``), it races synchronous L-BFGS against asynchronous L-BFGS under
injected stragglers and prints a time-to-target table, the speed-up and a verdict
(:mod:`daskasync.demo`). ``daskasync bench`` is the full straggler benchmark, peers
included (:func:`daskasync.bench.run_benchmark`). The two share their option names.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .clusters import cluster_client
from .demo import shown as as_typed

__all__ = ["CACHE_DIR", "build_parser", "main"]

#: where ``f*`` is cached unless ``--cache-dir`` says otherwise (as ``run_benchmark``)
CACHE_DIR = "~/.cache/daskasync"


def _race_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``run_benchmark`` arguments that ``demo`` and ``bench`` share."""
    return dict(
        data=args.data, synthetic=args.synthetic, n=args.n, d=args.d,
        synthetic_params=dict(args.synthetic_param or []), partitions=args.partitions,
        solvers=args.solvers, stragglers=args.stragglers, straggler_c=args.straggler_c,
        straggler_form=args.straggler_form, targets=args.targets,
        time_budget=args.time_budget, seeds=args.seeds, lam=args.lam, loss=args.loss,
        output=args.output, cache_dir=args.cache_dir,
    )


def _demo(args: argparse.Namespace) -> int:
    from .demo import dashboard_note, describe_start, run_demo, summary

    kw = _race_kwargs(args)
    if args.synthetic_param is None:
        del kw["synthetic_params"]  # the demo's own
    dashboard = None if args.scheduler else args.dashboard_address
    with cluster_client(args.scheduler, args.workers, args.threads,
                        dashboard_address=dashboard) as client:
        link = client.dashboard_link or None
        print(dashboard_note(link), flush=True)
        print(describe_start(args.solvers, args.stragglers, args.time_budget), flush=True)
        results = run_demo(client, **kw)
        print(summary(results, output=args.output, dashboard=link), flush=True)
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
        **_race_kwargs(args), straggler_workers=args.straggler_workers,
        repeats=args.repeats, tune=args.tune, tune_seconds=args.tune_seconds,
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


def _add(parser: argparse.ArgumentParser, flag: str, text: str, *aliases: str,
         default: Any = None, shown: str | None = None, **kw: Any) -> None:
    """``add_argument`` with help that ends with the default (``shown``, else the default
    as typed), unless there is none."""
    if default is not None:
        text += f" (default: {shown if shown is not None else as_typed(default)})"
    parser.add_argument(flag, *aliases, default=default, help=text, **kw)


def _cluster_options(parser: argparse.ArgumentParser, threads: int) -> None:
    from .data.checks import POSITIVE_INT

    _add(parser, "--scheduler", "address of a running scheduler, e.g. tcp://host:8786 "
         "(default: start a LocalCluster of --workers processes on this machine, closed at "
         "the end)", metavar="ADDRESS")
    _add(parser, "--workers", "LocalCluster worker processes", default=2,
         **_typed("--workers", int, [POSITIVE_INT]))
    _add(parser, "--threads", "threads per LocalCluster worker", default=threads,
         **_typed("--threads", int, [POSITIVE_INT]))


def _data_options(parser: argparse.ArgumentParser, n: int, d: int, *aliases: str,
                  params: str = "the family's own") -> None:
    from .constraints import Options
    from .data.checks import POSITIVE_INT
    from .datasets import SYNTHETIC_KINDS

    _add(parser, "--data", "LIBSVM file with binary labels (plain, .gz, .bz2, .xz) "
         "(default: synthetic data made on the workers)", metavar="FILE")
    _add(parser, "--synthetic", "synthetic family: dense epsilon-like or sparse rcv1-like"
         + ("; --kind is a deprecated alias" if aliases else ""), *aliases,
         default="epsilon", dest="synthetic",
         **_typed("--synthetic", str, [Options(*SYNTHETIC_KINDS)]))
    _add(parser, "--n", "synthetic rows", default=n, **_typed("--n", int, [POSITIVE_INT]))
    _add(parser, "--d", "synthetic columns", default=d, **_typed("--d", int, [POSITIVE_INT]))
    parser.add_argument("--synthetic-param", type=_key_value, action="append",
                        metavar="KEY=NUMBER",
                        help="a parameter of the synthetic family (repeatable), e.g. "
                        f"decay=0.5 for an ill-conditioned epsilon-like problem (default: "
                        f"{params})")


def _race_options(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """The options ``demo`` and ``bench`` share (same names, same help; ``defaults``:
    ``partitions``, ``solvers``, ``stragglers``, ``targets``, ``time_budget``,
    ``output``)."""
    from .bench.peers import LOSSES, PEERS
    from .bench.runner import CONSTRAINTS, SEED, TARGET
    from .constraints import Options, argparse_list_type
    from .solvers.registry import SOLVERS

    _add(parser, "--partitions", "row blocks of the data on the cluster, each one task's "
         "work", default=defaults["partitions"],
         **_typed("--partitions", int, CONSTRAINTS["partitions"]))
    _add(parser, "--solvers", f"solvers to race: daskasync's {', '.join(sorted(SOLVERS))} "
         "(minimize's or the solver's own options as name[key=value,...], e.g. "
         "lbfgs[precondition=none]) and peers: "
         f"{', '.join(sorted(PEERS))}", nargs="+", default=list(defaults["solvers"]),
         shown=" ".join(defaults["solvers"]))
    _add(parser, "--stragglers", "injected delays: none, one slow partition (intensity, "
         "--straggler-c) or ASYNC's long tail (cloud)", default=defaults["stragglers"],
         **_typed("--stragglers", str, CONSTRAINTS["stragglers"]))
    _add(parser, "--straggler-c", "intensity c: the slow partition sleeps c times its task "
         "time", default=1.0, **_typed("--straggler-c", float, CONSTRAINTS["straggler_c"]))
    _add(parser, "--straggler-form", "where the delays act: inside daskasync's tasks "
         "(partition), or on the workers after every task, peers included (worker)",
         default="partition",
         **_typed("--straggler-form", str, CONSTRAINTS["straggler_form"]))
    _add(parser, "--targets", "relative suboptimalities (f - f*) / f* to time, comma "
         "separated", default=list(defaults["targets"]), metavar="T,...",
         type=argparse_list_type("--targets", float, TARGET))
    _add(parser, "--time-budget", "seconds per run: every daskasync run lasts its whole "
         "budget", default=defaults["time_budget"], metavar="SECONDS",
         **_typed("--time-budget", float, CONSTRAINTS["time_budget"]))
    _add(parser, "--seeds", "seeds, comma separated: every solver runs once per seed and "
         "times are medians", default=[0], metavar="S,...",
         type=argparse_list_type("--seeds", int, SEED))
    _add(parser, "--lam", "L2 strength (default: 1/n)", metavar="LAMBDA",
         **_typed("--lam", float, CONSTRAINTS["lam"]))
    _add(parser, "--loss", "loss", default="logistic",
         **_typed("--loss", str, [Options(*LOSSES)]))
    _add(parser, "--output", "folder (created) for results.json, results.md and the plot "
         "suboptimality.png, relative to the current folder", default=defaults["output"],
         metavar="FOLDER")
    _add(parser, "--cache-dir", f"where f* (the optimum each target is relative to) is "
         f"cached, computed once per data set, loss and lam (default: {CACHE_DIR})",
         metavar="FOLDER")


def _add_demo(sub: Any) -> None:
    from .demo import DEMO_DEFAULTS

    demo = sub.add_parser(
        "demo", help="synchronous against asynchronous L-BFGS under stragglers, in a minute",
        description="Race a synchronous solver against an asynchronous one under injected "
        "stragglers on an embedded default problem (no files needed); print the seconds "
        "to each target, the speed-up and a verdict, and write results.json, results.md "
        "and suboptimality.png into --output.",
    )
    _cluster_options(demo, threads=DEMO_DEFAULTS["threads"])
    _add(demo, "--dashboard-address", "where the LocalCluster serves its dashboard (a "
         "busy port is replaced by a free one)", default=":8787", metavar="ADDRESS")
    _data_options(demo, DEMO_DEFAULTS["n"], DEMO_DEFAULTS["d"], "--kind",
                  params="decay=0.5 for epsilon, the family's own for rcv1")
    _race_options(demo, DEMO_DEFAULTS)
    demo.set_defaults(func=_demo)


def _add_bench(sub: Any) -> None:
    from .bench.runner import CONSTRAINTS, TUNE_MULTIPLE, WORKER_NAME
    from .constraints import argparse_list_type

    bench = sub.add_parser(
        "bench", help="straggler benchmark: daskasync's solvers and peers, same cluster",
        description="Race daskasync's solvers and peer solvers (dask-glm, dask-ml, "
        "scikit-learn) under ASYNC's straggler models; writes results.json, results.md and "
        "suboptimality.png into --output.",
    )
    _cluster_options(bench, threads=8)
    _data_options(bench, 100_000, 100)
    _race_options(bench, {"partitions": 32, "solvers": ("sgd", "asgd", "saga", "asaga"),
                          "stragglers": "none", "targets": (1e-2, 1e-4),
                          "time_budget": 60.0, "output": "bench-results"})
    bench.add_argument("--straggler-workers", metavar="NAME,...",
                       type=argparse_list_type("--straggler-workers", str, WORKER_NAME),
                       help="worker form: names of the straggling workers, comma separated, "
                       "LocalCluster's are 0, 1, ... (default: the model's choice, workers "
                       "ordered by name)")
    _add(bench, "--repeats", "runs per solver and seed (times are medians over them)",
         default=1, **_typed("--repeats", int, CONSTRAINTS["repeats"]))
    _add(bench, "--launches", "fresh LocalClusters to run every solver on, one after the "
         "other (medians over seeds x repeats x launches; not with --scheduler)", default=1,
         **_typed("--launches", int, CONSTRAINTS["launches"]))
    bench.add_argument("--tune", action="store_true",
                       help="tune daskasync's steps on a short prefix, the same grid for "
                       "all (default: off, each solver's principled step)")
    _add(bench, "--tune-seconds", "seconds per candidate step with --tune", default=5.0,
         **_typed("--tune-seconds", float, CONSTRAINTS["tune_seconds"]))
    _add(bench, "--tune-grid", "multiples of the default step to try with --tune "
         "(default: 0.25,1,4,16,64,256)", metavar="M,...",
         type=argparse_list_type("--tune-grid", float, TUNE_MULTIPLE))
    _add(bench, "--overhead-updates", "updates of the driver-overhead measurement (0 skips "
         "it)", default=1000,
         **_typed("--overhead-updates", int, CONSTRAINTS["overhead_updates"]))
    bench.set_defaults(func=_bench)


def build_parser() -> argparse.ArgumentParser:
    """The ``daskasync`` parser; every numeric or choice option is checked with the
    library's constraints (:func:`daskasync.constraints.argparse_type`), and every
    option's help states its default."""
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
