"""The `disco` entry point: parse, run the command's handler, and turn every error into one
line on stderr: exit code 2 for what the user can fix, 1 for an internal error."""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Sequence

from disco_rules.cluster.address import ClusterUnreachableError
from disco_rules.cluster.reasons import debug_traceback
from disco_rules.discovery.cli.errors import NO_ROOM, CliError
from disco_rules.discovery.cli.parser import parse_arguments
from disco_rules.discovery.config import ConfigError
from disco_rules.discovery.store import StoreError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `disco` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_arguments(argv)
    args.argv = argv  # the command as typed, for reports that name it
    try:
        args.handler(args)
    except (CliError, ConfigError, StoreError, ClusterUnreachableError) as error:
        if os.environ.get("DISCO_DEBUG"):  # with what a one-line message hides
            print(debug_traceback(error), file=sys.stderr)
        print(f"disco: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI never shows a traceback by default
        if type(error) is sqlite3.DatabaseError:  # not a subclass (a query gone wrong)
            print(f"disco: error: a run's archive.sqlite is damaged ({error})", file=sys.stderr)
            return 2
        if isinstance(error, OSError) and error.filename is not None:  # a file named, the disk
            print(f"disco: error: {error.filename}: {error.strerror or error}", file=sys.stderr)
            return 2
        if isinstance(error, OSError) and error.errno in NO_ROOM:  # a write that did not fit
            print(f"disco: error: cannot write ({error.strerror}): free some disk space, or "
                  "raise the file-size limit (ulimit -f), and run it again", file=sys.stderr)
            return 2
        if os.environ.get("DISCO_DEBUG"):
            raise
        print(f"disco: internal error: {type(error).__name__}: {error} "
              "(set DISCO_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0
