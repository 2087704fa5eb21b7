"""Task families from the user's own modules: `family = "my_tasks:my_family"` in a config.

`my_tasks` is a module in a folder added with `add_search_path` (the config's folder), in
the current folder, or on the Python path; `my_family` a `Family` in it, written against the same interface as the
shipped families (`ranges`, `defaults`, `build(task) -> Problem`, `kind`). A plug-in family
is registered under its full `module:name`, checked once (`check`), and its module file is
shipped to Ray actors (`module_files`, for the runtime environment's py_modules). A run
records the folders its modules were found in (`found_in`), to look there again on resume.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import sys
import tomllib
from pathlib import Path
from types import ModuleType

from disco_rules.cluster.reasons import one_line
from disco_rules.discovery.tasks.family import Family, Problem, Task
from disco_rules.discovery.tasks.kinds import task_kind

_SEARCH_PATH: list[Path] = []  # folders searched before the Python path
_MODULES: dict[str, ModuleType] = {}  # plug-in modules loaded, by name
_FOUND_IN: dict[str, Path] = {}  # the folder each module loaded by file was found in


def is_plugin(name: str) -> bool:
    """Whether a family name refers to a user module (`module:attribute`)."""
    return ":" in name


def add_search_path(folder: str | Path) -> None:
    """Look for plug-in modules in `folder` first (a config's folder)."""
    folder = Path(folder).resolve()
    if folder not in _SEARCH_PATH:
        _SEARCH_PATH.insert(0, folder)


def _find(module_name: str) -> tuple[Path, Path] | None:
    """(folder, file) that `module_name` is loaded from by file: a module or package in a
    search folder or the current folder; None for one found on the Python path instead."""
    if not module_name.isidentifier():  # a dotted name, or no module name at all
        return None
    for folder in [*_SEARCH_PATH, Path.cwd()]:
        for file in (folder / f"{module_name}.py", folder / module_name / "__init__.py"):
            if file.is_file():
                return folder, file
    return None


def _import(module_name: str) -> ModuleType:
    if module_name in _MODULES:
        return _MODULES[module_name]
    found = _find(module_name)
    if found is not None:
        spec = importlib.util.spec_from_file_location(module_name, found[1])
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # so that its objects pickle by reference
        spec.loader.exec_module(module)
        _FOUND_IN[module_name] = found[0]
    else:
        module = importlib.import_module(module_name)
    _MODULES[module_name] = module
    return module


def load(name: str) -> Family:
    """The Family that `module:attribute` names, renamed to `name`; ValueError (one line)
    if the module is missing, has no such object, or it is not a Family."""
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"task family {name!r}: a plug-in family is 'module:name'")
    try:
        module = _import(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name.split(".")[0] and error.name != module_name:
            raise ValueError(f"task family {name!r}: its module failed to import: "
                             f"{error}") from None
        raise ValueError(f"task family {name!r}: no module named {module_name!r} next to the "
                         "config or on the Python path") from None
    except Exception as error:  # the user's module raised while importing
        raise ValueError(f"task family {name!r}: importing {module_name} failed: "
                         f"{one_line(error)}") from None
    except SystemExit as error:  # would end disco silently, with the module's exit code
        raise ValueError(f"task family {name!r}: importing {module_name} called "
                         f"sys.exit({error.code!r})") from None
    if not hasattr(module, attribute):
        raise ValueError(f"task family {name!r}: module {module_name} has no {attribute!r}")
    found = getattr(module, attribute)
    if not isinstance(found, Family):
        raise ValueError(f"task family {name!r}: {module_name}.{attribute} is a "
                         f"{type(found).__name__}, not a disco_rules Family")
    return dataclasses.replace(found, name=name)


def check(family: Family) -> None:
    """Build the family's default task and trace one step of it, so that a wrong signature or
    a non-scalar loss is a one-line ValueError now, not a failure on every actor."""
    where = f"task family {family.name!r}"
    try:
        builds = task_kind(family.kind).builds
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    try:
        inspect.signature(family.build).bind(None)
    except TypeError:
        raise ValueError(f"{where}: build must take one argument, the task") from None
    except ValueError:
        pass  # a builtin or C callable without a signature: the call below tells
    try:
        built = Task(family.name, ()).build()
    except Exception as error:
        raise ValueError(f"{where}: building its default task failed: "
                         f"{one_line(error)}") from None
    except SystemExit as error:
        raise ValueError(f"{where}: building its default task called "
                         f"sys.exit({error.code!r})") from None
    if not isinstance(built, builds):
        raise ValueError(f"{where}: build must return a {builds.__name__}, "
                         f"got {type(built).__name__}")
    if not isinstance(built, Problem):
        return
    import jax

    key = jax.random.PRNGKey(0)
    try:
        params = jax.eval_shape(built.init, key)
        data = jax.eval_shape(built.data, key)
        batch = jax.eval_shape(built.train_batch, key, data)
        losses = {"loss": jax.eval_shape(built.loss, params, batch),
                  "validation_loss": jax.eval_shape(built.validation_loss, params, data)}
    except Exception as error:
        raise ValueError(f"{where}: tracing init, data, train_batch and the losses failed: "
                         f"{one_line(error)}") from None
    for what, loss in losses.items():
        if getattr(loss, "shape", None) != ():
            raise ValueError(f"{where}: {what} must return a scalar, got shape "
                             f"{getattr(loss, 'shape', type(loss).__name__)}")
    if not isinstance(built.horizon, int) or built.horizon < 1:
        raise ValueError(f"{where}: the Problem's horizon must be a positive int")


def found_in(text: str) -> dict[str, str]:
    """The folder each plug-in module that config `text` names (`module:name` in any string)
    is loaded from by file, or would be now, by module name; modules on the Python path are
    found from any folder and left out."""
    named = {value.partition(":")[0] for value in _strings(tomllib.loads(text))
             if is_plugin(value)}
    folders = {}
    for name in sorted(named):
        if name in _MODULES:
            folder = _FOUND_IN.get(name)
        else:
            found = _find(name)
            folder = None if found is None else found[0]
        if folder is not None:
            folders[name] = str(folder)
    return folders


def _strings(value: object) -> list[str]:
    """Every string in parsed TOML."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [text for item in value for text in _strings(item)] if isinstance(value, list) else []


def module_files() -> list[str]:
    """The files of the plug-in modules loaded so far (shipped to Ray actors)."""
    files = []
    for module in _MODULES.values():
        file = getattr(module, "__file__", None)
        if file:
            path = Path(file)
            files.append(str(path.parent if path.name == "__init__.py" else path))
    return sorted(set(files))
