"""Config variants for tests: the TOML text parsed, keys set by dotted name, written back,
so that a variant either takes effect or fails (a missing table is a KeyError)."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any, Mapping

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def config_variant(text: str, changes: Mapping[str, Any]) -> str:
    """`text` with each dotted key of `changes` set, e.g. {"population.size": 8}; a key may be
    new, but every table above it must exist already (KeyError naming the first that does not)."""
    config = tomllib.loads(text)
    for dotted, value in changes.items():
        *tables, key = dotted.split(".")
        table = config
        for depth, name in enumerate(tables):
            if not isinstance(table.get(name), dict):
                raise KeyError(f"no table [{'.'.join(tables[:depth + 1])}] to set {dotted} in")
            table = table[name]
        table[key] = value
    return "\n".join(_lines(config, ())) + "\n"


def _lines(table: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    """TOML lines of `table`: its values first, then each sub-table under its header."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for name, sub in table.items():
        if isinstance(sub, dict):
            header = ".".join(_key(part) for part in (*path, name))
            lines += ["", f"[{header}]", *_lines(sub, (*path, name))]
    return lines


def _key(key: str) -> str:
    """A TOML key: bare where it can be, else quoted."""
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _value(value: Any) -> str:
    """A TOML literal of a config value (booleans, numbers, strings, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # also nan, inf and -inf, as TOML spells them
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")
