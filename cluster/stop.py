"""A request to stop (SIGTERM, or SIGHUP when the terminal closes) as an exception: the run
stops where it is, as after Ctrl-C, and exits 128 + the signal through Python, so that Ray
shuts down at exit. Imports nothing heavy: the API and the CLI catch `Terminated`."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

_received: list[int] = []  # the signals `terminate` has handled in this process


class Terminated(SystemExit):
    """A signal asked this process to stop; its code is 128 + the signal's number."""


def terminate(signum: int, frame: Any) -> None:
    """A signal handler: raise Terminated in the main thread."""
    _received.append(signum)
    raise Terminated(128 + signum)


@contextlib.contextmanager
def through_ray() -> Iterator[None]:
    """Ray's blocking calls (ray.wait, ray.get) turn an exception that a signal handler raises
    while they wait into SystemExit(1); inside this block it is Terminated again."""
    try:
        yield
    except SystemExit as error:
        if _received and not isinstance(error, Terminated):
            raise Terminated(128 + _received[-1]) from None
        raise
