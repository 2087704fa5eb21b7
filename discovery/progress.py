"""Progress of the phases that take more than a moment: starting Ray, baselines, each
generation's work items (screening, training, validation), scoring, distillation.

A phase is shown on stdout with the rest of a command's output (stderr holds only errors
and warnings, one line each). Where a line can be redrawn (a terminal, a Jupyter notebook)
it is one line, redrawn in place (counts, a bar, elapsed and estimated time left) once the
phase has lasted `quiet_s`, and erased when the phase ends. Elsewhere (a log file, a pipe) it
is plain lines: one every `every_s` while the phase runs, and one when a phase that showed a
line ends; so a phase quicker than `every_s` shows nothing there, and no phase shows twice
what a generation's own line says. A phase started `at_once` (one known to be long, such as
Ray's start) shows from its start in either mode. Written by hand rather than with tqdm or
rich: the plain-line mode is what a cluster job's log needs, and both modes are a few lines.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Mapping, Sequence, TextIO

from disco_rules.cluster.results import calls_back

if TYPE_CHECKING:
    from disco_rules.discovery.plan import TaskPlan
    from disco_rules.discovery.search.engine import GenerationReport

BAR_WIDTH = 20


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def interactive(stream: TextIO) -> bool:
    """Whether `stream` shows a redrawn line: a terminal, or a Jupyter notebook's output."""
    return stream.isatty() or type(stream).__module__.startswith("ipykernel")


class Phase:
    """One phase: `advance()` as each of `total` parts completes (total None: no count);
    its first line is due `first_s` after its start."""

    def __init__(self, progress: Progress, label: str, total: int | None,
                 first_s: float) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.first_s = first_s
        self.done = 0
        self.cached = 0  # parts that had nothing to do (`advance(cached=True)`), and their time
        self.cached_s = 0.0
        self.doing = ""  # what the phase works on now, where one part is long (`working_on`)
        self.started = progress.clock()
        self.last_part = self.started  # when the last part completed
        self.shown = False  # a line of this phase has been written
        self.last_line = self.started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def text(self, now: float) -> str:
        """The phase's status line at time `now`."""
        elapsed = now - self.started
        if self.total is None:
            return f"{self.label}... {_duration(elapsed)}"
        filled = BAR_WIDTH * min(self.done, self.total) // max(self.total, 1)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        left = ""
        if self.cached < self.done < self.total:  # the pace of the parts that did work
            pace = (elapsed - self.cached_s) / (self.done - self.cached)
            left = f", ~{_duration(pace * (self.total - self.done))} left"
        doing = f"; now {self.doing}" if self.doing else ""
        return (f"{self.label}: {self.done}/{self.total} [{bar}] {_duration(elapsed)}"
                f"{left}{doing}")

    def advance(self, parts: int = 1, cached: bool = False) -> None:
        """Count `parts` more completed parts, and show them where a line is due; `cached`
        parts had nothing to do (results kept from before) and do not set the pace."""
        with self._lock:
            now = self.progress.clock()
            if cached:
                self.cached += parts
                self.cached_s += now - self.last_part
            self.last_part = now
            self.done += parts
            self._show()

    def working_on(self, doing: str) -> None:
        """Name the part under way in the phase's later lines (parts that take minutes)."""
        with self._lock:
            self.doing = doing

    def _tick(self) -> None:
        while not self._stop.wait(self.progress.tick_s):
            with self._lock:
                self._show()

    def _show(self) -> None:
        now = self.progress.clock()
        if now - self.started < self.first_s:
            return
        if self.progress.live:
            self.progress.draw(self.text(now))
        elif not self.shown or now - self.last_line >= self.progress.every_s:
            self.progress.write_line(self.text(now))
        else:
            return
        self.shown, self.last_line = True, now

    def close(self, stopped: bool = False) -> None:
        """End the phase: erase its line where it is redrawn; a last plain line if any was
        shown, "done" or, if an exception ended it (`stopped`), "stopped"."""
        self._stop.set()
        self._ticker.join()
        with self._lock:
            if self.shown and self.progress.live:
                self.progress.draw("")
            elif self.shown:
                elapsed = _duration(self.progress.clock() - self.started)
                self.progress.write_line(f"{self.label}: stopped{self._count()} after {elapsed}"
                                         if stopped else
                                         f"{self.label}: done{self._count()} in {elapsed}")

    def _count(self) -> str:
        return f", {self.done}/{self.total}" if self.total is not None else ""

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(stopped=exc_type is not None)


class Progress:
    """Where and how phases are shown; `live` (a redrawn line) defaults to whether `stream`
    is a terminal or a notebook's output."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None,
                 quiet_s: float = 2.0, every_s: float = 15.0, tick_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.live = interactive(self.stream) if live is None else live
        self.quiet_s, self.every_s, self.tick_s = quiet_s, every_s, tick_s
        self.clock = clock
        self._width = 0

    def phase(self, label: str, total: int | None = None, at_once: bool = False) -> Phase:
        """A phase that shows itself once it has lasted `quiet_s` (redrawn) or `every_s`
        (plain lines), or from its start with `at_once` (a phase known to be long); use it
        with `with`."""
        first_s = 0.0 if at_once else self.quiet_s if self.live else self.every_s
        phase = Phase(self, label, total, first_s)
        if at_once:
            with phase._lock:
                phase._show()
        return phase

    def draw(self, text: str) -> None:
        """Replace the current progress line with `text` ("" erases it)."""
        self.stream.write("\r" + text.ljust(self._width) + ("\r" if not text else ""))
        self._width = len(text)
        self.stream.flush()

    def write_line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


# What a pool's work items are, by type name, for the label of a map; other items are
# named by the role of their task (`task_roles`).
ITEM_NAMES = {"BaselineItem": "baselines", "RLBaselineItem": "baselines"}


def task_roles(plan: TaskPlan) -> dict[str, str]:
    """What work on each of a search's tasks is, by task key: "training", "validation"
    (held-out tasks) or "screening" (the screen task, unless it also trains)."""
    roles = {task.key: "screening" for task in ([plan.screen] if plan.screen else [])}
    roles.update((task.key, "validation") for task in plan.heldout)
    roles.update((task.key, "training") for task in plan.train)
    return roles


def describe(items: Sequence[Any], roles: Mapping[str, str] | None = None) -> str:
    """What a batch of work items is and how many tasks it covers, e.g. 'baselines on 5
    tasks', 'screening on 1 task'; a task missing from `roles` is trained on (a level)."""
    names: dict[str, None] = {}
    tasks: dict[str, None] = {}
    for item in items:
        task = getattr(item, "task", None)
        if task is None:
            names["work items"] = None
            continue
        tasks[task.key] = None
        name = ITEM_NAMES.get(type(item).__name__) or (roles or {}).get(task.key, "training")
        names[name] = None
    what = " and ".join(names) or "work items"
    count = len(tasks)
    return f"{what} on {count} task{'' if count == 1 else 's'}" if count else what


class ProgressPool:
    """A pool whose `map` shows its progress: items done of the batch, time left. Everything
    else is the wrapped pool's. `context` (e.g. "generation 3") prefixes the label; `roles`
    (`task_roles`) names each batch by its tasks."""

    def __init__(self, pool: Any, progress: Progress, context: str = "",
                 roles: Mapping[str, str] | None = None) -> None:
        self.pool = pool
        self.progress = progress
        self.context = context
        self.roles = roles
        self._takes_callback = calls_back(pool)

    def map(self, items: Sequence[Any],
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        """The wrapped pool's results, counted as they arrive."""
        what = describe(items, self.roles)
        label = f"{self.context}: {what}" if self.context else what
        with self.progress.phase(label, len(items)) as phase:
            if not self._takes_callback:  # counted when the whole batch returns
                results = self.pool.map(items)
                phase.advance(len(items))
                for index, result in enumerate(results if on_result is not None else ()):
                    on_result(index, result)
                return results

            def counted(index: int, result: Any) -> None:
                phase.advance()
                if on_result is not None:
                    on_result(index, result)

            return self.pool.map(items, on_result=counted)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


def _fitness(value: float) -> str:
    return "-inf" if value == -math.inf else ("nan" if math.isnan(value) else f"{value:+.3f}")


def report_lines(report: GenerationReport) -> list[str]:
    """What a generation did, as `disco launch` prints it: candidates, evaluations, rate,
    best and median fitness, then any meta-validation scores and levels' regrets."""
    rate = report.evaluated / report.seconds if report.seconds > 0 else 0.0
    lines = [f"gen {report.generation:3d} | {report.candidates:3d} candidates, "
             f"{report.evaluated:3d} evaluated, {report.cache_hits:3d} cached | "
             f"{rate:6.1f} eval/s | best {_fitness(report.best)} "
             f"median {_fitness(report.median)} | screened {report.screened} "
             f"failed {report.failed}"]
    if report.validated:
        scores = ", ".join(f"#{cid} {_fitness(score)}" for cid, score in report.validated)
        lines.append(f"        meta-validation on held-out tasks: {scores}")
    if report.regret:
        regrets = ", ".join(f"{family} {_fitness(value)}" for family, value in report.regret)
        lines.append(f"        regret of the generation's levels: {regrets}")
    return lines


def for_api(progress: bool | None) -> Progress | None:
    """The Python API's display on stdout: on (`progress` True), off (False or None), or,
    with None, on where its line can be redrawn (a terminal, a notebook)."""
    if progress is None:
        progress = interactive(sys.stdout)
    return Progress() if progress else None


def long_phase(progress: Progress | None, label: str) -> ContextManager[Any]:
    """A phase known to be long, shown from its start (`Progress.phase` with `at_once`), or
    nothing where `progress` is None (off)."""
    return contextlib.nullcontext() if progress is None else progress.phase(label, at_once=True)


def follow_generations(pool: ProgressPool, on_generation: Callable[[GenerationReport], None]
                       | None = None) -> Callable[[GenerationReport], None]:
    """An `on_generation` that prints the generation's `report_lines`, names the next
    generation's work in `pool`'s labels, then calls `on_generation`."""
    def shown(report: GenerationReport) -> None:
        for line in report_lines(report):
            pool.progress.write_line(line)
        pool.context = f"generation {report.generation + 1}"
        if on_generation is not None:
            on_generation(report)

    return shown
