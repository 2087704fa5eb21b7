"""Whether a Ray cluster's address answers, asked in seconds: Ray's own client retries an
unreachable `ray://` address for most of a minute before it gives up."""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from typing import Iterator
from urllib.parse import urlsplit

CLIENT_PORT = 10001  # Ray client's port when a ray:// address names none
PROBE_TIMEOUT_S = 5.0
# Ray's client tries a ray:// address 3 times, waiting 5 s, then 10 s, then 15 s; these
# settings (read when its client module loads) bound each wait
CLIENT_TIMEOUTS = ("RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S", "RAY_CLIENT_MAX_CONNECTION_TIMEOUT_S")


class ClusterUnreachableError(ConnectionError):
    """A Ray cluster address that does not answer (one line naming it and what to check)."""


def endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) that `address` connects to: "ray://host[:port]" or "host:port"; None
    for an address Ray resolves itself ("auto", "local"). ClusterUnreachableError for a
    malformed one."""
    if address in ("auto", "local"):
        return None
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    default = CLIENT_PORT if parts.scheme == "ray" else None
    if parts.scheme not in ("", "ray") or not parts.hostname or (port or default) in (-1, None):
        raise ClusterUnreachableError(f"{address}: not a Ray cluster address (ray://HOST:PORT, "
                                      "HOST:PORT or auto)")
    return parts.hostname, port or default


def check_reachable(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """ClusterUnreachableError unless a TCP connection to `address` opens within
    `timeout_s` (nothing to check for an address Ray resolves itself)."""
    found = endpoint(address)
    if found is None:
        return
    try:
        socket.create_connection(found, timeout=timeout_s).close()
    except OSError as error:
        reason = f"no answer within {timeout_s:g} s" if isinstance(error, TimeoutError) \
            else error.strerror or error
        raise ClusterUnreachableError(
            f"cannot reach the Ray cluster at {address} ({reason}): check that it runs "
            "(`ray status` on its head node) and that this machine can reach that host and "
            "port") from None


@contextlib.contextmanager
def quick_client(timeout_s: float = PROBE_TIMEOUT_S) -> Iterator[None]:
    """While Ray's client connects: each of its tries waits `timeout_s` at most (unless the
    user set CLIENT_TIMEOUTS), and its warning that it timed out, which the error that
    follows says, is not shown."""
    added = [name for name in CLIENT_TIMEOUTS if name not in os.environ]
    os.environ.update({name: str(max(1, round(timeout_s))) for name in added})
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Ray Client connection timed out")
            yield
    finally:
        for name in added:
            os.environ.pop(name, None)
