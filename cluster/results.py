"""What a pool returns for an item it could not evaluate, and its results taken as they
arrive; importable without Ray."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Failed:
    """The result of an item that could not be evaluated, with a one-line reason."""

    reason: str


@dataclass(frozen=True)
class TimedOut(Failed):
    """An item abandoned at its deadline (its actor killed and replaced); the reason names
    the deadline."""


def calls_back(pool: Any) -> bool:
    """Whether `pool.map` takes `on_result` (results as they arrive), or returns a batch."""
    return "on_result" in inspect.signature(pool.map).parameters


def map_calling(pool: Any, items: Sequence[Any],
                on_result: Callable[[int, Any], None]) -> list[Any]:
    """`pool.map(items)`, calling `on_result(index, result)` as each result arrives where the
    pool's map takes it (an exception there stops the map), else as the whole batch returns."""
    if calls_back(pool):
        return pool.map(items, on_result=on_result)
    results = pool.map(items)
    for index, result in enumerate(results):
        on_result(index, result)
    return results
