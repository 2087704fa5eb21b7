"""A local Ray starts without the lines a user cannot act on (JAX's fork warning, Ray's
token-authentication notice, its INFO lines on starting and on uploading py_modules) unless
DISCO_DEBUG asks for them, with its usage statistics off, and its processes end with the
driver however the driver ends (cluster/reaper.py), a SIGTERM without Ray's crash report."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow  # each test starts a local Ray in a fresh Python

START_AFTER_JAX = """
import sys
import jax.numpy as jnp
jnp.zeros(1).block_until_ready()  # JAX's backend is up, as in the driver after a config check
from disco_rules.cluster.pool import start_ray
start_ray(None, num_cpus=1, py_modules=[sys.argv[1]])  # a user's task module, uploaded
import os, psutil, ray
api_servers = [p for p in psutil.Process().children() if "dashboard.py" in " ".join(p.cmdline())]
for server in api_servers:
    print("api server usage stats:", server.environ().get("RAY_USAGE_STATS_ENABLED"))
print("driver usage stats:", os.environ.get("RAY_USAGE_STATS_ENABLED"))
ray.shutdown()
"""


def _start(tmp_path: Path, debug: bool) -> str:
    module = tmp_path / "my_tasks.py"
    module.write_text("VALUE = 1\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISCO_DEBUG", "RAY_USAGE_STATS_ENABLED")}
    if debug:
        env["DISCO_DEBUG"] = "1"
    done = subprocess.run([sys.executable, "-W", "default", "-c", START_AFTER_JAX, str(module)],
                          capture_output=True, text=True, timeout=600, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_a_local_ray_starts_without_lines_a_user_cannot_act_on(tmp_path):
    output = _start(tmp_path, debug=False)
    assert "os.fork() was called" not in output
    assert "Token authentication is enabled" not in output
    assert "Started a local Ray instance" not in output
    assert "packaging.py" not in output and " INFO " not in output
    # Ray's API server (no dashboard: usage statistics only) reports none; the driver's
    # environment is as it was
    assert "api server usage stats: 0" in output
    assert "driver usage stats: None" in output


def test_disco_debug_shows_rays_info_lines(tmp_path):
    output = _start(tmp_path, debug=True)
    assert "Started a local Ray instance" in output
    assert "os.fork() was called" not in output


DRIVER = """
import signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal, whatever ran this test
from disco_rules.cluster import reaper
from disco_rules.cluster.pool import start_ray
start_ray(None, num_cpus=1)
import psutil, ray

@ray.remote
def pid():
    return 0

ray.get(pid.remote())  # a worker has started
raylet = next(p for p in psutil.Process().children() if p.name() == "raylet")
print("watcher", reaper._watchers[-1].pid)
print("ray", " ".join(str(p.pid) for p in [raylet, *raylet.children(recursive=True)]))
print("ready", flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGHUP, signal.SIGTERM])
def test_rays_processes_end_with_the_driver(how, tmp_path):
    stderr = tmp_path / "stderr"
    with stderr.open("w") as sink:
        driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE,
                                  stderr=sink, text=True)
    lines = {}
    for line in driver.stdout:
        name, _, value = line.strip().partition(" ")
        lines[name] = value
        if name == "ready":
            break
    watcher, ray_pids = int(lines["watcher"]), [int(p) for p in lines["ray"].split()]
    assert len(ray_pids) >= 3  # the raylet, its agents, a worker
    driver.send_signal(how)
    code = driver.wait(timeout=120)
    # a closed terminal exits as SIGTERM does (cluster/stop.py), through Ray's shutdown, not
    # killed at once
    assert code == {signal.SIGKILL: -signal.SIGKILL, signal.SIGHUP: 128 + signal.SIGHUP,
                    signal.SIGTERM: 128 + signal.SIGTERM}[how]
    try:
        psutil.Process(watcher).wait(timeout=120)  # it kills what is left, then ends
    except psutil.NoSuchProcess:
        pass
    assert [pid for pid in ray_pids if _alive(pid)] == []
    # a request to stop, not a crash: no report from Ray's C++ failure-signal handler
    report = stderr.read_text()
    assert "logging.cc" not in report and "received at time" not in report, report
