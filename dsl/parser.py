"""Program text -> Program. The text is a restricted Python function, parsed with `ast` and
never executed; anything outside the language is rejected with its line and column."""

from __future__ import annotations

import ast
import math

from disco_rules.dsl.ops import OPS
from disco_rules.dsl.program import Const, Operand, Program, ProgramError, Stmt

_BINOPS: dict[type, str] = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div",
                            ast.Pow: "pow"}

# Operators that chain without brackets, `a + b - c` or `a * b / c`: Python nests them to the
# left, `(a + b) - c`, but a reader (and the flattener, which walks a chain in a loop) sees
# one level.
_CHAINS: dict[type, str] = {ast.Add: "+", ast.Sub: "+", ast.Mult: "*", ast.Div: "*"}

# Limits on what is parsed, far above any program the search makes, so that hostile or broken
# text is a ParseError rather than a RecursionError (the flattener recurses per nesting level,
# and Python's own parser per operator of a chain) or a long stall.
MAX_TEXT_CHARS = 1_000_000
MAX_NESTING = 100  # of an expression: calls and operators inside one another, a chain once
MAX_CHAIN = 1_000  # operators in one chain such as `a + b - c`
MAX_NODES = 100_000  # syntax nodes in the whole function
NUL = "\0"


class ParseError(ProgramError):
    """Program text outside the language; the message names line and column."""

    def __init__(self, message: str, node: ast.AST | None = None) -> None:
        if node is not None and hasattr(node, "lineno"):
            message = f"line {node.lineno}, column {node.col_offset + 1}: {message}"
        super().__init__(message)


class _Flattener:
    """Turns nested expressions into single-op statements with fresh SSA names."""

    def __init__(self, reserved: set[str]) -> None:
        self.reserved = set(reserved)
        self.current: dict[str, str] = {}  # source name -> its latest SSA name
        self.body: list[Stmt] = []
        self._temp = 0

    def fresh(self, base: str) -> str:
        if base not in self.reserved:
            self.reserved.add(base)
            return base
        suffix = 1
        while f"{base}_{suffix}" in self.reserved:
            suffix += 1
        name = f"{base}_{suffix}"
        self.reserved.add(name)
        return name

    def temp(self) -> str:
        while f"t{self._temp}" in self.reserved:
            self._temp += 1
        return self.fresh(f"t{self._temp}")

    def emit(self, op: str, args: list[Operand], out: str | None = None) -> str:
        name = out if out is not None else self.temp()
        self.body.append(Stmt(name, op, tuple(args)))
        return name

    def operand(self, node: ast.expr) -> Operand:
        """An operand for `node`: a name or constant as is, anything else via a statement."""
        if isinstance(node, ast.Name):
            if node.id not in self.current:
                raise ParseError(f"{node.id!r} is used before it is assigned", node)
            return self.current[node.id]
        constant = _constant(node)
        if constant is not None:
            return constant
        op, args = self.call(node)
        return self.emit(op, args)

    def call(self, node: ast.expr) -> tuple[str, list[Operand]]:
        """The op and operands of a compound expression."""
        constant = _constant(node)
        if constant is not None:
            return "copy", [constant]
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise ParseError(f"operator {type(node.op).__name__} is not in the language", node)
            # A chain `a + b - c` is `(a + b) - c`: walked in a loop, not recursively, with
            # statements emitted in the order recursion would emit them.
            chain = [node]
            while _continues_chain(chain[-1], chain[-1].left):
                chain.append(chain[-1].left)  # type: ignore[arg-type]
            left = self.operand(chain[-1].left)
            for link in reversed(chain[1:]):
                left = self.emit(_BINOPS[type(link.op)], [left, self.operand(link.right)])
            return op, [left, self.operand(node.right)]
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return "neg", [self.operand(node.operand)]
            if isinstance(node.op, ast.UAdd):
                return "copy", [self.operand(node.operand)]
            raise ParseError(f"operator {type(node.op).__name__} is not in the language", node)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ParseError("only calls of the language's ops are allowed", node)
            op = OPS.get(node.func.id)
            if op is None:
                raise ParseError(f"unknown function {node.func.id!r}", node)
            if node.keywords:
                raise ParseError(f"{node.func.id}() takes no keyword arguments", node)
            if any(isinstance(arg, ast.Starred) for arg in node.args):
                raise ParseError("starred arguments are not allowed", node)
            if len(node.args) != op.arity:
                raise ParseError(
                    f"{node.func.id}() takes {op.arity} arguments, got {len(node.args)}", node)
            return op.name, [self.operand(arg) for arg in node.args]
        if isinstance(node, ast.Name):
            return "copy", [self.operand(node)]
        raise ParseError(f"{type(node).__name__} expressions are not in the language", node)


def _constant(node: ast.expr) -> Const | None:
    """A numeric literal, with a leading minus folded in; None if `node` is not one."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant):
        sign, node = (-1.0 if isinstance(node.op, ast.USub) else 1.0), node.operand
    if not isinstance(node, ast.Constant):
        return None
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParseError(f"literal {value!r} is not a real number", node)
    if not math.isfinite(value):
        raise ParseError(f"literal {value!r} is not finite", node)
    return Const(sign * float(value))


def _source_names(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def _position(text: str, index: int) -> str:
    """`line L, column C` of the character at `index`."""
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)
    return f"line {line}, column {column}"


def _continues_chain(parent: ast.AST, child: ast.AST) -> bool:
    """Whether `child` is the left operand of `parent` in one chain such as `a + b - c`."""
    return isinstance(parent, ast.BinOp) and isinstance(child, ast.BinOp) \
        and child is parent.left and type(child.op) in _CHAINS \
        and _CHAINS[type(child.op)] == _CHAINS.get(type(parent.op))


def _check_size(func: ast.FunctionDef) -> None:
    """ParseError for a function over MAX_NODES nodes, nested deeper than MAX_NESTING or with
    a chain over MAX_CHAIN operators (walked without recursion, before anything recursive
    touches the tree). A chain such as `a + b - c` is one level, however long."""
    stack: list[tuple[ast.AST, int, int]] = [(func, 0, 0)]  # node, depth, operators in chain
    nodes = 0
    while stack:
        node, depth, chain = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ParseError(f"the program has over {MAX_NODES} syntax nodes")
        if depth > MAX_NESTING:
            raise ParseError(f"expression nested over {MAX_NESTING} levels deep (calls and "
                             "operators inside one another; a chain such as `a + b - c` "
                             "counts once)", node)
        if chain > MAX_CHAIN:
            raise ParseError(f"a chain of over {MAX_CHAIN} operators such as `a + b - c`; "
                             "split it over several statements", node)
        inner = depth + 1 if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Call)) else depth
        for child in ast.iter_child_nodes(node):
            if _continues_chain(node, child):
                stack.append((child, depth, chain + 1))
            else:
                stack.append((child, inner, int(isinstance(child, ast.BinOp))))


def parse(text: str) -> Program:
    """Parse program text into a Program; raise ParseError naming line and column."""
    if len(text) > MAX_TEXT_CHARS:
        raise ParseError(f"program text of {len(text)} characters, over {MAX_TEXT_CHARS}")
    if NUL in text:
        raise ParseError(f"{_position(text, text.index(NUL))}: a NUL character")
    try:
        module = ast.parse(text)
    except SyntaxError as error:
        where = "" if error.lineno is None else f"line {error.lineno}, column {error.offset}: "
        raise ParseError(f"{where}{error.msg}") from None
    except (RecursionError, MemoryError):
        raise ParseError(f"expressions nested too deeply or chained too long to parse (the "
                         f"limits are {MAX_NESTING} levels of nesting and {MAX_CHAIN} operators "
                         "in a chain such as `a + b - c`)") from None
    if len(module.body) != 1 or not isinstance(module.body[0], ast.FunctionDef):
        node = module.body[0] if module.body else None
        raise ParseError("program text must be exactly one `def NAME(params):`", node)
    func = module.body[0]
    _check_size(func)
    _check_signature(func)
    params = tuple(arg.arg for arg in func.args.args)
    if len(set(params)) != len(params):
        raise ParseError("a parameter name appears twice", func)
    flat = _Flattener(reserved=set(params) | _source_names(func) | {func.name})
    flat.current = {p: p for p in params}
    *assignments, last = func.body
    for stmt in assignments:
        if not isinstance(stmt, ast.Assign):
            raise ParseError(f"{type(stmt).__name__} statements are not in the language; "
                             "only `name = expr` and a final `return`", stmt)
        if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
            raise ParseError("assign to exactly one plain name", stmt)
        target = stmt.targets[0].id
        op, args = flat.call(stmt.value)
        out = flat.fresh(target) if target in flat.current else target
        flat.reserved.add(out)
        flat.emit(op, args, out=out)
        flat.current[target] = out
    if not isinstance(last, ast.Return) or last.value is None:
        raise ParseError("the function must end with `return a, b, ...`", last)
    values = last.value.elts if isinstance(last.value, ast.Tuple) else [last.value]
    outputs = []
    for value in values:
        operand = flat.operand(value)
        outputs.append(operand if isinstance(operand, str) else flat.emit("copy", [operand]))
    try:
        return Program(func.name, params, tuple(flat.body), tuple(outputs))
    except ProgramError as error:
        raise ParseError(str(error), func) from None


def _check_signature(func: ast.FunctionDef) -> None:
    args = func.args
    if func.decorator_list:
        raise ParseError("decorators are not allowed", func.decorator_list[0])
    if func.returns is not None:
        raise ParseError("annotations are not allowed", func.returns)
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
        raise ParseError("parameters are plain names: no defaults, *args, **kwargs", func)
    for arg in args.args:
        if arg.annotation is not None:
            raise ParseError("annotations are not allowed", arg)
    if not args.args:
        raise ParseError("a program takes at least one parameter", func)
