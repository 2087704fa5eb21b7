"""A rough estimate of the memory a generation needs on this machine, checked before any work
starts, so that a config too big for the machine fails at once with the estimate.

The estimate for one local run (Ray in this process, `--address` not given):

    bytes = (actors + 1) * PROCESS_BYTES + actors * max over optimizer tasks t of item(t)
    item(t) = K * S * (4 * n(t) * (max_statements + REGISTER_SLACK) + data(t))
              + batch_size * K * S * horizon(t) * 4

where the tasks t are the fixed training, held-out and screen tasks and, with a [scheduler],
the largest levels each of its families can draw (`SchedulerConfig.largest_levels`: every int
parameter at its fixed, largest listed or range's largest value); actors =
min(cluster.num_actors, CPUs // num_cpus_per_actor) (the actors that run at once; the driver
is the +1), K = len(tasks.lr_grid), S = tasks.seeds, n(t) the task's parameter count and data(t)
the bytes of one seed's dataset (both from `jax.eval_shape`, nothing is computed), and
horizon(t) the length of each learning curve returned. The interpreter keeps one register per
input and statement, each a flat vector of the n(t) parameters, for every lr and seed at once;
programs of a work item run one after another. RL tasks and network populations add only
PROCESS_BYTES per process: their rollouts are not estimated. With `--address` the actors run
on the cluster's machines: once connected, one actor's share
(PROCESS_BYTES + item(t)) is checked against the memory Ray offers on the cluster's largest
node (`check_cluster_memory`).
"""

from __future__ import annotations

import os

import jax
import numpy as np

from disco_rules.discovery.config import Config, ConfigError, scheduler_config
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.tasks import Task

PROCESS_BYTES = 500 * 2 ** 20  # a process with JAX, Ray's worker and compiled trainers
REGISTER_SLACK = 8  # slot inputs, the parameters, their gradient and the trainer's temporaries


def _tree_size(tree: object) -> tuple[int, int]:
    """(elements, bytes) of a pytree of shape-dtype structs."""
    leaves = jax.tree_util.tree_leaves(tree)
    return (sum(int(np.prod(leaf.shape)) for leaf in leaves),
            sum(int(np.prod(leaf.shape)) * leaf.dtype.itemsize for leaf in leaves))


def estimated_tasks(config: Config, plan: TaskPlan) -> list[Task]:
    """The tasks whose work items bound the memory: the plan's and, with a scheduler, the
    largest levels it can draw."""
    if config.scheduler.kind == "none":
        return plan.all()
    largest = scheduler_config(config.scheduler).largest_levels()
    return list(dict.fromkeys(plan.all() + largest))


def item_bytes(config: Config, plan: TaskPlan) -> int:
    """The largest `item(t)` over the optimizer tasks of `estimated_tasks` (0 without any)."""
    lrs, seeds = len(config.tasks.lr_grid), config.tasks.seeds
    registers = config.population.max_statements + REGISTER_SLACK
    largest = 0
    key = jax.random.PRNGKey(0)
    for task in estimated_tasks(config, plan):
        if task.kind != "optimizer":
            continue
        problem = task.build()
        params, _ = _tree_size(jax.eval_shape(problem.init, key))
        _, data = _tree_size(jax.eval_shape(problem.data, key))
        curves = config.cluster.batch_size * lrs * seeds * problem.horizon * 4
        largest = max(largest, lrs * seeds * (4 * params * registers + data) + curves)
    return largest


def local_actors(config: Config) -> int:
    """How many evaluator actors a local Ray runs at once on this machine."""
    by_cpus = max((os.cpu_count() or 1) // config.cluster.num_cpus_per_actor, 1)
    wanted = config.cluster.num_actors
    return by_cpus if wanted is None else min(wanted, by_cpus)


def estimate_bytes(config: Config, plan: TaskPlan) -> int:
    """The module docstring's estimate of a local run's peak memory, in bytes."""
    actors = local_actors(config)
    return (actors + 1) * PROCESS_BYTES + actors * item_bytes(config, plan)


def physical_memory() -> int:
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(config: Config, address: str | None) -> None:
    """ConfigError with the estimate if a local run would need more than this machine's
    memory; nothing for a run on a cluster (`address` given)."""
    if address is not None:
        return
    plan = TaskPlan.from_config(config)
    needed, available = estimate_bytes(config, plan), physical_memory()
    if needed > available:
        gib = 2 ** 30
        raise ConfigError(
            f"this run needs about {needed / gib:.1f} GiB ({local_actors(config)} actors x "
            f"({PROCESS_BYTES / gib:.1f} GiB + {item_bytes(config, plan) / gib:.1f} GiB per "
            f"work item), + the driver), over this machine's {available / gib:.1f} GiB: lower "
            "tasks.seeds, the length of tasks.lr_grid, cluster.num_actors or "
            "population.max_statements")


def check_cluster_memory(config: Config, node_memory: list[float]) -> None:
    """ConfigError with the estimate if one actor (a process and its largest work item) needs
    more memory than Ray offers on any node of the cluster (`node_memory`, bytes per node)."""
    if not node_memory:
        return
    plan = TaskPlan.from_config(config)
    needed, largest = PROCESS_BYTES + item_bytes(config, plan), max(node_memory)
    if needed > largest:
        gib = 2 ** 30
        raise ConfigError(
            f"one evaluator actor needs about {needed / gib:.1f} GiB ({PROCESS_BYTES / gib:.1f} "
            f"GiB + {(needed - PROCESS_BYTES) / gib:.1f} GiB per work item), over the "
            f"{largest / gib:.1f} GiB that Ray offers on the cluster's largest node: lower "
            "tasks.seeds, the length of tasks.lr_grid or population.max_statements")
