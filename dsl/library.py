"""The rule programs that ship with disco (SGD, momentum, Adam, AdamW, Lion, Muon; the drifts
PPO-clip and DPO): package data under `programs/`, read through importlib.resources."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program

PROGRAMS = Path(str(resources.files("disco_rules.dsl").joinpath("programs")))
"""The folder of the shipped programs (a plain folder: wheels install unzipped)."""


def names() -> tuple[str, ...]:
    """The shipped programs' names, sorted."""
    return tuple(sorted(p.stem for p in PROGRAMS.glob("*.py")))


def path(name: str) -> Path:
    """The file of shipped program `name`; KeyError lists the names if there is none."""
    file = PROGRAMS / f"{name}.py"
    if not file.is_file():
        raise KeyError(f"no shipped program {name!r}; shipped: {', '.join(names())}")
    return file


def program(name: str) -> Program:
    """Shipped program `name`, parsed."""
    return parse(path(name).read_text())
