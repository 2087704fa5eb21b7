"""Deadlines on work: how long one item may run before it is abandoned, and a call with one.

An item's deadline comes from the measured time of comparable items (`Deadlines`): a generous
multiple of the slowest that finished. The first item of a kind on an actor compiles (JAX), so
it gets at least `first_s`, a floor that covers compilation on a loaded machine; a fixed
deadline (`[cluster] deadline_s`) replaces the rule. Imports nothing heavy (no Ray).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")


class DeadlineExceeded(TimeoutError):
    """A call did not return within its deadline (`call_within`)."""


@dataclass(frozen=True)
class DeadlineRule:
    """The seconds an item may run: `fixed_s` if set; else `multiple` x the slowest finished
    item of its kind, at least `min_s`; for the first item of a kind on an actor, at least
    `first_s` and `multiple` x the slowest finished item of any kind."""

    fixed_s: float | None = None
    multiple: float = 10.0
    min_s: float = 60.0
    first_s: float = 600.0


class Deadlines:
    """The slowest finished item of each kind, and the deadline that sets for the next."""

    def __init__(self, rule: DeadlineRule) -> None:
        self.rule = rule
        self.slowest: dict[Hashable, float] = {}

    def observe(self, kind: Hashable, seconds: float) -> None:
        """An item of `kind` finished after `seconds`."""
        self.slowest[kind] = max(seconds, self.slowest.get(kind, 0.0))

    def deadline(self, kind: Hashable, first: bool) -> tuple[float, str]:
        """Seconds an item of `kind` may run (`first`: the first of its kind on its actor),
        and the rule that set them, in words."""
        rule = self.rule
        if rule.fixed_s is not None:
            return rule.fixed_s, f"{rule.fixed_s:g} s, the configured deadline"
        if first or kind not in self.slowest:
            slowest = max(self.slowest.values(), default=0.0)
            seconds = max(rule.first_s, rule.multiple * slowest)
            return seconds, (f"{seconds:.0f} s, the deadline of an actor's first item of a "
                             "kind (which compiles)")
        seconds = max(rule.min_s, rule.multiple * self.slowest[kind])
        return seconds, (f"{seconds:.0f} s, {rule.multiple:g} x the slowest finished item "
                         f"like it ({self.slowest[kind]:.1f} s), at least {rule.min_s:g} s")


def call_within(seconds: float, function: Callable[..., T], *args: Any,
                what: str = "the call") -> T:
    """`function(*args)`, run in a daemon thread; DeadlineExceeded, a sentence about `what`,
    if it has not returned after `seconds` (the thread is then abandoned: Python cannot stop
    it)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, function(*args)))
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome.append((False, error))

    thread = threading.Thread(target=run, daemon=True, name="disco-call-within")
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise DeadlineExceeded(f"{what} did not finish within {seconds:g} s ([cluster] "
                               "deadline_s sets the deadline)")
    returned, value = outcome[0]
    if not returned:
        raise value
    return value
