"""One registry type for everything a config or a command names by a string: task families,
task kinds, population kinds, schedulers, export formats and environments.

A registry maps each item's `name` to the item, in the order they were registered. Adding a
kind of anything is one `register` call, from any module (the package's or a user's), and an
unknown name is the same one-line error everywhere: it lists the names that are known.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, Iterator, Protocol, TypeVar


class Named(Protocol):
    """Anything with a `name` (a frozen dataclass field, usually)."""

    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Items by name; iterating and `in` see the names, as a dict's keys are seen."""

    def __init__(self, what: str, plural: str | None = None) -> None:
        self.what = what  # what an item is, for errors: "task family"
        self.plural = plural or f"{what}s"
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        """Add `item` under its name and return it; ValueError if the name is taken."""
        if item.name in self._items:
            raise ValueError(f"{self.what} {item.name!r} is already registered")
        self._items[item.name] = item
        return item

    def remove(self, name: str) -> T:
        """Take `name` out and return its item (a user's family that failed its check, a
        test's toy entry); ValueError if it is unknown."""
        item = self.get(name)
        del self._items[name]
        return item

    def get(self, name: str) -> T:
        """The item registered as `name`; ValueError (`unknown`) if there is none."""
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a config
            raise ValueError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The error for a name that is not registered: `unknown <what> 'x'; valid <whats>:
        a, b, c`."""
        return f"unknown {self.what} {name!r}; valid {self.plural}: {', '.join(self._items)}"

    def names(self) -> tuple[str, ...]:
        """The registered names, in the order they were registered."""
        return tuple(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._items))

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._items
        except TypeError:
            return False

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._items)})"


def later(module: str, name: str) -> Callable[..., Any]:
    """`disco_rules.<module>.<name>`, imported at its first call: a registry entry's behaviour
    that lives in a module importing JAX (registries are read before JAX is loaded)."""

    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(f"disco_rules.{module}"), name)(*args)

    return call
