"""Evaluate work items on a pool of Ray actors, in input order, surviving lost actors and nodes.

Each actor builds its evaluator once (so compile caches live as long as the actor) and the
driver keeps every actor busy with a bounded number of outstanding calls. An item lost with
its actor is retried elsewhere; an exception raised by the evaluator itself is a result. An
item still running at its deadline (cluster/deadlines.py) is a `TimedOut` result: its actor
is killed and replaced, and the items queued behind it run elsewhere.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Sequence

import ray
import ray.exceptions
from ray.util.metrics import Counter, Histogram

from disco_rules.cluster import reasons, stop
from disco_rules.cluster.deadlines import DeadlineRule, Deadlines
from disco_rules.cluster.results import Failed, TimedOut

logger = logging.getLogger(__name__)

# Keeps JAX in an actor from reserving most of a GPU's memory when it first loads.
ACTOR_ENV_VARS = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}

# Added for an actor that asks for no GPU: Ray leaves such a process the node's
# CUDA_VISIBLE_DEVICES (every GPU), so JAX would take a GPU that Ray lent to another actor.
# Ray sets CUDA_VISIBLE_DEVICES itself, to the assigned GPUs, for an actor with num_gpus > 0.
CPU_ACTOR_ENV_VARS = {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}

# The address of a local Ray's node: its servers then listen on the loopback interface only.
LOOPBACK = "127.0.0.1"

# Whether Ray reports usage statistics ("0": no); a local run's default is "0".
USAGE_STATS_ENV_VAR = "RAY_USAGE_STATS_ENABLED"

# How long map waits for any result before it logs that it is still waiting.
STALL_WARNING_S = 300

# Figures each actor records through Ray's metrics; Ray exports them from every node as
# ray_<name> (a counter with the suffix _total), where a cluster's Prometheus scrapes them.
ACTOR_ITEMS_METRIC = "disco_actor_items"  # counter, tag outcome = ok | error
ACTOR_ITEM_SECONDS_METRIC = "disco_actor_item_seconds"  # histogram of evaluation wall time
ITEM_SECONDS_BOUNDARIES = [0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600]

# Errors that mean the actor or its node was lost, not that the item is bad: retry elsewhere.
LOST_WORKER_ERRORS = (
    ray.exceptions.RayActorError,  # ActorDiedError, ActorUnavailableError
    ray.exceptions.ActorUnschedulableError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.LocalRayletDiedError,
    ray.exceptions.ObjectLostError,  # OwnerDiedError, ObjectReconstructionFailedError, ...
    ray.exceptions.OutOfMemoryError,
)


@dataclass(frozen=True)
class PoolConfig:
    """How many actors to run, what each reserves, and how hard to retry lost items."""

    num_actors: int | None = None  # None: as many as the cluster's nodes allow (ActorKind.plan)
    num_cpus_per_actor: float = 1
    num_gpus_per_actor: float = 0
    max_retries: int = 3
    max_in_flight_per_actor: int = 2
    deadline: DeadlineRule = DeadlineRule()  # how long one item may run (cluster/deadlines.py)


def start_ray(address: str | None, num_cpus: int | None = None,
              py_modules: Sequence[str] = ()) -> None:
    """Start Ray in this process (address None) or join a cluster ("auto", "ray://host:port").
    `py_modules`: local module files or packages every worker can import (Ray uploads them
    for the job; user task plug-ins).

    Does nothing if Ray is already initialised. Ray's INFO lines (its start, its uploads of
    `py_modules`) are not shown unless DISCO_DEBUG is set. A local Ray runs without a
    dashboard (Ray still starts its API server, which then only reports usage statistics:
    off too, unless RAY_USAGE_STATS_ENABLED says otherwise), and is always a new one: not the
    cluster that a `ray start` on this machine left in /tmp/ray/ray_current_cluster (or
    RAY_ADDRESS names), which ray.init() would join. Its node has the loopback address, so
    every server of it listens on 127.0.0.1 only. Its processes end with this one: on
    SIGHUP as on SIGTERM (this process raises cluster/stop.py's Terminated and exits,
    shutting Ray down), and if this one is killed outright (cluster/reaper.py).
    """
    if ray.is_initialized():
        return
    runtime_env: dict[str, Any] = {"env_vars": dict(ACTOR_ENV_VARS)}
    if py_modules:
        runtime_env["py_modules"] = list(py_modules)
    logging_level = logging.INFO if os.environ.get("DISCO_DEBUG") else logging.WARNING
    if address is None:
        # include_dashboard=False still starts ray/dashboard/dashboard.py: Ray 2.x starts it on
        # every head (no option skips it), here as an API server with only its usage-statistics
        # module and no HTTP server. Without it (patching Ray's Node.start_api_server), the
        # dashboard agent would log a traceback every second, waiting for the address it posts.
        with _loopback_node(), _quiet_start():
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                     log_to_driver=False, runtime_env=runtime_env, logging_level=logging_level,
                     _node_ip_address=LOOPBACK)
        _end_with_this_process()
    else:
        ray.init(address=address, log_to_driver=False, runtime_env=runtime_env,
                 logging_level=logging_level)
    _sigterm_without_crash_report()


def _sigterm_without_crash_report() -> None:
    """SIGTERM raises Terminated (cluster/stop.py: an exit through Python, shutting Ray down),
    away from the C++ failure-signal handler ray.init installs, which prints a crash report
    (`*** SIGTERM received`, logging.cc lines) for a request to stop; it keeps SIGSEGV,
    SIGABRT and the rest."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop.terminate)


def _end_with_this_process() -> None:
    """Make a local Ray's processes end with this one (see `start_ray`)."""
    import psutil  # Ray's copy (ray/thirdparty_files) where no other is installed

    from disco_rules.cluster import reaper

    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL):
        signal.signal(signal.SIGHUP, stop.terminate)  # not SIGHUP's default: killed at once
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.name() == "raylet":
                reaper.watch(child.pid)


@contextlib.contextmanager
def _quiet_start() -> Iterator[None]:
    """Two start-up warnings of a local Ray that a user cannot act on, silenced while it starts.

    - Ray starts its servers with subprocess.Popen(preexec_fn=...), which runs the fork
      hooks: JAX, once loaded, warns that forking a multithreaded process may deadlock. The
      child only masks SIGINT, sets its parent-death signal and execs a Ray binary; it never
      runs JAX.
    - "Token authentication is enabled": Ray's default for a new local cluster, which also
      listens on loopback only (README, Security); nothing to do.

    Ray's usage statistics, which a local run's API server would report to Ray's servers,
    are off unless RAY_USAGE_STATS_ENABLED is set (read by the processes Ray starts here).
    """
    token_log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    level = token_log.level
    token_log.setLevel(logging.ERROR)
    stats_unset = USAGE_STATS_ENV_VAR not in os.environ
    if stats_unset:
        os.environ[USAGE_STATS_ENV_VAR] = "0"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called",
                                    category=RuntimeWarning)
            yield
    finally:
        token_log.setLevel(level)
        if stats_unset:
            os.environ.pop(USAGE_STATS_ENV_VAR, None)


@contextlib.contextmanager
def _loopback_node() -> Iterator[None]:
    """Let `ray.init(_node_ip_address="127.0.0.1")` keep the loopback address.

    Ray 2.x replaces a loopback node address by the machine's routable one
    (`ray._private.services.resolve_ip_for_localhost`) unless "clusters are disabled", which
    it reads from RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER: in the environment for the processes
    ray.init starts, and in `ray_constants` for this one, which read it on import. Both are
    set only while Ray starts, so that a later join of a real cluster is unaffected.
    """
    from ray._private import ray_constants

    saved_env = os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = saved_env


@ray.remote
class EvaluatorActor:
    """Holds one evaluator, built once by the factory, and applies it to items."""

    def __init__(self, factory: Callable[[], Callable[[Any], Any]]) -> None:
        self.evaluator = factory()
        self.items = Counter(ACTOR_ITEMS_METRIC, "Work items this actor evaluated, by outcome.",
                             tag_keys=("outcome",))
        self.item_seconds = Histogram(ACTOR_ITEM_SECONDS_METRIC, "Wall time of one successful "
                                      "work item on an actor.", boundaries=ITEM_SECONDS_BOUNDARIES)

    def evaluate(self, item: Any) -> Any:
        """The evaluator's result for one item, counted and timed in Ray's metrics."""
        started = time.perf_counter()
        try:
            result = self.evaluator(item)
        except Exception:
            self.items.inc(tags={"outcome": "error"})
            raise
        self.items.inc(tags={"outcome": "ok"})
        self.item_seconds.observe(time.perf_counter() - started)
        return result

    def actor_device_info(self) -> list[str]:
        """The JAX devices this actor sees (only the GPUs Ray assigned it), as strings."""
        import jax

        return [str(device) for device in jax.devices()]


@dataclass(frozen=True)
class ActorKind:
    """What one actor asks Ray for; JAX there sees only the GPUs Ray assigned (or none)."""

    num_cpus: float
    num_gpus: float

    @staticmethod
    def plan(config: PoolConfig) -> list[ActorKind]:
        """The kind of each actor to start: GPU actors on GPU nodes, CPU actors elsewhere.

        With `num_actors` set, that many of the configured kind. Otherwise, with
        `num_gpus_per_actor` > 0, each alive node with GPUs gets one GPU actor per
        `num_gpus_per_actor` GPUs (as its CPUs allow) and each node without GPUs one CPU
        actor per `num_cpus_per_actor` CPUs, so a mixed cluster uses both; with 0, one CPU
        actor per `num_cpus_per_actor` of the cluster's CPUs. At least one actor.
        """
        configured = ActorKind(config.num_cpus_per_actor, config.num_gpus_per_actor)
        if config.num_actors is not None:
            return [configured] * config.num_actors
        if config.num_gpus_per_actor == 0:
            count = int(ray.cluster_resources().get("CPU", 1) // config.num_cpus_per_actor)
            return [configured] * max(count, 1)
        gpu_actors, cpu_actors = 0, 0
        for node in ray.nodes():
            if not node["Alive"]:
                continue
            cpus = int(node["Resources"].get("CPU", 0) // config.num_cpus_per_actor)
            gpus = node["Resources"].get("GPU", 0)
            if gpus > 0:
                gpu_actors += min(int(gpus // config.num_gpus_per_actor), cpus)
            else:
                cpu_actors += cpus
        if gpu_actors + cpu_actors == 0:
            return [configured]
        # GPU actors first, so that none waits behind a CPU actor on a GPU node's CPUs.
        return [configured] * gpu_actors + [ActorKind(config.num_cpus_per_actor, 0)] * cpu_actors

    def __str__(self) -> str:
        """`1 CPU, 1 GPU`: for log lines."""
        return f"{self.num_cpus:g} CPU, {self.num_gpus:g} GPU"


class _Slot:
    """One actor of the pool, the kind of actor it asks for, and the calls outstanding on it."""

    def __init__(self, kind: ActorKind, actor: Any) -> None:
        self.kind = kind  # a replacement actor asks for the same
        self.running_retry = False  # a retried item runs alone, so a loss names its culprit
        self.use(actor)

    def use(self, actor: Any) -> None:
        """Take a new actor, not `started` until Ray says it is (see `map`'s dispatch)."""
        self.actor = actor
        self.ready = actor.__ray_ready__.remote()  # resolves when the actor has started
        self.started = False
        self.item_kinds_done: set[Hashable] = set()  # kinds of item it has finished (compiled)
        self.clear()

    def clear(self) -> None:
        """Forget the calls outstanding on the actor."""
        # in submission order, which is the order a (one-threaded) actor runs them in: the
        # first is running, since `running_since` (None: nothing is running)
        self.queue: collections.deque[ray.ObjectRef] = collections.deque()
        self.running_since: float | None = None

    @property
    def in_flight(self) -> int:
        """Calls submitted to the actor and not yet collected."""
        return len(self.queue)


class EvaluatorPool:
    """A fixed set of evaluator actors (see `ActorKind.plan`); `map` spreads items over them.

    `item_kind(item)`: items of one kind are alike in cost, so each item's deadline comes
    from the measured time of its kind (`Deadlines`, kept over the pool's life). Counters
    (`retries`, `actor_restarts`, `completed`, `failed`, `timeouts`) accumulate likewise.
    """

    def __init__(self, factory: Callable[[], Callable[[Any], Any]], config: PoolConfig,
                 item_kind: Callable[[Any], Hashable] = type) -> None:
        self.config = config
        self.item_kind = item_kind
        self.deadlines = Deadlines(config.deadline)
        self.retries = 0
        self.actor_restarts = 0
        self.completed = 0
        self.failed = 0
        self.timeouts = 0  # items abandoned at their deadline (counted in `failed` too)
        self._factory_ref = ray.put(factory)
        kinds = ActorKind.plan(config)
        if not kinds:
            raise ValueError(f"a pool needs an actor, got num_actors={config.num_actors}")
        self._slots = [_Slot(kind, self._new_actor(kind)) for kind in kinds]

    @property
    def actors(self) -> list[Any]:
        """Handles of the current actors (for device checks and fault-injection tests)."""
        return [slot.actor for slot in self._slots]

    @property
    def in_flight(self) -> int:
        """Calls submitted and not yet collected, over all actors."""
        return sum(slot.in_flight for slot in self._slots)

    @property
    def kinds(self) -> list[ActorKind]:
        """What each actor asks for, in the order of `actors`."""
        return [slot.kind for slot in self._slots]

    def _new_actor(self, kind: ActorKind) -> Any:
        # ACTOR_ENV_VARS repeated here, not only in start_ray, for a Ray that someone else
        # initialised.
        env_vars = {**ACTOR_ENV_VARS, **(CPU_ACTOR_ENV_VARS if kind.num_gpus == 0 else {})}
        return EvaluatorActor.options(
            num_cpus=kind.num_cpus, num_gpus=kind.num_gpus,
            runtime_env={"env_vars": env_vars},
        ).remote(self._factory_ref)

    def map(self, items: Sequence[Any],
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Evaluate every item; results in input order, a `Failed` for items that could not be.

        `on_result(index, result)` is called once per item as its result arrives.
        """
        try:
            with stop.through_ray():  # SIGTERM while it waits: Terminated, not Ray's exit(1)
                return _Dispatch(self, items, on_result).run()
        finally:  # calls abandoned by an exception (e.g. KeyboardInterrupt) are not waited for
            for slot in self._slots:
                slot.clear()
                slot.running_retry = False

    def shutdown(self) -> None:
        """Kill the actors; the pool cannot be used afterwards."""
        for slot in self._slots:
            ray.kill(slot.actor, no_restart=True)
        self._slots = []


class _Dispatch:
    """One `EvaluatorPool.map`: keeps calls in flight, retries lost items, replaces lost actors,
    abandons items at their deadline.

    Updates the pool's counters (`retries`, `actor_restarts`, `completed`, `failed`,
    `timeouts`) and its measured item times (`deadlines`).
    """

    def __init__(self, pool: EvaluatorPool, items: Sequence[Any],
                 on_result: Callable[[int, Any], None] | None) -> None:
        self.pool = pool
        self.items = items
        self.on_result = on_result
        self.results: list[Any] = [None] * len(items)
        self.attempts = [0] * len(items)
        self.fresh = collections.deque(range(len(items)))
        self.to_retry: collections.deque[int] = collections.deque()
        self.outstanding: dict[ray.ObjectRef, tuple[_Slot, int]] = {}
        self.item_kinds: dict[int, Hashable] = {}  # index -> its kind, once submitted
        self.remaining = len(items)

    def run(self) -> list[Any]:
        """Wait for results and actor starts, one at a time, until every item has a result;
        after each wait, abandon the items past their deadline."""
        slots = self.pool._slots
        quiet_since = time.monotonic()  # the last result or actor start
        while self.remaining:
            self.dispatch()
            starting = {slot.ready: slot for slot in slots if not slot.started}
            ready, _ = ray.wait(list(self.outstanding) + list(starting), num_returns=1,
                                timeout=self.wait_s(quiet_since))
            if ready:
                quiet_since = time.monotonic()
                if ready[0] in starting:
                    self.started(starting[ready[0]])
                else:
                    self.collect(ready[0])
            elif time.monotonic() - quiet_since >= STALL_WARNING_S:
                unstarted = [s for s in slots if not s.started]
                if unstarted:  # long items on started actors are work, not a stall
                    logger.warning(
                        "no result for %d s with %d calls outstanding and %d actors not "
                        "started; check the cluster has room for each (%s)", STALL_WARNING_S,
                        len(self.outstanding), len(unstarted),
                        "; ".join(sorted({str(s.kind) for s in unstarted})))
                quiet_since = time.monotonic()
            self.expire()
        return self.results

    def deadline(self, slot: _Slot) -> tuple[float, str]:
        """The deadline of the item running on `slot` (seconds, and in words)."""
        kind = self.item_kinds[self.outstanding[slot.queue[0]][1]]
        return self.pool.deadlines.deadline(kind, first=kind not in slot.item_kinds_done)

    def wait_s(self, quiet_since: float) -> float:
        """How long the next wait may last: until the nearest deadline or stall warning."""
        now = time.monotonic()
        limits = [quiet_since + STALL_WARNING_S - now]
        limits += [slot.running_since + self.deadline(slot)[0] - now
                   for slot in self.pool._slots if slot.running_since is not None]
        return max(min(limits), 0.0)

    def expire(self) -> None:
        """Abandon each item running past its deadline."""
        now = time.monotonic()
        for slot in self.pool._slots:
            if slot.running_since is not None:
                seconds, why = self.deadline(slot)
                if now - slot.running_since >= seconds:
                    self.time_out(slot, why)

    def time_out(self, slot: _Slot, why: str) -> None:
        """The slot's running item is a `TimedOut` result; the items queued behind it go back
        to be dispatched afresh, and the actor is replaced."""
        running, *queued = slot.queue
        index = self.outstanding.pop(running)[1]
        for ref in reversed(queued):
            self.fresh.appendleft(self.outstanding.pop(ref)[1])
        logger.warning("an item ran past its deadline (%s); replacing its actor", why)
        self.renew(slot)
        self.pool.timeouts += 1
        self.record(index, TimedOut(f"no result within {why}; its actor was replaced"))

    def dispatch(self) -> None:
        """Hand out retries and fresh items to actors with room.

        Work goes to actors that have started; a pool none of whose actors has started yet
        queues it on all. A replacement actor thus waits for room in the cluster without
        holding items that the other actors could run. Retries go one at a time to idle
        actors; while some wait, the least busy actors take no fresh work so that they drain.
        """
        slots = self.pool._slots
        cold = not any(slot.started for slot in slots)
        usable = [slot for slot in slots if slot.started or cold]
        for slot in usable:
            if self.to_retry and slot.in_flight == 0:
                slot.running_retry = True
                self.submit(slot, self.to_retry.popleft())
        by_load = sorted((s for s in usable if not s.running_retry), key=lambda s: s.in_flight)
        for slot in by_load[len(self.to_retry):]:
            while self.fresh and slot.in_flight < self.pool.config.max_in_flight_per_actor:
                self.submit(slot, self.fresh.popleft())

    def submit(self, slot: _Slot, index: int) -> None:
        """Start one call of item `index` on the slot's actor."""
        ref = slot.actor.evaluate.remote(self.items[index])
        self.outstanding[ref] = (slot, index)
        if index not in self.item_kinds:
            self.item_kinds[index] = self.pool.item_kind(self.items[index])
        if slot.started and not slot.queue:
            slot.running_since = time.monotonic()
        slot.queue.append(ref)

    def started(self, slot: _Slot) -> None:
        """The slot's actor has started, or could not (then it is replaced)."""
        try:
            ray.get(slot.ready)
        except LOST_WORKER_ERRORS as error:
            self.replace(slot, error)
            return
        slot.started = True
        if slot.queue:
            slot.running_since = time.monotonic()

    def collect(self, ref: ray.ObjectRef) -> None:
        """Record a finished call's result, or put its items back if its actor was lost."""
        slot, index = self.outstanding[ref]
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as error:  # raised by the evaluator itself
            result = Failed(_item_error(error))
        except LOST_WORKER_ERRORS as error:
            self.replace(slot, error)
            return
        del self.outstanding[ref]
        self.finished(slot, ref, index)
        slot.running_retry = False
        self.record(index, result)

    def finished(self, slot: _Slot, ref: ray.ObjectRef, index: int) -> None:
        """The call `ref` of item `index` returned: its time is measured, the next starts."""
        now = time.monotonic()
        if slot.queue[0] == ref and slot.running_since is not None:
            kind = self.item_kinds[index]
            self.pool.deadlines.observe(kind, now - slot.running_since)
            slot.item_kinds_done.add(kind)
        slot.queue.remove(ref)
        slot.running_since = now if slot.queue else None

    def record(self, index: int, result: Any) -> None:
        """Store an item's final result and count it."""
        self.results[index] = result
        self.remaining -= 1
        if isinstance(result, Failed):
            self.pool.failed += 1
        else:
            self.pool.completed += 1
        if self.on_result is not None:
            self.on_result(index, result)

    def replace(self, slot: _Slot, error: Exception) -> None:
        """Put the lost actor's items back (or fail them after max_retries); start a new one.

        An actor whose factory raised is not replaced: every replacement would fail alike.
        """
        if isinstance(error, ray.exceptions.RayActorError) and error.actor_init_failed:
            raise RuntimeError(f"the evaluator factory failed: {error}") from error
        lost = [ref for ref, (owner, _) in self.outstanding.items() if owner is slot]
        logger.warning("actor lost with %d items in flight (%s); starting a replacement",
                       len(lost), _one_line(error))
        for ref in lost:
            _, index = self.outstanding.pop(ref)
            self.attempts[index] += 1
            if self.attempts[index] > self.pool.config.max_retries:
                self.record(index, Failed(f"lost with its actor {self.attempts[index]} times, "
                                          f"last: {_one_line(error)}"))
            else:
                self.pool.retries += 1
                self.to_retry.append(index)
        self.renew(slot)

    def renew(self, slot: _Slot) -> None:
        """Kill the slot's actor and start a new one of the same kind in its place."""
        ray.kill(slot.actor, no_restart=True)
        slot.use(self.pool._new_actor(slot.kind))
        slot.running_retry = False
        self.pool.actor_restarts += 1


def _one_line(error: BaseException) -> str:
    """`Type: message`, cut to the message's first line (an error of Ray's: no user's code
    to name)."""
    return reasons.one_line(error, frames=())


def _item_error(error: ray.exceptions.RayTaskError) -> str:
    """The one-line reason of an error a work item raised on an actor: its cause, after
    where in the user's code it was raised (cluster/reasons.py); with DISCO_DEBUG, the
    actor's traceback is written to stderr too."""
    remote = str(error)  # the actor's traceback, as Ray formats it
    if os.environ.get("DISCO_DEBUG"):
        print(f"disco: a work item failed on an actor:\n{remote}", file=sys.stderr)
    return reasons.one_line(error.cause, reasons.frames_in(remote))
