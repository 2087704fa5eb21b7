"""The `disco` command line's parser: one subcommand per command, each with its handler."""

from __future__ import annotations

import argparse
from typing import NoReturn, Sequence

from disco_rules.discovery.cli import export, inspect, run, score


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other error (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"disco: error: {message} (see `{self.prog} --help`)\n")


def _port(text: str) -> int:
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    port = int(text) if text.strip().isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return port


def _cluster_address(text: str) -> str:
    """argparse type: a Ray cluster address of a form Ray connects to, checked before
    anything loads (whether it answers is asked when Ray starts)."""
    from disco_rules.cluster.address import ClusterUnreachableError, endpoint

    try:
        endpoint(text)
    except ClusterUnreachableError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _positive(text: str) -> int:
    """argparse type: a positive integer."""
    number = int(text) if text.strip().isdigit() else 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return number


def _add_metrics_options(command: argparse.ArgumentParser) -> None:
    """--metrics-port and --metrics-host, of the commands that run a search."""
    command.add_argument("--metrics-port", type=_port, metavar="PORT",
                         help="serve Prometheus metrics on this port (default: no server)")
    command.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                         help="address the metrics server binds to (default: 127.0.0.1)")


def build_parser() -> argparse.ArgumentParser:
    """The `disco` parser; each command's namespace carries its handler (`args.handler`)."""
    from disco_rules import export as export_formats

    parser = _Parser(prog="disco", description="Discover learning algorithms.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser("launch", help="start a search from a TOML config")
    command.add_argument("config", help="config file (see examples/quickstart.toml)")
    command.add_argument("--run-dir", help="where to write the run (default: runs/NAME-TIME)")
    command.add_argument("--generations", type=int, help="override the config's generations")
    command.add_argument("--seed", type=int,
                        help="override the config's seed (the same search, another seed)")
    command.add_argument("--address", type=_cluster_address,
                         help="Ray cluster address (default: Ray in-process)")
    _add_metrics_options(command)
    command.set_defaults(handler=run.launch)

    command = commands.add_parser("resume", help="continue a run after a crash or Ctrl-C")
    command.add_argument("run", help="run directory")
    command.add_argument("--generations", type=int, help="run until this many generations")
    command.add_argument("--address", type=_cluster_address,
                         help="Ray cluster address (default: Ray in-process)")
    _add_metrics_options(command)
    command.set_defaults(handler=run.resume)

    command = commands.add_parser(
        "inspect", help="a run's best programs, one stored program (RUN:ID), or a program file")
    command.add_argument("target", help="RUN, RUN:ID or program file")
    command.add_argument("--top", type=int, default=10,
                         help="how many candidates of a run to list (default 10)")
    command.add_argument("--by", choices=["validation", "fitness"], default="validation",
                         help="rank a run's candidates by meta-validation score on held-out "
                              "tasks, validated ones first, as the launch summary does "
                              "(default), or by training fitness")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--pareto", action="store_true",
                         help="the complexity-fitness hall of fame: per program size, the best "
                              "meta-validated program, the Pareto front and the chosen winner")
    command.add_argument("--levels", action="store_true",
                         help="the scheduler's level buffer: parameters, regret, times sampled")
    command.set_defaults(handler=inspect.inspect)

    command = commands.add_parser("simplify", help="print the simplified program")
    command.add_argument("program", help="program file or RUN:ID")
    command.set_defaults(handler=inspect.simplify)

    command = commands.add_parser("export", help="write the program or network as plain Python")
    command.add_argument("program", help="program file or RUN:ID (a program or a network)")
    command.add_argument("--format", required=True, choices=list(export_formats.FORMATS),
                        help=export_formats.formats_help())
    command.add_argument("--name", help="the Python name of an exported program (default: "
                                       "RUN_cID for a stored candidate, the program's own "
                                       "name for a file); a network keeps drift() or lpg()")
    command.add_argument("-o", "--output", help="file to write (default: stdout)")
    command.set_defaults(handler=export.export)

    command = commands.add_parser(
        "submit", help="hand a search to a Ray cluster's job server (ray job submit)")
    command.add_argument("config", help="config file; its folder is sent as the working dir")
    command.add_argument("--address", required=True,
                        help="the cluster's job server, e.g. http://127.0.0.1:8265")
    command.add_argument("--run-dir", required=True,
                        help="run directory on the head node: an absolute path on storage "
                             "that outlives the job (a relative one lands in the job's "
                             "temporary working directory)")
    command.add_argument("--generations", type=int, help="override the config's generations")
    command.add_argument("--seed", type=int, help="override the config's seed")
    command.set_defaults(handler=run.submit)

    command = commands.add_parser("status", help="a run's progress, from its archive")
    command.add_argument("run", help="run directory")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.set_defaults(handler=run.status)

    command = commands.add_parser(
        "score", help="score programs or networks on a run's held-out (or training) tasks, "
                      "as the run scores its candidates")
    command.add_argument("candidates", nargs="+", help="program files or RUN:ID")
    command.add_argument("--run", required=True, help="run directory whose tasks to use")
    command.add_argument("--tasks", choices=["heldout", "train"], default="heldout",
                       help="the run's held-out tasks (default) or its training tasks")
    command.add_argument("--seeds", type=int, help="seeds per task (default: the run's)")
    command.set_defaults(handler=score.score)

    command = commands.add_parser(
        "transfer", help="a run's winner (or RUN:ID) and program files against AdamW tuned per "
                         "task on the run's held-out tasks and variants of them, on fresh seeds")
    command.add_argument("run", metavar="RUN[:ID]|CONFIG.toml",
                          help="run directory (scores its chosen winner: the meta-validated "
                               "program with the highest mean - 2 SE), RUN:ID, or a config "
                               "file (scores only the PROGRAMs, on its held-out tasks)")
    command.add_argument("programs", nargs="*", metavar="PROGRAM",
                          help="program files (or RUN:ID) to score beside it and the "
                               "references (adam, lion, momentum)")
    command.add_argument("--seeds", type=_positive, default=8,
                          help="tuning seeds, and as many scoring seeds, per task (default 8)")
    command.add_argument("--run-seed", type=int,
                          help="the tuning keys' seed (default: the run's seed + 1, seeds its "
                               "meta-validation never used)")
    command.add_argument("--test-seed", type=int,
                          help="the scoring keys' seed (default: the tuning keys' seed + 1)")
    command.add_argument("--tasks", type=_positive,
                          help="evaluate only the first N tasks of the suite (the held-out "
                               "tasks come first, then the variants, cheapest first)")
    command.add_argument("--top", type=_positive, metavar="N",
                          help="the run's N best by meta-validation instead of its winner, "
                               "and a calibration table: each optimizer's in-search validation "
                               "score beside its transfer score, with their rank correlation")
    command.add_argument("--address", type=_cluster_address,
                          help="Ray cluster address: train the tasks at once on its actors "
                               "(default: one after another in this process)")
    command.add_argument("--cache", metavar="FILE",
                          help="JSON file of finished tunings, read and extended after every "
                               "task (a rerun with other programs trains only those)")
    command.add_argument("--out", metavar="FILE.md",
                          help="also write the report here, and the first candidate's "
                               "curves beside it (.png)")
    command.set_defaults(handler=score.transfer)

    command = commands.add_parser(
        "distill", help="fit a drift program to a learned drift network (RUN:ID)")
    command.add_argument("network", help="RUN:ID of an lpo or ta-lpo network")
    command.add_argument("--evaluations", type=_positive, default=2000,
                         help="programs to score against the network (default 2000)")
    command.add_argument("--seed", type=int, default=0,
                         help="seed of the program search (default 0)")
    command.add_argument("-o", "--output", help="write the program to this file")
    command.add_argument("--check", action="store_true",
                         help="then train PPO agents with it and with the network on the "
                              "run's held-out tasks")
    command.set_defaults(handler=export.distill)

    command = commands.add_parser("plot", help="fitness over the run and the best candidate's "
                                            "curves against the baseline; or a drift")
    command.add_argument("target", help="run directory; with --drift, RUN:ID or a program file")
    command.add_argument("--drift", action="store_true",
                      help="the drift over (ratio, advantage) at several training progresses")
    command.add_argument("--levels", action="store_true",
                      help="the parameters of the levels sampled over the run, by regret")
    command.add_argument("-o", "--output", required=True, help="PNG file to write")
    command.set_defaults(handler=export.plot)
    return parser


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line. Program files written after options (`disco transfer RUN
    --top 3 A.py`) join the command's PROGRAMs: argparse binds an optional list of
    positionals to the first run of them, and would refuse the later ones."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "programs", None), list) \
            and not any(word.startswith("-") for word in extra):
        args.programs += extra
    elif extra:
        parser.parse_args(argv)  # the usual one-line error for what is left over
    return args
