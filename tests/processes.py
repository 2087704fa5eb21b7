"""Running a test's independent commands at once."""

from __future__ import annotations

import subprocess
from typing import Mapping


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
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return done
