"""The export formats, registered in one place: each name maps to the writer of a program (an
optimizer or drift program of the DSL) and, where the format has one, of a rule network.

`export(rule, fmt, name=...)` is the one entry point: the CLI's `disco export`, its `--format`
choices and help, and the Python API all go through the registry `FORMATS`. A new format is one
`FORMATS.register(ExportFormat(...))` call.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from disco_rules.discovery.registry import Registry
from disco_rules.dsl import export as program_export
from disco_rules.dsl.program import Program
from disco_rules.dsl.slots import Slot, slot_of
from disco_rules.populations.network_export import network_module

ProgramWriter = Callable[[Program, Slot, str], str]
"""(program, slot, name) -> module source."""
NetworkWriter = Callable[[Any, np.ndarray, str], str]
"""(network shape, flat weights, origin) -> module source."""
Rule = Union[Program, tuple[Any, np.ndarray]]
"""A program, or a rule network as (shape, flat weights)."""


@dataclass(frozen=True)
class ExportFormat:
    """A format: what it writes (`help`), and its writers; None where it has none."""

    name: str
    help: str
    program: ProgramWriter | None
    network: NetworkWriter | None = None


FORMATS: Registry[ExportFormat] = Registry("export format")
"""name -> format; add one with `FORMATS.register`."""
for _format in (
    ExportFormat("numpy", "a numpy function (programs) or module (networks)",
                 program_export.numpy_module,
                 functools.partial(network_module, imports="import numpy as xp")),
    ExportFormat("jax", "a jax.numpy function (programs) or module (networks)",
                 program_export.jax_module,
                 functools.partial(network_module, imports="import jax.numpy as xp")),
    ExportFormat("optax", "an optax GradientTransformation (optimizer programs)",
                 program_export.optax_module),
    ExportFormat("torch", "a torch.optim.Optimizer (optimizer programs)",
                 program_export.torch_module),
):
    FORMATS.register(_format)


def export_name(run_dir: str | Path, candidate_id: int) -> str:
    """The Python name of a run's candidate in exports: `<run folder>_c<id>`, lower case,
    every other character than letters and digits made `_`."""
    stem = "".join(c if c.isalnum() else "_" for c in Path(run_dir).resolve().name).strip("_")
    name = f"{stem or 'run'}_c{candidate_id}".lower()
    return name if name[0].isalpha() else f"run_{name}"


def formats_help() -> str:
    """One line per format, for the CLI's help."""
    return "; ".join(f"{name}: {FORMATS.get(name).help}" for name in FORMATS)


def export(rule: Rule, fmt: str, name: str | None = None, slot: Slot | None = None,
           origin: str = "") -> str:
    """Source of a self-contained module for `rule` in format `fmt`.

    A program is simplified and named `name` (default: its own name); `slot` defaults to the
    one its parameters fit. A network (shape, weights) is described as coming `origin`."""
    entry = FORMATS.get(fmt)
    if isinstance(rule, Program):
        if entry.program is None:
            raise ValueError(f"the {fmt} format has no writer for programs")
        return entry.program(rule, slot or slot_of(rule), name or rule.name)
    network, weights = rule
    if entry.network is None:
        valid = sorted(name for name in FORMATS if FORMATS.get(name).network is not None)
        raise ValueError(f"a network exports as {' or '.join(valid)}, not {fmt!r}")
    return entry.network(network, weights, origin=origin)
