"""Programs as plain data: single-op statements over named values (SSA), like a jaxpr.

A program has parameters (its inputs), a body of statements, each assigning the result of
one op to a fresh name, and the names it returns. Operands are names or constants. Programs
are immutable: every transformation returns a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union

from disco_rules.dsl.ops import OPS


class ProgramError(ValueError):
    """A program that breaks a rule of the language (unknown op, undefined name, ...)."""


@dataclass(frozen=True, order=True)
class Const:
    """A numeric literal operand: an array of the value's shape filled with `value`."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))


Operand = Union[str, Const]


@dataclass(frozen=True)
class Stmt:
    """`out = op(*args)`."""

    out: str
    op: str
    args: tuple[Operand, ...]

    def names(self) -> Iterator[str]:
        """The names this statement reads."""
        return (a for a in self.args if isinstance(a, str))


@dataclass(frozen=True)
class Program:
    """A function `name(*params)` computing `body` and returning `outputs`."""

    name: str
    params: tuple[str, ...]
    body: tuple[Stmt, ...]
    outputs: tuple[str, ...]

    def __post_init__(self) -> None:
        validate(self)

    def defined_before(self, index: int) -> tuple[str, ...]:
        """Names readable by the statement at `index`: the parameters and earlier results."""
        return self.params + tuple(s.out for s in self.body[:index])

    def all_names(self) -> frozenset[str]:
        return frozenset(self.params) | {s.out for s in self.body}

    def used_names(self) -> frozenset[str]:
        """Names read by some statement or returned."""
        used = set(self.outputs)
        for stmt in self.body:
            used.update(stmt.names())
        return frozenset(used)

    @classmethod
    def parse(cls, text: str) -> "Program":
        """The program in `text`, parsed and never executed; ProgramError names the line and
        column of what is wrong."""
        from disco_rules.dsl.parser import parse

        return parse(text)

    def replace(self, **changes: object) -> "Program":
        fields = {"name": self.name, "params": self.params, "body": self.body,
                  "outputs": self.outputs}
        fields.update(changes)
        return Program(**fields)  # type: ignore[arg-type]

    def __str__(self) -> str:
        from disco_rules.dsl.printer import to_text

        return to_text(self)


def validate(program: Program) -> None:
    """Raise ProgramError unless every op is known with the right arity and every name is
    defined once before it is read."""
    if not program.name.isidentifier():
        raise ProgramError(f"program name {program.name!r} is not an identifier")
    defined: set[str] = set()
    for param in program.params:
        if not param.isidentifier():
            raise ProgramError(f"parameter {param!r} is not an identifier")
        if param in defined:
            raise ProgramError(f"parameter {param!r} appears twice")
        defined.add(param)
    for index, stmt in enumerate(program.body):
        op = OPS.get(stmt.op)
        if op is None:
            raise ProgramError(f"statement {index}: unknown op {stmt.op!r}")
        if len(stmt.args) != op.arity:
            raise ProgramError(
                f"statement {index}: {stmt.op} takes {op.arity} arguments, got {len(stmt.args)}")
        for arg in stmt.args:
            if isinstance(arg, Const):
                if arg.value != arg.value or arg.value in (float("inf"), float("-inf")):
                    raise ProgramError(f"statement {index}: constant {arg.value} is not finite")
            elif arg not in defined:
                raise ProgramError(f"statement {index}: {arg!r} is read before it is defined")
        if not stmt.out.isidentifier():
            raise ProgramError(f"statement {index}: {stmt.out!r} is not an identifier")
        if stmt.out in defined:
            raise ProgramError(f"statement {index}: {stmt.out!r} is assigned twice")
        defined.add(stmt.out)
    if not program.outputs:
        raise ProgramError("a program returns at least one value")
    for out in program.outputs:
        if out not in defined:
            raise ProgramError(f"returned value {out!r} is never defined")
