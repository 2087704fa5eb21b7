"""The test session compiles through JAX's persistent compilation cache, in the per-user folder
that `disco launch` uses (`DISCO_COMPILATION_CACHE` names another, or `off`), from its first
test: a second run of the suite loads what the first compiled instead of compiling it again.
Without this the cache came on halfway, at the first in-process `disco` command; no test's
property depends on it (tests that count compilations give their processes their own folder
or read the in-memory jit cache)."""

from disco_rules.discovery import compile_cache

_folder = compile_cache.default_dir()
compile_cache.enable(None if _folder is None else str(_folder))  # before any test imports JAX


def pytest_collection_modifyitems(items: list) -> None:
    """Files with slow tests first, the rest after (each file's tests stay together, in
    order): the many short files then fill in while the long ones finish, instead of two
    workers waiting on one long file at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
