"""EvaluatorPool on a local two-CPU Ray: input order, one evaluator per actor, lost actors."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from disco_rules.cluster.pool import EvaluatorPool, PoolConfig, start_ray  # noqa: E402
from disco_rules.cluster.results import Failed  # noqa: E402

pytestmark = pytest.mark.slow  # every test runs on a local Ray (started by `local_ray`)

# Actors cannot import this test module by name, so its evaluators travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    start_ray(None, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def make_pool():
    pools = []

    def make(factory, **config) -> EvaluatorPool:
        pools.append(EvaluatorPool(factory, PoolConfig(**config)))
        return pools[-1]

    yield make
    for pool in pools:
        pool.shutdown()


class Square:
    """Squares numbers; tags each result with its actor's pid and this evaluator's identity."""

    def __init__(self, delay: float = 0.0) -> None:
        self.token = uuid.uuid4().hex
        self.delay = delay

    def __call__(self, x: int) -> tuple[int, int, str]:
        time.sleep(self.delay)
        return x * x, os.getpid(), self.token


class CountedSquare:
    """A factory that leaves one line in a file each time it builds an evaluator."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def __call__(self) -> Square:
        with open(self.log, "a") as log:
            log.write(f"{os.getpid()}\n")
        return Square()


class RaiseOn:
    """Raises ValueError for one bad item, squares the rest."""

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def __call__(self, x: int) -> int:
        if x == self.bad:
            raise ValueError(f"bad input {x}\nsecond line of the message")
        return x * x


RAISE_LINE = RaiseOn.__call__.__code__.co_firstlineno + 2  # of the raise above


class ExitOn:
    """Kills its own process on the marked item: every time, or only the first time (flag file)."""

    def __init__(self, marked: int, flag: Path | None = None) -> None:
        self.marked = marked
        self.flag = flag

    def __call__(self, x: int) -> int:
        if x == self.marked and (self.flag is None or not self.flag.exists()):
            if self.flag is not None:
                self.flag.touch()
            os._exit(1)
        time.sleep(0.01)
        return x * x


class ReadPreallocate:
    """Returns the actor's XLA_PYTHON_CLIENT_PREALLOCATE setting."""

    def __call__(self, _: object) -> str | None:
        return os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")


def test_map_returns_results_in_input_order_from_one_actor_per_cpu(make_pool):
    pool = make_pool(lambda: Square(delay=0.01))
    results = pool.map(list(range(20)))
    assert [value for value, _, _ in results] == [x * x for x in range(20)]
    assert len(pool.actors) == 2
    assert len({pid for _, pid, _ in results}) == 2
    assert pool.completed == 20 and pool.failed == 0
    assert pool.map([]) == []


def test_items_longer_than_the_stall_warning_on_started_actors_warn_nothing(make_pool,
                                                                           monkeypatch):
    import disco_rules.cluster.pool as pool_module

    warnings = []
    monkeypatch.setattr(pool_module, "STALL_WARNING_S", 0.5)
    monkeypatch.setattr(pool_module.logger, "warning", lambda *args: warnings.append(args))
    pool = make_pool(lambda: Square(delay=2.0), num_actors=2)
    pool.map([0, 1])  # the actors start, so that only the items' time is measured next
    warnings.clear()
    assert [value for value, _, _ in pool.map([2, 3])] == [4, 9]
    assert warnings == []


def test_each_actor_builds_its_evaluator_once(make_pool, tmp_path):
    log = tmp_path / "factory.log"
    pool = make_pool(CountedSquare(log), num_actors=2)
    results = pool.map(list(range(16))) + pool.map(list(range(16)))
    builds = log.read_text().split()
    assert len(builds) == 2
    assert {str(pid) for _, pid, _ in results} <= set(builds)
    tokens_per_pid = collections.defaultdict(set)
    for _, pid, token in results:
        tokens_per_pid[pid].add(token)
    assert all(len(tokens) == 1 for tokens in tokens_per_pid.values())


def test_an_evaluator_exception_is_a_failed_result_and_is_not_retried(make_pool):
    pool = make_pool(lambda: RaiseOn(3), num_actors=2)
    results = pool.map(list(range(6)))
    # one line, after the line that raised it (this file's, which is not disco's own code)
    raised = Failed(f"in __call__() at test_cluster.py:{RAISE_LINE}: ValueError: bad input 3")
    assert results[3] == raised
    assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 4, 16, 25]
    assert (pool.retries, pool.actor_restarts, pool.completed, pool.failed) == (0, 0, 5, 1)
    assert pool.map([2, 3]) == [4, raised]


def test_items_lost_with_an_actor_run_again_elsewhere_exactly_once(make_pool, tmp_path):
    pool = make_pool(lambda flag=tmp_path / "crashed": ExitOn(5, flag), num_actors=2)
    seen = collections.Counter()
    results = pool.map(list(range(12)), on_result=lambda index, _: seen.update([index]))
    assert results == [x * x for x in range(12)]
    assert seen == collections.Counter(range(12))
    assert pool.actor_restarts == 1
    assert pool.retries >= 1
    assert pool.completed == 12 and pool.failed == 0


def test_an_actor_killed_from_outside_mid_map_loses_nothing(make_pool):
    pool = make_pool(lambda: Square(delay=0.05), num_actors=2)
    seen = collections.Counter()

    def kill_first_actor_once(index: int, _: object) -> None:
        if not seen:
            ray.kill(pool.actors[0])
        seen.update([index])

    results = pool.map(list(range(12)), on_result=kill_first_actor_once)
    assert [value for value, _, _ in results] == [x * x for x in range(12)]
    assert seen == collections.Counter(range(12))
    assert pool.actor_restarts == 1 and pool.retries >= 1


def test_an_item_that_always_kills_its_actor_fails_after_max_retries(make_pool):
    pool = make_pool(lambda: ExitOn(2), num_actors=2, max_retries=2)
    results = pool.map(list(range(8)))
    assert isinstance(results[2], Failed) and "lost with its actor 3 times" in results[2].reason
    assert [r for i, r in enumerate(results) if i != 2] == [0, 1, 9, 16, 25, 36, 49]
    assert pool.actor_restarts == 3
    assert pool.failed == 1 and pool.completed == 7


def test_outstanding_calls_stay_within_the_per_actor_bound(make_pool):
    pool = make_pool(lambda: Square(delay=0.01), num_actors=2, max_in_flight_per_actor=1)
    in_flight = []
    results = pool.map(list(range(20)), on_result=lambda *_: in_flight.append(pool.in_flight))
    assert max(in_flight) <= 2
    assert len({pid for _, pid, _ in results}) == 2
    assert pool.in_flight == 0


def test_actors_see_no_preallocation_and_report_their_jax_devices(make_pool):
    pool = make_pool(ReadPreallocate, num_actors=1)
    assert pool.map([None]) == ["false"]
    devices = ray.get(pool.actors[0].actor_device_info.remote())
    assert devices and all("cpu" in device.lower() for device in devices)


def test_a_failing_factory_stops_map_with_its_error(make_pool):
    def broken_factory():
        raise RuntimeError("no such task family")

    pool = make_pool(broken_factory, num_actors=1)
    with pytest.raises(RuntimeError, match="no such task family"):
        pool.map([1])


def test_start_ray_leaves_a_running_ray_alone():
    before = ray.get_runtime_context().get_job_id()
    start_ray(None, num_cpus=1)
    assert ray.get_runtime_context().get_job_id() == before
    assert ray.cluster_resources()["CPU"] == 2


def test_failed_and_the_local_pool_import_without_ray():
    code = ("import sys; from disco_rules.cluster.results import Failed; "
            "from disco_rules.cluster.local import LocalPool; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
