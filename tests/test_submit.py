"""`disco submit` hands a search to a real Ray cluster's job server, which runs it."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from disco_rules.discovery.config import parse_config
from disco_rules.discovery.store import RunStore

VENV_BIN = Path(sys.executable).parent
CONFIG = """
seed = 3
generations = 2
[population]
size = 4
tournament = 2
children = 3
max_statements = 8
warm_start = ["sgd"]
[tasks]
seeds = 1
lr_grid = [0.01, 0.1]
train = [{ family = "quadratic", dim = 4, horizon = 12 }]
heldout = [{ family = "quadratic", dim = 6, horizon = 12 }]
[cluster]
num_actors = 1
batch_size = 4
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def disco(*args, **kwargs):
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([str(VENV_BIN / "disco"), *args], capture_output=True, text=True,
                          env=env, **kwargs)


def refresh_ray_auth() -> None:
    """Make this process's Ray read RAY_AUTH_MODE and its token again: Ray caches both when
    first asked, so a Ray used by an earlier test of this worker would keep what it saw then
    (the mode unset, or no token file yet)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A Ray head with its job server on loopback, token authentication on with a token of its
    own (this process, the head and `disco submit` read it through RAY_AUTH_TOKEN_PATH, so
    ~/.ray and what earlier tests left there do not matter), stopped with its whole session
    (also when it does not come up). Its dashboard agent listens on a free port: on Ray's
    default (52365) the agent of any other Ray on this machine would keep it from starting,
    and every submission would be refused with "No available agent to submit job"."""
    token = tmp_path_factory.mktemp("auth") / "token"
    token.write_text(secrets.token_hex(32))
    port, dashboard, agent = free_port(), free_port(), free_port()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RAY_AUTH_MODE", "token")
            patch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
            patch.delenv("RAY_AUTH_TOKEN", raising=False)
            patch.delenv("RAY_ADDRESS", raising=False)
            refresh_ray_auth()
            env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
            process = subprocess.Popen(
                [str(VENV_BIN / "ray"), "start", "--head", "--block", f"--port={port}",
                 "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", "--num-cpus=2",
                 f"--dashboard-agent-listen-port={agent}", "--include-dashboard=true"], env=env,
                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            address = f"http://127.0.0.1:{dashboard}"
            from ray.job_submission import JobSubmissionClient

            try:
                deadline = time.monotonic() + 180  # a loaded 2-core machine
                while True:  # until the job server answers
                    try:
                        JobSubmissionClient(address).list_jobs()
                        break
                    except Exception as error:  # noqa: BLE001 - not up yet, whatever the error
                        if time.monotonic() > deadline:
                            pytest.fail(f"the Ray head's job server did not come up: {error}")
                        time.sleep(1)
                yield address
            finally:
                # Ray's own graceful stop takes over 30 s (its GCS and an idle worker
                # linger): what has not ended within a few seconds of SIGTERM is killed, by
                # pid, with every other process of the head's session (workers have process
                # groups of their own)
                from tests.processes import reap_session

                os.killpg(process.pid, signal.SIGTERM)
                reap_session(process.pid, grace_s=5)
                process.wait(timeout=30)
    finally:
        refresh_ray_auth()  # back to this worker's own settings


@pytest.mark.slow
def test_a_submitted_search_runs_to_the_end_on_the_cluster(head, tmp_path):
    (tmp_path / "tiny.toml").write_text(CONFIG)
    run_dir = tmp_path / "run"
    result = disco("submit", str(tmp_path / "tiny.toml"), "--address", head,
                   "--run-dir", str(run_dir), "--seed", "5",
                   timeout=300)  # a loaded 2-core machine
    assert result.returncode == 0, result.stderr
    job = result.stdout.split()[2]
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(head)
    deadline = time.monotonic() + 240
    while client.get_job_status(job) not in (JobStatus.SUCCEEDED, JobStatus.FAILED,
                                             JobStatus.STOPPED):
        assert time.monotonic() < deadline, "the submitted search did not finish"
        time.sleep(2)
    assert client.get_job_status(job) == JobStatus.SUCCEEDED, client.get_job_logs(job)[-2000:]
    with RunStore.open(run_dir) as store:
        assert store.last_generation() == 1
        assert store.count() == 4 + 3
        assert store.top(1, by="validation")
        assert parse_config(store.config_text).seed == 5  # the override reached the cluster


@pytest.mark.parametrize("mode, says", [("", "Failed to connect"),
                                        ("token", "RAY_AUTH_MODE=token is set but no token")])
def test_submit_to_nowhere_is_one_line(tmp_path, monkeypatch, mode, says):
    """Nothing listens: one line, whether or not token authentication is asked for without a
    token (a Ray that checks the token before connecting says so first)."""
    (tmp_path / "tiny.toml").write_text(CONFIG)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "RAY_AUTH_MODE": mode}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run([str(VENV_BIN / "disco"), "submit", str(tmp_path / "tiny.toml"),
                             "--address", f"http://127.0.0.1:{free_port()}", "--run-dir",
                             str(tmp_path / "run")], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("disco: error: could not submit"), result.stderr
    assert says in result.stderr and result.stderr.count("\n") == 1


def test_a_bad_seed_is_one_line_before_anything_is_submitted(tmp_path):
    (tmp_path / "tiny.toml").write_text(CONFIG)
    result = disco("submit", str(tmp_path / "tiny.toml"), "--address",
                   f"http://127.0.0.1:{free_port()}", "--run-dir", str(tmp_path / "run"),
                   "--seed", "-2")
    assert result.returncode == 2
    assert result.stderr == "disco: error: --seed: expected a non-negative integer, got -2\n"
