"""One writer per run directory: the run's lock (RunStore.create, RunStore.open) refuses a
second writer with the owner's pid and host, lets readers in, and dies with its holder.

The store-level tests are quick; the last ones run `disco launch` end to end: a second writer
is refused while the first loses nothing, and a writer killed with SIGKILL leaves a run that
`disco resume` continues to the archive of a run left alone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from disco_rules.discovery.store import (EventRecord, RunLock, RunLockedError, RunStore,
                                         StoreError)
from tests.processes import reap_session, session_processes
from tests.test_cli_runs import DISCO, _environment, _rows, _run_in_session

CONFIG = "seed = 1\n"
OWNER = f"pid {os.getpid()} on {socket.gethostname()}"


def _hold_lock(run_dir: Path, child: bool = False) -> subprocess.Popen:
    """A process that opens `run_dir` for writing (starting a long-lived child first, if
    asked), says "held" and sleeps."""
    code = textwrap.dedent(f"""
        import subprocess, sys, time
        from disco_rules.discovery.store import RunStore
        store = RunStore.open({str(run_dir)!r}, write=True)
        if {child}:
            subprocess.Popen(["sleep", "60"])
        print("held", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_with_the_owners_pid_and_host(tmp_path):
    with RunStore.create(tmp_path / "run", CONFIG):
        with pytest.raises(RunLockedError, match=f"is being written by {OWNER}"):
            RunStore.open(tmp_path / "run")
        assert RunLock.holder(tmp_path / "run") == OWNER
    with RunStore.open(tmp_path / "run") as store:  # released by close
        assert store.writable
    assert RunLock.holder(tmp_path / "run") is None


def test_a_run_appears_whole_with_its_files_or_not_at_all(tmp_path):
    with RunStore.create(tmp_path / "runs" / "a", CONFIG, {"warm_start/00-sgd.py": "x"}) as a:
        assert a.writable and RunLock.holder(tmp_path / "runs" / "a") == OWNER
    assert (tmp_path / "runs" / "a" / "warm_start" / "00-sgd.py").read_text() == "x"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a"]  # nothing hidden
    (tmp_path / "empty").mkdir()
    RunStore.create(tmp_path / "empty", CONFIG).close()  # an empty directory is taken over
    with pytest.raises(StoreError, match="Is a directory"):  # fails mid-create
        RunStore.create(tmp_path / "b", CONFIG, {"checkpoints": "x"})
    with pytest.raises(ValueError, match="outside the run directory"):
        RunStore.create(tmp_path / "c", CONFIG, {"../escaped": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "runs"]


def test_readers_see_a_live_run_as_one_snapshot_and_cannot_write(tmp_path):
    with RunStore.create(tmp_path / "run", CONFIG) as writer:
        writer.add_generation(0, [], events={"best": 1.0})
        with RunStore.open(tmp_path / "run", write=False) as reader:
            writer.add_generation(1, [], events={"best": 2.0})
            assert reader.last_generation() == 0  # as of when it was opened
            assert reader.events() == [EventRecord(generation=0, name="best", value=1.0)]
            assert not reader.writable
            with pytest.raises(StoreError, match="read-only"):
                reader.add_generation(2, [])
            with pytest.raises(StoreError, match="read-only"):
                reader.save_checkpoint(0, {})
        with RunStore.open(tmp_path / "run", write=False) as reader:
            assert reader.last_generation() == 1


def test_the_lock_dies_with_a_writer_killed_by_sigkill_even_if_its_child_lives(tmp_path):
    RunStore.create(tmp_path / "run", CONFIG).close()
    holder = _hold_lock(tmp_path / "run", child=True)
    try:
        with pytest.raises(RunLockedError, match=f"pid {holder.pid} on "):
            RunStore.open(tmp_path / "run")
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        assert list(session_processes(holder.pid).values()) == ["sleep"]  # the child lives
        with RunStore.open(tmp_path / "run") as store:
            assert store.writable
    finally:
        reap_session(holder.pid, grace_s=0)
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_failed_create_leaves_nothing_behind(tmp_path):
    for bad in (Path("/dev/null/run"), tmp_path / "file" / "run"):
        (tmp_path / "file").write_text("not a directory")
        with pytest.raises(StoreError, match="cannot create the run directory"):
            RunStore.create(bad, CONFIG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# -- end to end: `disco launch` and `disco resume` ------------------------------------------

RUN_CONFIG = """\
seed = 5
generations = 3

[population]
size = 4
tournament = 2
children = 3
warm_start = ["sgd", "momentum"]
max_statements = 10

[tasks]
seeds = 1
lr_grid = [0.01, 0.1]
train = [{ family = "quadratic", dim = 4, horizon = 200 }]
heldout = [{ family = "quadratic", dim = 6, horizon = 200, condition_number = 10.0 }]

[validation]
every = 2
top = 2

[cluster]
num_actors = 1
batch_size = 8
"""
RUN_TIMEOUT_S = 600


def _launch(base: Path, name: str, env: dict[str, str]) -> subprocess.Popen:
    log = open(base / f"{name}.log", "w")
    return subprocess.Popen([DISCO, "launch", str(base / "run.toml"), "--run-dir",
                             str(base / name)], cwd=base, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_lock(run_dir: Path, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (holder := RunLock.holder(run_dir)) is None:
        assert proc.poll() is None, f"{run_dir.name} ended before taking its lock"
        assert time.monotonic() < deadline, f"{run_dir.name} took no lock in time"
        time.sleep(0.01)
    return holder


def _finish(proc: subprocess.Popen) -> None:
    try:
        assert proc.wait(timeout=RUN_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        assert reap_session(proc.pid) == {}


@pytest.mark.slow
def test_two_writers_on_one_run_and_a_killed_writer_lose_nothing(tmp_path):
    """A (launch) holds its run while `disco resume A` is refused, naming A's pid; K is
    killed with SIGKILL right after taking its lock, then resumed. A and K end with the same
    archive: the refused writer took nothing from A, and K lost nothing (either would make
    the two differ; a third run, left alone, would add nothing to check against)."""
    (tmp_path / "run.toml").write_text(RUN_CONFIG)
    env = _environment(tmp_path / "jax-cache")
    first, killed = (_launch(tmp_path, name, env) for name in ("first", "killed"))
    try:
        assert _wait_for_lock(tmp_path / "killed", killed).startswith(f"pid {killed.pid} on ")
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()

        assert _wait_for_lock(tmp_path / "first", first) == \
            f"pid {first.pid} on {socket.gethostname()}"
        second = subprocess.run([DISCO, "resume", str(tmp_path / "first")], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=120)
        status = subprocess.run([DISCO, "status", str(tmp_path / "first")], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first run ended before the second writer came"
        assert second.returncode == 2 and second.stdout == ""
        assert second.stderr.splitlines() == [
            f"disco: error: {tmp_path / 'first'} is being written by pid {first.pid} on "
            f"{socket.gethostname()}: one process writes a run at a time (wait for it, or "
            "stop it first)"]
        assert status.returncode == 0 and f"running (pid {first.pid} on " in status.stdout
        _finish(first)
    finally:
        for proc in (first, killed):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    reap_session(killed.pid)
    resumed = _run_in_session([DISCO, "resume", str(tmp_path / "killed")], cwd=tmp_path,
                              env=env, timeout=RUN_TIMEOUT_S)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    expected = _rows(tmp_path / "first")
    assert expected["candidates"] and expected["scores"]
    assert _rows(tmp_path / "killed") == expected
