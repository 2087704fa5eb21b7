"""A test's processes: its independent commands run at once, and the sessions its commands
leave behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterable, Iterator, Mapping


def finish_all(procs: Mapping[str, subprocess.Popen], timeout: float
               ) -> dict[str, subprocess.CompletedProcess]:
    """Wait for every process (each within `timeout` seconds, which only guards against a
    hang) and return what each printed; any still running when this fails is killed."""
    done = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=timeout)
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        kill_all(procs.values())
    return done


def kill_all(procs: Iterable[subprocess.Popen]) -> None:
    """Kill and reap every process still running: a test that failed waits for none."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def process_stats() -> Iterator[tuple[int, str, list[str]]]:
    """(pid, command name, the fields after the name in /proc/PID/stat: state, parent pid,
    process group, session, ...) of every process that still exists."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        yield (int(entry.name), stat[stat.index("(") + 1:stat.rindex(")")],
               stat[stat.rindex(")") + 2:].split())


def session_processes(sid: int) -> dict[int, str]:
    """Live (not zombie) processes of session `sid`: pid -> command name."""
    return {pid: name for pid, name, fields in process_stats()
            if int(fields[3]) == sid and fields[0] not in ("Z", "X")}


def reap_session(sid: int, grace_s: float = 30.0) -> dict[int, str]:
    """Wait for every process of session `sid` to end; SIGKILL (by pid) and return those
    still alive after `grace_s`. Ray workers have process groups of their own, so a killpg
    of the session leader's group does not reach them directly."""
    deadline = time.monotonic() + grace_s
    while (left := session_processes(sid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left
