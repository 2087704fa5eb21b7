"""Program -> text that parses back to the same program."""

from __future__ import annotations

from disco_rules.dsl.ops import OPS
from disco_rules.dsl.program import Const, Operand, Program, Stmt


def operand_text(operand: Operand) -> str:
    if isinstance(operand, Const):
        text = repr(operand.value)
        return f"({text})" if operand.value < 0 or text.startswith("-") else text
    return operand


def expression_text(stmt: Stmt) -> str:
    """The right-hand side of `stmt` as source."""
    op = OPS[stmt.op]
    args = [operand_text(a) for a in stmt.args]
    if op.name == "copy":
        return args[0]
    if op.infix:
        return f"{args[0]} {op.infix} {args[1]}"
    if op.prefix:
        if isinstance(stmt.args[0], Const):  # `-0.5` would read back as a constant
            value = repr(stmt.args[0].value)
            return f"{op.prefix}({value if value.startswith('-') else '+' + value})"
        return f"{op.prefix}{args[0]}"
    return f"{op.name}({', '.join(args)})"


def to_text(program: Program) -> str:
    """Readable source: one statement per line, infix where the op has an infix form."""
    lines = [f"def {program.name}({', '.join(program.params)}):"]
    lines += [f"    {stmt.out} = {expression_text(stmt)}" for stmt in program.body]
    lines.append(f"    return {', '.join(program.outputs)}")
    return "\n".join(lines) + "\n"
