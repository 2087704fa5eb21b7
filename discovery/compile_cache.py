"""JAX's persistent compilation cache, shared by the driver and every evaluator actor.

A small run's cost is mostly compilation; with the cache a relaunch of the same config loads
every compiled function from disk instead. The folder is per user: `DISCO_COMPILATION_CACHE`
(a path, or `off`), else `$XDG_CACHE_HOME/disco_rules/jax`, else `~/.cache/disco_rules/jax`.
Importing this module does not import JAX.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

ENV_VAR = "DISCO_COMPILATION_CACHE"
OFF = ("", "0", "off", "false", "no")


def default_dir() -> Path | None:
    """The per-user cache folder, or None where `DISCO_COMPILATION_CACHE` turns it off."""
    override = os.environ.get(ENV_VAR)
    if override is not None:
        return None if override.strip().lower() in OFF else Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "disco_rules" / "jax"


def resolve(setting: bool | str) -> str | None:
    """The folder that `[cluster] compilation_cache` names (true: the per-user default;
    false: none; a string: that path), as an absolute path string, or None."""
    if setting is False:
        return None
    path = default_dir() if setting is True else Path(setting).expanduser()
    return None if path is None else str(path.resolve())


def settings(folder: str) -> dict[str, str]:
    """JAX's settings, as environment variables, that cache every compiled function in
    `folder`, however small or quick to compile."""
    return {"JAX_COMPILATION_CACHE_DIR": folder,
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


def enable(folder: str | None) -> bool:
    """Cache this process's compilations in `folder`, and those of processes it starts from
    now on (the settings go into the environment, which JAX reads when imported; an imported
    JAX is updated too). False, with a warning, where the folder cannot be created."""
    if folder is None:
        return False
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        warnings.warn(f"compilation cache off: cannot create {folder}: {error}", stacklevel=2)
        return False
    os.environ.update(settings(folder))
    if "jax" in sys.modules:
        import jax

        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return True


class CompileCount:
    """Compilations seen in this process since `start`: `loaded` came from the persistent
    cache, `compiled` were compiled by XLA (cache misses, or no cache)."""

    COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # every compile request
    HIT_EVENT = "/jax/compilation_cache/cache_hits"

    def __init__(self) -> None:
        self.requests = 0
        self.loaded = 0

    @property
    def compiled(self) -> int:
        """Compilations that XLA did (not loaded from the persistent cache)."""
        return self.requests - self.loaded

    def _on_duration(self, event: str, duration_secs: float, **kwargs: object) -> None:
        if event == self.COMPILE_EVENT:
            self.requests += 1

    def _on_event(self, event: str, **kwargs: object) -> None:
        if event == self.HIT_EVENT:
            self.loaded += 1

    def start(self) -> "CompileCount":
        """Listen to JAX's monitoring events from now on; returns self."""
        from jax import monitoring

        monitoring.register_event_duration_secs_listener(self._on_duration)
        monitoring.register_event_listener(self._on_event)
        return self
