"""Ends a local Ray's processes with the driver that started it, however the driver ends.

A driver that exits, or stops on SIGTERM, SIGINT or (`start_ray` sees to it) SIGHUP, shuts
Ray down on its way out. A driver killed outright (SIGKILL, the OOM killer) takes its direct
children with it, as Ray gives them a parent-death signal, but not the agents under the
raylet (the dashboard agent, the runtime-env agent), which wait up to a minute for the dead
GCS before they exit. `watch` starts this file as a small process of its own, in its own
session (a terminal's signals leave it alone), that notes the raylet's descendants every
`INTERVAL_S` and kills those left once the driver's end closes the pipe it holds. It ends by
itself when the raylet does while the driver lives (`ray.shutdown`).
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

INTERVAL_S = 0.5
KILL_WAIT_S = 5.0

_watchers: list[subprocess.Popen] = []  # held: a watcher's pipe closes with its Popen


def watch(raylet_pid: int) -> None:
    """Start a watcher that kills the raylet's descendants if this process dies first."""
    import psutil  # Ray's copy (ray/thirdparty_files) where no other is installed

    _watchers[:] = [w for w in _watchers if w.poll() is None]
    _watchers.append(subprocess.Popen(
        [sys.executable, "-I", __file__, str(Path(psutil.__file__).parent.parent),
         str(raylet_pid)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True))


def _driver_gone(timeout: float) -> bool:
    """Whether the driver's end of stdin closed within `timeout` (the driver never writes)."""
    return bool(select.select([sys.stdin], [], [], timeout)[0])


def _alive(process: Any) -> bool:
    """Running and not a zombie (one that no parent has reaped counts as ended)."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _kill(processes: list[Any]) -> None:
    """SIGKILL each process still running (psutil checks that its pid was not reused), and
    wait up to KILL_WAIT_S for them to end."""
    import psutil

    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass
    deadline = time.monotonic() + KILL_WAIT_S
    while any(map(_alive, processes)) and time.monotonic() < deadline:
        time.sleep(0.05)


def main(raylet_pid: int) -> None:
    """Note the raylet's descendants until the driver or the raylet ends; kill them if the
    driver did."""
    import psutil

    try:
        raylet = psutil.Process(raylet_pid)
    except psutil.NoSuchProcess:
        return
    descendants: list[Any] = []
    while not _driver_gone(INTERVAL_S):
        try:
            descendants = raylet.children(recursive=True)
        except psutil.NoSuchProcess:  # Ray shut down, or the driver's death just took it
            if not _driver_gone(INTERVAL_S):
                return
            break
    _kill(descendants)


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])  # where the driver found psutil
    main(int(sys.argv[2]))
