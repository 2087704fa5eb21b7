"""Evaluator actors on a mixed cluster: GPU actors on the GPU node, CPU actors elsewhere.

`ray.cluster_utils.Cluster` starts a head that declares one GPU (Ray only counts it; no
device is needed) and one CPU, and a CPU-only worker node of two CPUs. A pool with
`num_gpus_per_actor = 1` and no `num_actors` must start one GPU actor and two CPU actors,
each given what it asked for: the GPU actor CUDA_VISIBLE_DEVICES of its GPU, the CPU actors
none. A GPU actor that dies is replaced by another GPU actor.
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import time
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from disco_rules.cluster.pool import ActorKind, EvaluatorPool, PoolConfig, start_ray  # noqa: E402

pytestmark = pytest.mark.slow  # starts a multi-node Ray cluster

# Actors cannot import this test module by name, so its evaluator travels by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class WhereAmI:
    """Reports the actor, node, resources and visible devices an item ran with."""

    def __call__(self, item: Any) -> dict[str, Any]:
        time.sleep(0.3)  # long enough that every actor of the pool takes its share
        context = ray.get_runtime_context()
        return {"actor": context.get_actor_id(), "node": context.get_node_id(),
                "resources": context.get_assigned_resources(),
                "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "jax_platforms": os.environ.get("JAX_PLATFORMS")}


@pytest.fixture(scope="module")
def mixed_cluster():
    """A head with 1 CPU and 1 (fake) GPU, a worker with 2 CPUs; the driver on the head.

    The cluster lives under its own RAY_TMPDIR, so its address file never sends another
    process's `ray.init()` here (as in tests/test_cluster_multinode.py).
    """
    if ray.is_initialized():  # another module's in-process Ray
        ray.shutdown()
    with tempfile.TemporaryDirectory(prefix="dpl-", dir="/tmp") as tmp, \
            pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", tmp)
        env.delenv("RAY_ADDRESS", raising=False)
        cluster = None
        try:
            cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 1, "num_gpus": 1, "include_dashboard": False})
            cpu_node = cluster.add_node(num_cpus=2)
            start_ray(cluster.address)
        except Exception as error:  # noqa: BLE001 - only a Ray that cannot start skips
            if cluster is not None:
                cluster.shutdown()
            pytest.skip(f"Ray cannot start a multi-node cluster here: {error}")
        try:
            yield cluster, cluster.head_node.node_id, cpu_node.node_id
        finally:
            ray.shutdown()
            cluster.shutdown()


def test_gpu_and_cpu_nodes_each_get_their_kind_of_actor(mixed_cluster):
    _, gpu_node, cpu_node = mixed_cluster
    pool = EvaluatorPool(WhereAmI, PoolConfig(num_cpus_per_actor=1, num_gpus_per_actor=1))
    try:
        gpu_kind, cpu_kind = ActorKind(1, 1), ActorKind(1, 0)
        assert collections.Counter(pool.kinds) == {gpu_kind: 1, cpu_kind: 2}

        # Six items, two in flight per actor: every actor runs some.
        results = pool.map(list(range(6)))
        by_actor = {r["actor"]: r for r in results}
        kind_of = {a._actor_id.hex(): k for a, k in zip(pool.actors, pool.kinds)}
        assert set(by_actor) == set(kind_of)
        for actor, seen in by_actor.items():
            if kind_of[actor] == gpu_kind:
                assert seen["node"] == gpu_node
                assert seen["resources"] == {"CPU": 1.0, "GPU": 1.0}
                assert seen["cuda"] == "0"  # Ray's assigned GPU, not overridden by the pool
            else:
                assert seen["node"] == cpu_node
                assert seen["resources"] == {"CPU": 1.0}
                assert seen["cuda"] == "" and seen["jax_platforms"] == "cpu"

        # A lost GPU actor is replaced by a GPU actor, which gets the freed GPU.
        gpu_slot = pool.kinds.index(gpu_kind)
        killed = []

        def kill_the_gpu_actor_once(index: int, _: Any) -> None:
            if not killed:
                killed.append(pool.actors[gpu_slot]._actor_id.hex())
                ray.kill(pool.actors[gpu_slot], no_restart=True)

        # Twelve items: the killed actor still holds, or is given, some after the kill.
        pool.map(list(range(12)), on_result=kill_the_gpu_actor_once)
        assert pool.actor_restarts == 1 and pool.failed == 0
        assert pool.kinds[gpu_slot] == gpu_kind
        replacement = pool.actors[gpu_slot]._actor_id.hex()
        assert replacement != killed[0]
        seen = ray.get(pool.actors[gpu_slot].evaluate.remote(0))
        assert seen["actor"] == replacement and seen["node"] == gpu_node
        assert seen["resources"] == {"CPU": 1.0, "GPU": 1.0} and seen["cuda"] == "0"
    finally:
        pool.shutdown()


def test_explicit_num_actors_keeps_every_actor_of_the_configured_kind(mixed_cluster):
    pool = EvaluatorPool(WhereAmI, PoolConfig(num_actors=2, num_gpus_per_actor=0))
    try:
        assert pool.kinds == [ActorKind(1, 0)] * 2
    finally:
        pool.shutdown()
