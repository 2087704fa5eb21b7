"""The registry of level schedulers: what a config's `scheduler.kind` names.

A scheduler kind says how its scheduler is made from a `SchedulerConfig`; "none" makes none
(the run trains on its fixed tasks only). Adding one is one `register` call. This module
imports nothing heavy: configs read it before JAX is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from disco_rules.discovery.registry import Registry

if TYPE_CHECKING:
    from disco_rules.discovery.scheduler import RegretScheduler, SchedulerConfig


@dataclass(frozen=True)
class SchedulerKind:
    """One scheduler kind: `make(config)` its scheduler (its module is imported then), None
    for a kind that draws no levels."""

    name: str
    make: Callable[["SchedulerConfig"], "RegretScheduler"] | None

    @property
    def draws_levels(self) -> bool:
        """Whether a run with this kind trains on levels besides its fixed tasks."""
        return self.make is not None


SCHEDULERS: Registry[SchedulerKind] = Registry("scheduler")
"""name -> scheduler kind; add one with `register`."""


def register(kind: SchedulerKind) -> SchedulerKind:
    """Add `kind` to the registry; ValueError if its name is taken."""
    return SCHEDULERS.register(kind)


def scheduler_kind(name: str) -> SchedulerKind:
    """The registered kind `name`; ValueError lists the valid names."""
    return SCHEDULERS.get(name)


def _regret(config: "SchedulerConfig") -> "RegretScheduler":
    from disco_rules.discovery.scheduler import RegretScheduler

    return RegretScheduler(config)


def _uniform(config: "SchedulerConfig") -> "RegretScheduler":
    from disco_rules.discovery.scheduler import UniformScheduler

    return UniformScheduler(config)


register(SchedulerKind("none", None))
register(SchedulerKind("regret", _regret))
register(SchedulerKind("uniform", _uniform))
