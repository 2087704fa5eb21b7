"""The rules written for the transfer experiments (docs/experiments/programs), for tests."""

from __future__ import annotations

from pathlib import Path

from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program

EXPERIMENT_PROGRAMS = Path(__file__).parents[1] / "docs" / "experiments" / "programs"


def experiment_program(name: str) -> Program:
    """docs/experiments/programs/`name`.py parsed."""
    return parse((EXPERIMENT_PROGRAMS / f"{name}.py").read_text())
