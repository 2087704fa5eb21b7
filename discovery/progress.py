"""Progress of the phases that take more than a moment: starting Ray, baselines, each
generation's work items, scoring, distillation.

A phase is shown on stdout with the rest of a command's output (stderr holds only errors
and warnings, one line each). On a terminal it is one line, redrawn in place (counts, a bar, elapsed and
estimated time left) and erased when the phase ends. Elsewhere (a log file, a pipe) it is
plain lines: one when the phase has run for `quiet_s`, one every `every_s` while it runs, and
one when it ends. Phases quicker than `quiet_s` show nothing in either mode, unless
started `at_once` (a phase known to be long, such as Ray's start). Written by hand
rather than with tqdm or rich: the plain-line mode is what a cluster job's log needs, and
both modes are a few lines.
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
from typing import Any, Callable, Sequence, TextIO

BAR_WIDTH = 20


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Phase:
    """One phase: `advance()` as each of `total` parts completes (total None: no count)."""

    def __init__(self, progress: Progress, label: str, total: int | None,
                 quiet_s: float) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.quiet_s = quiet_s
        self.done = 0
        self.started = progress.clock()
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
        if 0 < self.done < self.total:
            left = f", ~{_duration(elapsed / self.done * (self.total - self.done))} left"
        return (f"{self.label}: {self.done}/{self.total} [{bar}] {_duration(elapsed)}"
                f"{left}")

    def advance(self, parts: int = 1) -> None:
        """Count `parts` more completed parts, and show them where a line is due."""
        with self._lock:
            self.done += parts
            self._show(periodic=False)

    def _tick(self) -> None:
        while not self._stop.wait(self.progress.tick_s):
            with self._lock:
                self._show(periodic=True)

    def _show(self, periodic: bool) -> None:
        now = self.progress.clock()
        if now - self.started < self.quiet_s:
            return
        if self.progress.live:
            self.progress.draw(self.text(now))
        elif not self.shown or now - self.last_line >= self.progress.every_s:
            self.progress.write_line(self.text(now))
        else:
            return
        self.shown, self.last_line = True, now

    def close(self) -> None:
        """End the phase: erase its line on a terminal; a last plain line if any was shown."""
        self._stop.set()
        self._ticker.join()
        with self._lock:
            if self.shown and self.progress.live:
                self.progress.draw("")
            elif self.shown:
                self.progress.write_line(
                    f"{self.label}: done{self._count()} in "
                    f"{_duration(self.progress.clock() - self.started)}")

    def _count(self) -> str:
        return f", {self.done}/{self.total}" if self.total is not None else ""

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Progress:
    """Where and how phases are shown; `live` defaults to whether `stream` is a terminal."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None,
                 quiet_s: float = 2.0, every_s: float = 15.0, tick_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.quiet_s, self.every_s, self.tick_s = quiet_s, every_s, tick_s
        self.clock = clock
        self._width = 0

    def phase(self, label: str, total: int | None = None, at_once: bool = False) -> Phase:
        """A phase that shows itself once it has lasted `quiet_s` (`at_once`: from its start,
        for a phase known to be long); use it with `with`."""
        phase = Phase(self, label, total, 0.0 if at_once else self.quiet_s)
        if at_once:
            with phase._lock:
                phase._show(periodic=False)
        return phase

    def draw(self, text: str) -> None:
        """Replace the terminal's current progress line with `text` ("" erases it)."""
        self.stream.write("\r" + text.ljust(self._width) + ("\r" if not text else ""))
        self._width = len(text)
        self.stream.flush()

    def write_line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


# What a pool's work items are, by type name, for the label of a map.
ITEM_NAMES = {"BaselineItem": "baselines", "RLBaselineItem": "baselines",
              "ProgramsItem": "training", "NetworksItem": "training"}


def describe(items: Sequence[Any]) -> str:
    """What a batch of work items is: 'baselines', 'training', or both."""
    names = dict.fromkeys(ITEM_NAMES.get(type(item).__name__, "work items") for item in items)
    return " and ".join(names) or "work items"


class ProgressPool:
    """A pool whose `map` shows its progress: items done of the batch, time left. Everything
    else is the wrapped pool's. `context` (e.g. "generation 3") prefixes the label."""

    def __init__(self, pool: Any, progress: Progress, context: str = "") -> None:
        self.pool = pool
        self.progress = progress
        self.context = context
        self._takes_callback = "on_result" in inspect.signature(pool.map).parameters

    def map(self, items: Sequence[Any],
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        """The wrapped pool's results, counted as they arrive."""
        label = f"{self.context}: {describe(items)}" if self.context else describe(items)
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
