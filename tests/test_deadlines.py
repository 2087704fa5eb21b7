"""Deadlines on work: a work item that never returns is abandoned at its deadline, its actor
replaced; a run goes on with the candidate marked `timeout`, or fails with one line when a
baseline or the check of a user's task family is what hangs."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import disco_rules  # noqa: E402
from disco_rules.cluster.deadlines import (DeadlineExceeded, DeadlineRule, Deadlines,  # noqa: E402
                                           call_within)
from disco_rules.cluster.pool import EvaluatorPool, PoolConfig, start_ray  # noqa: E402
from disco_rules.cluster.results import TimedOut  # noqa: E402
from disco_rules.discovery.evaluator import Evaluator, item_kind  # noqa: E402
from disco_rules.discovery.scoring import status_of  # noqa: E402
from disco_rules.discovery.tasks import plugins  # noqa: E402
from tests.configs import config_variant  # noqa: E402
from tests.processes import finish_all  # noqa: E402

# Actors cannot import this test module by name, so its evaluators travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

DISCO = Path(sys.executable).parent / "disco"

# -- the rule ---------------------------------------------------------------------------------


def test_a_deadline_is_a_multiple_of_the_slowest_finished_item_like_it():
    deadlines = Deadlines(DeadlineRule(multiple=10, min_s=60, first_s=600))
    assert deadlines.deadline("train", first=True)[0] == 600  # nothing measured: the floor
    for seconds in (2.0, 9.0, 4.0):
        deadlines.observe("train", seconds)
    seconds, why = deadlines.deadline("train", first=False)
    assert seconds == 90 and "10 x the slowest finished item like it (9.0 s)" in why
    deadlines.observe("quick", 0.5)
    assert deadlines.deadline("quick", first=False)[0] == 60  # never under min_s


def test_an_actors_first_item_of_a_kind_gets_the_compilation_floor_or_more():
    deadlines = Deadlines(DeadlineRule(multiple=10, min_s=60, first_s=600))
    deadlines.observe("train", 1.0)
    seconds, why = deadlines.deadline("train", first=True)  # a fresh actor compiles it again
    assert seconds == 600 and "first item" in why
    deadlines.observe("baseline", 100.0)  # a slow machine: 10 x its slowest item, any kind
    assert deadlines.deadline("validation", first=True)[0] == 1000
    assert deadlines.deadline("train", first=False)[0] == 60


def test_a_configured_deadline_replaces_the_rule():
    deadlines = Deadlines(DeadlineRule(fixed_s=3))
    deadlines.observe("train", 100.0)
    assert deadlines.deadline("train", first=True) == (3, "3 s, the configured deadline")
    assert deadlines.deadline("train", first=False)[0] == 3


def test_a_timeout_reason_gives_the_candidate_status_timeout():
    assert status_of("timeout: no result within 3 s, the configured deadline") == "timeout"
    assert status_of("failed: ValueError: bad") == "failed"
    assert status_of("nan") == "nan" and status_of("diverged") == "diverged"


def test_call_within_returns_raises_or_gives_up():
    assert call_within(60, sum, [1, 2]) == 3
    with pytest.raises(ZeroDivisionError):
        call_within(60, lambda: 1 / 0)
    with pytest.raises(DeadlineExceeded, match=r"^waiting did not finish within 0.2 s \(\[cl"):
        call_within(0.2, threading.Event().wait, what="waiting")  # an event never set


# -- the pool ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    start_ray(None, num_cpus=2)
    yield
    ray.shutdown()


class HangOn:
    """Squares numbers, but never returns for one of them."""

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def __call__(self, x: int) -> int:
        if x == self.bad:
            threading.Event().wait()
        return x * x


@pytest.mark.slow  # on a local Ray (`local_ray`), waiting out deadlines
def test_a_hung_item_times_out_and_the_items_queued_behind_it_run_on_a_new_actor(local_ray):
    pool = EvaluatorPool(lambda: HangOn(bad=3), PoolConfig(
        num_actors=1, max_in_flight_per_actor=2, deadline=DeadlineRule(fixed_s=5)))
    try:
        first_actor = pool.actors[0]
        results = pool.map([1, 2, 3, 4, 5])
        assert results[:2] == [1, 4] and results[3:] == [16, 25]
        assert isinstance(results[2], TimedOut)
        assert results[2].reason == ("no result within 5 s, the configured deadline; its "
                                     "actor was replaced")
        assert (pool.timeouts, pool.actor_restarts, pool.retries) == (1, 1, 0)
        assert (pool.completed, pool.failed) == (4, 1)
        assert pool.actors[0] != first_actor
        assert pool.map([6]) == [36]  # the replacement keeps working
    finally:
        pool.shutdown()


@pytest.mark.slow  # on a local Ray (`local_ray`), waiting out deadlines
def test_the_measured_deadline_spares_an_actors_first_item_and_cuts_a_later_one(local_ray):
    # items of one kind that return at once make the deadline min_s; a fresh actor's
    # first item of the kind gets first_s, which covers its compilation
    pool = EvaluatorPool(lambda: HangOn(bad=-1), PoolConfig(
        num_actors=1, deadline=DeadlineRule(multiple=10, min_s=2, first_s=6)))
    try:
        assert pool.map([1, 2, 3]) == [1, 4, 9]
        (after_some,) = pool.map([-1])
        assert "2 s, 10 x the slowest finished item like it" in after_some.reason
        (on_a_new_actor,) = pool.map([-1])
        assert "6 s, the deadline of an actor's first item of a kind" in on_a_new_actor.reason
        assert pool.timeouts == 2 and pool.map([4]) == [16]
    finally:
        pool.shutdown()


# -- a user's task family that blocks ---------------------------------------------------------

BLOCKING_MODULE = '''
"""A user's task family (least squares) that blocks in {where}: while it is traced (as the
driver checks it), only while it runs (a host callback; build: inside a Ray worker) or, for
build, only for other parameters than its defaults (params)."""
import os
import threading

import jax
import jax.numpy as jnp
import numpy as np
import ray

from disco_rules import Family, Problem, Range

WHERE, WHEN, MARKER = {where!r}, {when!r}, {marker!r}  # MARKER None: always


def _never_returns():
    threading.Event().wait()


def _on_host(value):
    if MARKER is None or os.path.exists(MARKER):
        _never_returns()
    return np.zeros((), np.float32)


def blocking(where, value):
    """`value`, after blocking if this plug-in blocks `where`."""
    if where != WHERE:
        return value
    if WHEN == "trace":
        _never_returns()
    return value + jax.pure_callback(_on_host, jax.ShapeDtypeStruct((), jnp.float32),
                                     jnp.float32(0.0), vmap_method="sequential")


def build(task):
    if WHERE == "build" and (WHEN == "trace" or ray.is_initialized()
                             or WHEN == "params" and task.get("dim") != 4):
        _never_returns()
    dim, n = task.get("dim"), 16

    def data(key):
        k_x, k_w = jax.random.split(key)
        x = jax.random.normal(k_x, (n, dim))
        return x, blocking("data", x @ jax.random.normal(k_w, (dim,)))

    def loss(params, batch):
        x, y = batch
        return blocking("loss", jnp.mean((x @ params["w"] - y) ** 2))

    return Problem(init=lambda key: {{"w": jnp.zeros(dim)}}, data=data,
                   train_batch=lambda key, d: d, loss=loss, validation_loss=loss,
                   horizon=task.get("horizon"))


family = Family("blocky", ranges={{"dim": Range(1, 64, integer=True),
                                  "horizon": Range(5, 1000, integer=True)}},
                defaults={{"dim": 4, "horizon": 10}}, build=build)
'''

CONFIG = """
seed = 1
generations = 1

[population]
size = 4
tournament = 2
children = 3
warm_start = ["sgd", "momentum"]
max_statements = 12

[tasks]
seeds = 1
lr_grid = [0.01, 0.1]
baseline_schedules = ["constant"]
train = [{ family = "quadratic", dim = 3, horizon = 10 }]  # write_plugin sets the families
heldout = [{ family = "quadratic", dim = 4, horizon = 10 }]

[validation]
every = 1
top = 1

[cluster]
batch_size = 4
num_actors = 1
"""


def write_plugin(folder: Path, where: str, when: str, marker: Path | None = None,
                 generations: int = 1, deadline_s: float | None = 2,
                 heldout: str | None = None) -> Path:
    """A plug-in module blocking `where` (build, loss, data) `when` (trace, run), and a
    config that trains on it; the config's path."""
    module = f"blocky_{where}_{when}"
    (folder / f"{module}.py").write_text(BLOCKING_MODULE.format(
        where=where, when=when, marker=None if marker is None else str(marker)))
    config = folder / "search.toml"
    changes = {"generations": generations,
               "tasks.train": [{"family": f"{module}:family", "dim": 3, "horizon": 10}],
               "tasks.heldout": [{"family": heldout or f"{module}:family", "dim": 4,
                                  "horizon": 10}]}
    if deadline_s is not None:
        changes["cluster.deadline_s"] = deadline_s
    config.write_text(config_variant(CONFIG, changes))
    return config


def launch_in_processes(configs: dict[str, Path]) -> dict[str, subprocess.CompletedProcess]:
    """`disco launch` of each config (into the run directory `run` beside it), all at once:
    the launches are independent, and each mostly waits (on its deadline, on Ray)."""
    procs = {name: subprocess.Popen([str(DISCO), "launch", str(config), "--run-dir",
                                     str(config.parent / "run")], cwd=config.parent,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, config in configs.items()}
    # the timeout only guards against a hang: without deadlines these would never return
    return finish_all(procs, timeout=600)


@pytest.fixture(scope="module")
def blocked_while_checked(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Launches of families that block as the driver checks them: while traced (build, loss,
    data), and building for the memory estimate (params)."""
    configs = {where: write_plugin(tmp_path_factory.mktemp(f"trace-{where}"), where, "trace",
                                   deadline_s=2) for where in ("build", "loss", "data")}
    configs["params"] = write_plugin(tmp_path_factory.mktemp("params"), "build", "params",
                                     deadline_s=2)
    return launch_in_processes(configs)


@pytest.mark.parametrize("where", ["build", "loss", "data"])
def test_a_family_that_blocks_while_the_driver_checks_it_is_one_error_line(
        blocked_while_checked, where):
    result = blocked_while_checked[where]
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"disco: error: tasks.train[0]: task family 'blocky_{where}_trace:family': building "
        "and tracing its default task did not finish within 2 s ([cluster] deadline_s sets "
        "the deadline)"]
    assert not Path(result.args[4]).exists()  # the run directory


def test_a_family_whose_build_blocks_for_the_memory_estimate_is_one_error_line(
        blocked_while_checked):
    # its default task builds (the check passes); the training task's, dim 3, never does
    result = blocked_while_checked["params"]
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "disco: error: blocky_build_params:family(dim=3,horizon=10): building it to estimate "
        "the run's memory did not finish within 2 s ([cluster] deadline_s sets the deadline)"]
    assert not Path(result.args[4]).exists()  # the run directory


@pytest.fixture(scope="module")
def blocked_on_the_actors(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Launches (each on a Ray of its own) of families that block only as they run: in
    Python (build) and inside a compiled computation (loss; data blocks the same way)."""
    return launch_in_processes({
        where: write_plugin(tmp_path_factory.mktemp(f"run-{where}"), where, "run",
                            deadline_s=3) for where in ("build", "loss")})


@pytest.mark.slow
@pytest.mark.parametrize("where", ["build", "loss"])
def test_a_family_that_blocks_on_the_actors_fails_its_baseline_in_one_line(
        blocked_on_the_actors, where):
    result = blocked_on_the_actors[where]
    assert result.returncode == 2, result.stderr
    # before it, a warning for each item abandoned (and what Ray itself prints)
    *before, last = result.stderr.splitlines()
    assert last == (
        f"disco: error: the baseline on blocky_{where}_run:family(dim=3,horizon=10) timed out: "
        "no result within 3 s, the configured deadline; its actor was replaced; raise "
        "[cluster] deadline_s if the task needs longer")
    assert "an item ran past its deadline (3 s, the configured deadline); replacing its " \
        "actor" in before
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_sigterm_while_the_driver_waits_on_ray_stops_the_run_so_that_it_resumes(tmp_path):
    # the baseline's loss blocks on the actor (no deadline within the test), so the driver
    # sits in ray.wait, where Ray turns a signal handler's exception into exit(1)
    from tests.processes import reap_session

    config = write_plugin(tmp_path, "loss", "run", deadline_s=600)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([str(DISCO), "launch", str(config), "--run-dir", str(run_dir)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        while not proc.stdout.readline().startswith("run directory:"):  # Ray is up: it waits
            assert proc.poll() is None, proc.stderr.read()
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        reap_session(proc.pid)
    assert proc.returncode == 143, err
    assert err.splitlines()[-1] == f"interrupted; continue with: disco resume {run_dir}"
    assert "Traceback" not in err and "logging.cc" not in err
    assert (run_dir / "archive.sqlite").is_file()  # kept for resume, not discarded


class PluginEvaluator:
    """An evaluator factory that finds the user's task modules in `folder` (the driver's Ray
    here was started before they were written, so it does not ship them)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self) -> Evaluator:
        plugins.add_search_path(self.folder)
        return Evaluator(12)


def candidate_rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "archive.sqlite") as db:
        return db.execute("SELECT generation, status, reason FROM candidates WHERE status "
                          "!= 'cached' ORDER BY id").fetchall()


@pytest.mark.slow
def test_a_candidate_whose_loss_hangs_is_recorded_as_timeout_and_the_run_goes_on(
        local_ray, tmp_path):
    # generation 0 runs as usual; then the task's loss hangs whenever it runs, so that
    # generation 1's candidates (on an actor that compiled their kind) hang in it
    marker = tmp_path / "hang-now"
    config = write_plugin(tmp_path, "loss", "run", marker=marker, generations=2,
                          deadline_s=None, heldout="quadratic")
    plugins.add_search_path(tmp_path)
    pool = EvaluatorPool(
        PluginEvaluator(tmp_path),
        PoolConfig(num_actors=1, deadline=DeadlineRule(multiple=0.1, min_s=2)),
        item_kind=item_kind)
    try:
        run = disco_rules.launch(config, run_dir=tmp_path / "run", pool=pool,
                                 on_generation=lambda report: marker.touch())
    finally:
        pool.shutdown()
    assert run.status().generations == 2 and pool.timeouts >= 1
    rows = candidate_rows(tmp_path / "run")
    first = {status for generation, status, _ in rows if generation == 0}
    assert "ok" in first and "timeout" not in first
    later = [(status, reason) for generation, status, reason in rows
             if generation == 1 and status != "screened"]  # trained: in the loss, hung
    assert later and all(status == "timeout" for status, _ in later)
    assert all("0.1 x the slowest finished item like it" in reason for _, reason in later)
