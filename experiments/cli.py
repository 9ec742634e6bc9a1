"""The command line: run, table, speed, walltime, list.
"""
import argparse
import time
from typing import List, Optional

from experiments import layout
from experiments.catalogue import ALIASES, SUITES, resolve


def main(argv: Optional[List[str]] = None) -> None:
    import experiments

    parser = argparse.ArgumentParser(prog="python -m experiments", description=experiments.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "table", "speed"):
        p = sub.add_parser(name)
        p.add_argument("suite", choices=sorted(SUITES) + sorted(ALIASES))
        p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 1 2 3 (with --quick: 1)")
        p.add_argument("--quick", action="store_true", help="a smoke run in minutes: 2 epochs, less data, one seed by "
                       "default; its runs and page stay beside the full ones (runs/experiments/SUITE_quick/)")
        p.add_argument("--runs-dir", default=layout.runs_root())
        if name in ("run", "table"):
            p.add_argument("--workers", type=int, default=2, help="runs trained (run) or evaluated at once")
        if name == "run":
            p.add_argument("--only", nargs="+", metavar="RUN", help="only these students (and the teachers they need)")
            p.add_argument("--drop-overlapping-transfer", action="store_true",
                           help="drop transfer sentences that repeat a sentence of the labeled part, dev or test (without "
                                "it, a suite whose transfer text holds such sentences stops, saying how many)")
        if name == "table":
            p.add_argument("--overall-only", action="store_true", help="no per-language evaluation columns")
        if name in ("run", "table"):
            p.add_argument("--test-data", metavar="DIR", help="also score every run (selected on dev) on the test "
                           "files of DIR, laid out like the data directory (esp.testb, <lang>/test.conllu, test.dp)")
    sub.add_parser("list")
    sub.add_parser("walltime").add_argument("--runs-dir", default=layout.runs_root())
    args = parser.parse_args(argv)
    if getattr(args, "seeds", 0) is None:
        args.seeds = [1] if args.quick else [1, 2, 3]
    # bad arguments fail here, before any run starts, not late with a traceback
    seeds = getattr(args, "seeds", [])
    if any(seed < 0 for seed in seeds):
        parser.error(f"--seeds must be non-negative integers, got {seeds}")
    if len(set(seeds)) != len(seeds):
        parser.error(f"--seeds must not repeat a seed (two workers would share one run folder), got {seeds}")
    if getattr(args, "workers", 1) < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.command == "list":
        for name, fn in sorted(SUITES.items()):
            print(f"{name}: {(fn.__doc__ or '').strip()}")
        for name, (parent, runs) in sorted(ALIASES.items()):
            print(f"{name}: the runs of suite {parent} for this case ({'; '.join(runs)})")
        return
    # what runs or reads runs loads AllenNLP: only now, so that help and `list` answer at once
    from allennlp_structkd.commands import exit_on_sigterm
    from experiments import report, runner, speed

    exit_on_sigterm()  # SIGTERM stops the runs this runner started, as Ctrl-C does
    if args.command == "walltime":
        report.wall_time_table(args.runs_dir)
        return
    args.suite, only = resolve(args.suite, getattr(args, "only", None))
    started = time.time()
    if args.command == "run":
        if args.test_data:  # a wrong folder fails now, not after hours of training
            report.test_data_path(SUITES[args.suite](args.quick), args.test_data)
        runner.run_suite(args.suite, args.seeds, args.workers, args.quick, args.runs_dir, only, args.test_data,
                         drop_overlap=args.drop_overlapping_transfer)
        print(f"suite {args.suite}: {time.time() - started:.0f} s wall")
    elif args.command == "speed":
        if not speed.speed_table(args.suite, args.seeds, args.runs_dir, quick=args.quick):
            raise SystemExit(f"suite {args.suite}{' (quick)' if args.quick else ''} has no finished run of seed {args.seeds[0]} "
                             f"with an archive under {layout.suite_folder(args.runs_dir, args.suite, args.quick)}: "
                             f"run it first (python -m experiments run {args.suite}"
                             f"{' --quick' if args.quick else ''})")
    else:
        report.write_table(args.suite, args.seeds, args.quick, args.runs_dir, per_language=not args.overall_only,
                           test_dir=args.test_data, workers=args.workers)


