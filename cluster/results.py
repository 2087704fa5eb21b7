"""What a pool returns for an item it could not evaluate; importable without Ray."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Failed:
    """The result of an item that could not be evaluated, with a one-line reason."""

    reason: str


@dataclass(frozen=True)
class TimedOut(Failed):
    """An item abandoned at its deadline (its actor killed and replaced); the reason names
    the deadline."""
