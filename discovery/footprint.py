"""A rough estimate of the memory a generation needs on this machine, checked before any work
starts, so that a config too big for the machine fails at once with the estimate.

The estimate for one local run (Ray in this process, `--address` not given):

    bytes = (actors + 1) * PROCESS_BYTES + actors * (the largest work item)

over the work items of every optimizer task t, each a whole grid of training runs at once:

    candidates  K * S(t) * (4 * n(t) * (max_statements + REGISTER_SLACK) + data(t))
                + batch_size * K * S(t) * CURVE_POINTS * 4
    baseline    G * B * (4 * n(t) * ADAMW_REGISTERS + data(t)) + G * B * CURVE_POINTS * 4

where the tasks t are the fixed training, held-out and screen tasks and, with a [scheduler],
the largest levels each of its families can draw (`SchedulerConfig.largest_levels`: every int
parameter at its fixed, largest listed or range's largest value); actors =
min(cluster.num_actors, CPUs // num_cpus_per_actor) (the actors that run at once; the driver
is the +1); K = len(tasks.lr_grid) x the candidates' schedules; S(t) =
`Config.validation_seeds` on a held-out task (validation.seeds, else the baseline's) and
tasks.seeds elsewhere;
G = len(tasks.lr_grid) x the baseline's schedules (tasks.baseline_schedules and the
candidates') x len(tasks.wd_grid), the points AdamW is tuned over, and B =
tasks.baseline_seeds; n(t) the task's parameter count and data(t) the bytes of one seed's
dataset (both from `jax.eval_shape`, nothing is computed), and CURVE_POINTS the validation
losses each run returns (its learning curve, whatever its horizon). The interpreter keeps one
register per input and statement, each a flat vector of the n(t) parameters, for every grid
point and seed at once; programs of
a work item run one after another; AdamW keeps its parameters, gradient, two moments and
update. RL tasks and network populations add only PROCESS_BYTES per process: their rollouts
are not estimated. The total is compared with the memory this machine has available now
(MemAvailable: free memory and caches it can drop), not its size. With `--address` the actors
run on the cluster's machines: once connected, one actor's share (PROCESS_BYTES + the largest
item) is checked against the memory Ray offers on the cluster's largest node
(`check_cluster_memory`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from disco_rules.cluster.deadlines import DeadlineExceeded, call_within
from disco_rules.discovery.config import Config, ConfigError, scheduler_config
from disco_rules.discovery.inner.train import CURVE_POINTS
from disco_rules.discovery.plan import TaskPlan, driver_deadline_s
from disco_rules.discovery.scheduler_kinds import scheduler_kind
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.tasks.kinds import task_kind

PROCESS_BYTES = 500 * 2 ** 20  # a process with JAX, Ray's worker and compiled trainers
REGISTER_SLACK = 8  # slot inputs, the parameters, their gradient and the trainer's temporaries
ADAMW_REGISTERS = 8  # parameters, gradient, both moments, the update and temporaries
# What a refusal asks to lower: everything the work items scale with.
LOWER = ("lower tasks.seeds, validation.seeds, tasks.baseline_seeds, the lengths of "
         "tasks.lr_grid, tasks.wd_grid or tasks.baseline_schedules, cluster.batch_size or "
         "population.max_statements")


def _tree_size(tree: object) -> tuple[int, int]:
    """(elements, bytes) of a pytree of shape-dtype structs."""
    leaves = jax.tree_util.tree_leaves(tree)
    return (sum(int(np.prod(leaf.shape)) for leaf in leaves),
            sum(int(np.prod(leaf.shape)) * leaf.dtype.itemsize for leaf in leaves))


def estimated_tasks(config: Config, plan: TaskPlan) -> list[Task]:
    """The tasks whose work items bound the memory: the plan's and, with a scheduler, the
    largest levels it can draw."""
    if not scheduler_kind(config.scheduler.kind).draws_levels:
        return plan.all()
    largest = scheduler_config(config.scheduler).largest_levels()
    return list(dict.fromkeys(plan.all() + largest))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class WorkItem:
    """One work item's estimated bytes, and what it is (for the refusal's message)."""

    bytes: int
    what: str


def work_items(config: Config, plan: TaskPlan) -> list[WorkItem]:
    """The work items of every task of `estimated_tasks`, as its task kind estimates them."""
    heldout = {task.key for task in plan.heldout}
    return [item for task in estimated_tasks(config, plan)
            for item in task_kind(task.kind).work_items(task, config, task.key in heldout)]


def _built(task: Task, config: Config) -> Any:
    """`task.build()`, abandoned after the driver's deadline (a user's build that blocks for
    these parameters): a ConfigError then."""
    try:
        return call_within(driver_deadline_s(config), task.build,
                           what="building it to estimate the run's memory")
    except DeadlineExceeded as error:
        raise ConfigError(f"{task.key}: {error}") from None


def optimizer_work_items(task: Task, config: Config, held_out: bool) -> list[WorkItem]:
    """The candidates' and the baseline's work item on an optimizer task, sized as the module
    docstring says."""
    tasks = config.tasks
    points = len(tasks.lr_grid) * len(tasks.candidate_schedules)
    baseline_points = len(tasks.lr_grid) * len(tasks.baseline_schedule_grid) * len(tasks.wd_grid)
    baseline_seeds = tasks.seeds_of_baseline
    registers = config.population.max_statements + REGISTER_SLACK
    key = jax.random.PRNGKey(0)
    problem = _built(task, config)
    params, _ = _tree_size(jax.eval_shape(problem.init, key))
    _, data = _tree_size(jax.eval_shape(problem.data, key))
    seeds = config.validation_seeds if held_out else tasks.seeds
    runs = points * seeds
    baseline_runs = baseline_points * baseline_seeds
    return [
        WorkItem(runs * (4 * params * registers + data)
                 + config.cluster.batch_size * runs * CURVE_POINTS * 4,
                 f"{_count(config.cluster.batch_size, 'program')} x "
                 f"{_count(points, 'lr point')} x {_count(seeds, 'seed')} on {task.key}"),
        WorkItem(baseline_runs * (4 * params * ADAMW_REGISTERS + data)
                 + baseline_runs * CURVE_POINTS * 4,
                 f"the baseline's {_count(baseline_points, 'lr x schedule x weight-decay point')}"
                 f" x {_count(baseline_seeds, 'seed')} on {task.key}"),
    ]


def largest_item(config: Config, plan: TaskPlan) -> WorkItem:
    """The largest of `work_items` (0 bytes without an optimizer task)."""
    return max(work_items(config, plan), key=lambda item: item.bytes,
               default=WorkItem(0, "no optimizer task"))


def item_bytes(config: Config, plan: TaskPlan) -> int:
    """The bytes of the largest work item (0 without any optimizer task)."""
    return largest_item(config, plan).bytes


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


def available_memory(meminfo: str = "/proc/meminfo") -> int:
    """The memory this machine can give a new run now, in bytes: Linux's MemAvailable (free
    memory and the caches it can drop); the physical memory where that is not known."""
    try:
        with open(meminfo) as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name == "MemAvailable":
                    return int(value.split()[0]) * 1024  # in kB
    except OSError:
        pass
    return physical_memory()


def check_memory(config: Config, address: str | None) -> None:
    """ConfigError with the estimate if a local run would need more than this machine's
    memory; nothing for a run on a cluster (`address` given)."""
    if address is not None:
        return
    plan = TaskPlan.from_config(config)
    needed, available = estimate_bytes(config, plan), available_memory()
    if needed > available:
        gib, largest = 2 ** 30, largest_item(config, plan)
        raise ConfigError(
            f"this run needs about {needed / gib:.1f} GiB ({local_actors(config)} actors x "
            f"({PROCESS_BYTES / gib:.1f} GiB + {largest.bytes / gib:.1f} GiB for its largest "
            f"work item, {largest.what}), + the driver), over this machine's "
            f"{available / gib:.1f} GiB available (of {physical_memory() / gib:.1f} GiB): "
            f"{LOWER}, or cluster.num_actors")


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
            f"{largest / gib:.1f} GiB that Ray offers on the cluster's largest node: {LOWER}")
