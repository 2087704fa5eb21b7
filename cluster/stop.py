"""A request to stop (SIGTERM, or SIGHUP when the terminal closes) as an exception: the run
stops where it is, as after Ctrl-C, and exits 128 + the signal through Python, so that Ray
shuts down at exit. Imports nothing heavy: the API and the CLI catch `Terminated`."""

from __future__ import annotations

from typing import Any


class Terminated(SystemExit):
    """A signal asked this process to stop; its code is 128 + the signal's number."""


def terminate(signum: int, frame: Any) -> None:
    """A signal handler: raise Terminated in the main thread."""
    raise Terminated(128 + signum)
