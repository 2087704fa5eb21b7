"""The `disco` command line. Every error is one line on stderr with a non-zero exit code."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from dsl.parser import parse
from dsl.program import Program, ProgramError


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def load_program(ref: str) -> Program:
    """The program named by `ref`: a file of program text."""
    path = Path(ref)
    if not path.is_file():
        raise CliError(f"{ref}: no such program file (give a path to program text)")
    try:
        return parse(path.read_text())
    except ProgramError as error:
        raise CliError(f"{ref}: {error}") from None
    except UnicodeDecodeError:
        raise CliError(f"{ref}: not a text file") from None


def _cmd_simplify(args: argparse.Namespace) -> None:
    from dsl.simplify import simplify

    program = load_program(args.program)
    simplified = simplify(program)
    print(simplified, end="")
    removed = len(program.body) - len(simplified.body)
    print(f"# {len(program.body)} -> {len(simplified.body)} statements ({removed} removed)")


def _cmd_inspect(args: argparse.Namespace) -> None:
    from dsl.identity import canonical_hash, fingerprint
    from dsl.simplify import simplify
    from dsl.slots import OPTIMIZER

    program = load_program(args.program)
    try:
        OPTIMIZER.check(program)
    except ProgramError as error:
        raise CliError(f"{args.program}: {error}") from None
    used = program.used_names()
    print(program, end="")
    print(f"hash:        {canonical_hash(program)}")
    print(f"fingerprint: {fingerprint(program)}")
    print(f"statements:  {len(program.body)} ({len(simplify(program).body)} after simplify)")
    inputs = [p for p in OPTIMIZER.inputs if p in program.params]
    marked = [name if name in used else f"{name} (unused)" for name in inputs]
    print(f"inputs:      {', '.join(marked) if marked else 'none'}")
    state = OPTIMIZER.state_names(program)
    print(f"state:       {', '.join(state) if state else 'none'}")


def _cmd_export(args: argparse.Namespace) -> None:
    from dsl.export import export
    from dsl.slots import OPTIMIZER

    program = load_program(args.program)
    try:
        OPTIMIZER.check(program)
        source = export(program, args.format)
    except (ProgramError, ValueError) as error:
        raise CliError(f"{args.program}: {error}") from None
    if args.output:
        Path(args.output).write_text(source)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(source, end="")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disco", description="Discover learning algorithms.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    simplify = commands.add_parser("simplify", help="print the simplified program")
    simplify.add_argument("program", help="program file")
    simplify.set_defaults(run=_cmd_simplify)

    inspect = commands.add_parser("inspect", help="a program with its hash and fingerprint")
    inspect.add_argument("program", help="program file")
    inspect.set_defaults(run=_cmd_inspect)

    export = commands.add_parser("export", help="write the program as plain Python")
    export.add_argument("program", help="program file")
    export.add_argument("--format", required=True, choices=["numpy", "jax", "optax", "torch"])
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.set_defaults(run=_cmd_export)
    return parser



def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `disco` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except CliError as error:
        print(f"disco: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("disco: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI never shows a traceback by default
        if os.environ.get("DISCO_DEBUG"):
            raise
        print(f"disco: internal error: {type(error).__name__}: {error} "
              "(set DISCO_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
