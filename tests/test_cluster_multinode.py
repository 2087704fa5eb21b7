"""A real search on a multi-node Ray cluster that loses a worker node mid-generation.

`ray.cluster_utils.Cluster` starts several Ray nodes on this machine: a head with no CPUs
(so no actor lands there; the driver connects to it) and two worker nodes of one CPU each,
so the pool's two one-CPU actors sit one per worker node. In the middle of a generation,
from the pool's `on_result` callback while both actors still have items in flight, one
worker node is removed (its raylet and actor killed) and a fresh node joins for the
replacement actor. The run must complete with every candidate and every (candidate, task)
score archived exactly once, and an archive identical to an uninterrupted in-process run
with the same config and seed. Then a node is lost with no room left for its replacement
actor (the map must finish on the actor that survives), and `start_ray(None)` must start its
own Ray beside a running cluster rather than join it.
"""

from __future__ import annotations

import collections
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from disco_rules.cluster.local import LocalPool  # noqa: E402

pytestmark = pytest.mark.slow  # starts multi-node Ray clusters and runs whole searches on them
from disco_rules.cluster.pool import EvaluatorPool, PoolConfig, start_ray  # noqa: E402
from disco_rules.discovery.config import parse_config  # noqa: E402
from disco_rules.discovery.evaluator import Evaluator, ProgramsItem  # noqa: E402
from disco_rules.api import create_run  # noqa: E402
from disco_rules.discovery.search.engine import Engine, make_engine  # noqa: E402
from disco_rules.discovery.plan import TaskPlan  # noqa: E402
from disco_rules.discovery.store import RunStore  # noqa: E402
from disco_rules.dsl.parser import parse  # noqa: E402

# Actors cannot import this test module by name, so its evaluator factory travels by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

EXAMPLES = Path(__file__).parent.parent / "dsl" / "programs"

GENERATIONS = 3
KILL_GENERATION = 1  # generation 1 trains 12 unique children (of 16; others are copies or
# stop at the stability screen): 6 work items of 2 programs

# tests/test_search.py's tiny search, with more children and small batches so that a
# generation is several work items spread over both actors.
CONFIG = f"""
seed = 7
generations = {GENERATIONS}
[population]
size = 8
tournament = 3
children = 16
max_statements = 12
[tasks]
seeds = 1
lr_grid = [0.01, 0.1]
train = [{{ family = "quadratic", dim = 4, horizon = 12 }}]
heldout = [{{ family = "quadratic", dim = 6, horizon = 12, condition_number = 10.0 }}]
[validation]
every = 2
top = 2
[cluster]
num_actors = 2
batch_size = 2
max_retries = 3
"""

# Fast detection of a dead node (Ray's defaults take tens of seconds).
HEAD_SYSTEM_CONFIG = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                      "health_check_failure_threshold": 4}


class SlowEvaluator:
    """The search's evaluator, slowed down so that items are surely mid-flight at the kill."""

    def __init__(self, max_statements: int, delay: float) -> None:
        self.evaluator = Evaluator(max_statements)
        self.delay = delay

    def __call__(self, item: Any) -> Any:
        time.sleep(self.delay)
        return self.evaluator(item)


class SlowFactory:
    def __init__(self, max_statements: int, delay: float = 0.3) -> None:
        self.max_statements = max_statements
        self.delay = delay

    def __call__(self) -> SlowEvaluator:
        return SlowEvaluator(self.max_statements, self.delay)


@pytest.fixture(scope="module")
def ray_cluster():
    """A head without CPUs and two one-CPU worker nodes; the driver connected to the head.

    The cluster lives under its own RAY_TMPDIR, so the address file Ray writes for it
    (`ray_current_cluster`) never sends another process's `ray.init()` to this cluster.
    """
    if ray.is_initialized():  # another module's in-process Ray
        ray.shutdown()
    with tempfile.TemporaryDirectory(prefix="dmn-", dir="/tmp") as tmp, \
            pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", tmp)
        cluster = None
        try:
            cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 0, "include_dashboard": False,
                "_system_config": HEAD_SYSTEM_CONFIG})
            workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
            start_ray(cluster.address)
        except Exception as error:  # noqa: BLE001 - only a Ray that cannot start skips
            if cluster is not None:
                cluster.shutdown()
            pytest.skip(f"Ray cannot start a multi-node cluster here: {error}")
        try:
            yield cluster, workers
        finally:
            ray.shutdown()
            cluster.shutdown()


def actor_node(cluster: Cluster, actor: Any) -> str:
    """The id of the node an actor was placed on (from the GCS actor table)."""
    deadline = time.monotonic() + 60
    while True:
        info = cluster.global_state.actor_table(actor._actor_id.hex())
        if info.get("State") == "ALIVE" or time.monotonic() > deadline:
            return info["Address"]["NodeID"]
        time.sleep(0.1)


class NodeKillingPool:
    """The search's pool: passes each map to the EvaluatorPool, checks every item's result
    arrives exactly once, and in generation KILL_GENERATION removes the node of an actor with
    items in flight when the first result of the generation's training map comes back."""

    def __init__(self, pool: EvaluatorPool, cluster: Cluster, workers: list,
                 search_generation) -> None:
        self.pool = pool
        self.cluster = cluster
        self.workers = workers
        self.generation = search_generation  # () -> the generation the search is running
        self.killed: dict[str, Any] = {}

    def map(self, items: Sequence[Any]) -> list[Any]:
        arrived = collections.Counter()
        programs_items = sum(isinstance(item, ProgramsItem) for item in items)
        arm = (not self.killed and self.generation() == KILL_GENERATION
               and programs_items >= 4)

        def on_result(index: int, _: Any) -> None:
            arrived.update([index])
            if arm and not self.killed:
                self._kill_a_node()

        results = self.pool.map(items, on_result=on_result)
        assert arrived == collections.Counter(range(len(items))), "a result came twice or never"
        return results

    def _kill_a_node(self) -> None:
        # Each actor holds up to 2 calls; one result is back, so both still have work out.
        in_flight = self.pool.in_flight
        victim = self.pool.actors[0]
        node_id = actor_node(self.cluster, victim)
        node = next(w for w in self.workers if w.node_id == node_id)
        self.cluster.remove_node(node)
        replacement = self.cluster.add_node(num_cpus=1)  # somewhere for the new actor to go
        self.killed = {"node": node_id, "in_flight": in_flight,
                       "replacement": replacement.node_id}


def warm_start():
    return [parse((EXAMPLES / f"{name}.py").read_text()) for name in ("sgd", "momentum")]


def run_search(run_dir: Path, pool_for) -> RunStore:
    config = parse_config(CONFIG)
    store = create_run(run_dir, "test", CONFIG, warm_start())
    search = make_engine(config, store, None)
    search.pool = search.population.pool = pool_for(search)
    search.restore()
    search.run(GENERATIONS)
    return store


def _plain(value: Any) -> Any:
    """A record as comparable plain data: NaN made equal to NaN, curves as tuples."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return tuple((name, _plain(getattr(value, name))) for name in value.__dataclass_fields__)
    return value


def archive(store: RunStore) -> dict[str, list]:
    ids = range(store.count())
    return {"candidates": [_plain(store.candidate(i)) for i in ids],
            "scores": [_plain(store.scores_of(i)) for i in ids],
            "validation": [_plain(store.validation_of(i)) for i in ids]}


@pytest.mark.slow
def test_a_search_survives_losing_a_worker_node_mid_generation(ray_cluster, tmp_path):
    cluster, workers = ray_cluster
    config = parse_config(CONFIG)
    head = cluster.head_node.node_id

    pool = EvaluatorPool(SlowFactory(config.population.max_statements),
                         PoolConfig(num_actors=2, num_cpus_per_actor=1,
                                    max_retries=config.cluster.max_retries))
    try:
        placed = [actor_node(cluster, actor) for actor in pool.actors]
        assert sorted(placed) == sorted(w.node_id for w in workers) and head not in placed

        wrappers = []

        def pool_for(search: Engine) -> NodeKillingPool:
            wrappers.append(NodeKillingPool(pool, cluster, workers, lambda: search.generation))
            return wrappers[-1]

        ray_store = run_search(tmp_path / "ray", pool_for)
        killed = wrappers[0].killed

        # The failure happened mid-generation and the pool recovered from it.
        assert killed, "no node was removed: the kill generation had too few work items"
        assert killed["in_flight"] >= 2
        assert pool.actor_restarts >= 1 and pool.retries >= 1
        assert pool.failed == 0
        now = [actor_node(cluster, actor) for actor in pool.actors]
        assert killed["node"] not in now and killed["replacement"] in now
    finally:
        pool.shutdown()

    factory = lambda: Evaluator(config.population.max_statements)  # noqa: E731
    local_store = run_search(tmp_path / "local", lambda _: LocalPool(factory))
    ray_rows, local_rows = archive(ray_store), archive(local_store)

    # Every candidate of every generation archived exactly once, none failed by the loss.
    candidates = [ray_store.candidate(i) for i in range(ray_store.count())]
    assert [c.id for c in candidates] == list(range(len(candidates)))
    per_generation = collections.Counter(c.generation for c in candidates)
    assert per_generation == {0: config.population.size,
                              **{g: config.population.children
                                 for g in range(1, GENERATIONS)}}
    assert not [c for c in candidates if c.status == "failed"]
    # Every (candidate, task) score exactly once: a trained candidate has one row per
    # training task, plus one per held-out task if it was meta-validated; a cached one, or
    # one the stability screen stopped (no screen task here), none.
    plan = TaskPlan.from_config(config)
    train, heldout = {t.key for t in plan.train}, {t.key for t in plan.heldout}
    for c in candidates:
        tasks = [s.task for s in ray_store.scores_of(c.id)]
        assert len(tasks) == len(set(tasks))
        validated = {v.task for v in ray_store.validation_of(c.id)}
        expected = set() if c.status in ("cached", "screened") else train
        assert set(tasks) == expected | validated and validated in (set(), heldout)

    # ... and identical to the uninterrupted in-process run with the same config and seed.
    assert ray_rows["candidates"] == local_rows["candidates"]
    assert ray_rows["scores"] == local_rows["scores"]
    assert ray_rows["validation"] == local_rows["validation"]
    ray_store.close()
    local_store.close()


class SlowSquare:
    def __call__(self, x: int) -> int:
        time.sleep(0.2)
        return x * x


def test_a_lost_node_without_room_for_a_replacement_loses_no_items(ray_cluster, monkeypatch):
    """The replacement actor cannot start (no free CPU left): the items of the lost actor
    run on the surviving one instead of waiting on the replacement for ever."""
    import disco_rules.cluster.pool as pool_module

    class RaiseOnStall:  # a stalled map fails the test instead of waiting for ever
        def warning(self, message: str, *args: Any) -> None:
            if message.startswith("no result for"):
                raise AssertionError("map stalled: " + message % args)

    monkeypatch.setattr(pool_module, "STALL_WARNING_S", 20)
    monkeypatch.setattr(pool_module, "logger", RaiseOnStall())
    cluster, _ = ray_cluster
    assert len(cluster.worker_nodes) == 2  # one CPU each, as the module's first test left it
    pool = EvaluatorPool(SlowSquare, PoolConfig(num_actors=2, num_cpus_per_actor=1))
    try:
        assert len({actor_node(cluster, actor) for actor in pool.actors}) == 2
        removed = []

        def remove_a_node_once(index: int, _: Any) -> None:
            if not removed:
                node_id = actor_node(cluster, pool.actors[0])
                cluster.remove_node(next(n for n in cluster.worker_nodes
                                         if n.node_id == node_id))
                removed.append(node_id)

        results = pool.map(list(range(10)), on_result=remove_a_node_once)
        assert results == [x * x for x in range(10)]
        assert removed and pool.actor_restarts == 1 and pool.retries >= 1
        assert pool.failed == 0
        states = [cluster.global_state.actor_table(a._actor_id.hex())["State"]
                  for a in pool.actors]
        assert sorted(states) == ["ALIVE", "PENDING_CREATION"]
        assert pool.map([3]) == [9]  # and the pool goes on with the actor it has
    finally:
        pool.shutdown()


def test_start_ray_without_an_address_starts_a_new_ray_beside_a_running_cluster(ray_cluster):
    """`disco launch` without --address must not join a cluster started on this machine
    (Ray's own `ray.init()` would: it reads the address file that cluster left)."""
    address_file = Path(os.environ["RAY_TMPDIR"]) / "ray" / "ray_current_cluster"
    cluster, _ = ray_cluster
    assert address_file.read_text().strip() == cluster.address
    code = ("import ray; from disco_rules.cluster.pool import start_ray; "
            "start_ray(None, num_cpus=1); "
            "print(len(ray.nodes()), ray.cluster_resources()['CPU']); ray.shutdown()")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=Path(__file__).parent.parent, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["1", "1.0"]  # its own one-node Ray, not the cluster
