"""Program -> source of a self-contained Python module (numpy, jax, optax or torch) that does
not import disco, so a discovered rule runs wherever those libraries do.

Every writer first simplifies the program (dead code, copies and foldable constants go; the
results are named `update`, `new_<state>` or `drift` by their place in the slot) and writes
what a person would: array inputs used as they are, constants as literals, the slot's scalar
inputs (`lr`, `step`, `progress`) as scalars, and a function for each matrix op the program
uses (`def orth(x)`, the op table's helper in the module's namespace). The evaluator's
semantics (inputs broadcast to one shape, a constant an array of that shape) are kept by a
`full_like` of the first array input exactly where they matter: a reduction or matrix op of a
scalar, a scalar result, an op over constants only. Array inputs must share one shape (as
weights, gradients and state do).

- `numpy`, `jax`: the rule function, named `name`, taking the program's parameters.
- `optax`: `optimizer(learning_rate, total_steps=None) -> optax.GradientTransformation`, the
  rule applied per leaf (so reductions and matrix ops are per tensor), returning the
  negated update (optax adds updates). `update(grads, state)` needs params only when the
  rule reads the weights. `learning_rate` is a float or a schedule of the count of updates
  done (from 0, as in optax); `step` counts from 1 and `progress = step / total_steps`.
- `torch`: a `torch.optim.Optimizer` named `name` in CamelCase (`my_rule` -> `MyRule`),
  taking `(params, lr=1e-3, total_steps=None)`; state tensors are created once per
  parameter, the rule runs under `torch.no_grad`, and the weight is changed in place
  (`p.add_(x, alpha=-lr)` where the update is a scalar times an array, else `p.sub_`).

The registry that maps format names to these writers is `disco_rules.export`.
"""

from __future__ import annotations

import builtins
import keyword
import textwrap
from dataclasses import dataclass

from disco_rules.dsl.ops import OPS
from disco_rules.dsl.printer import operand_text, to_text
from disco_rules.dsl.program import Const, Operand, Program, Stmt
from disco_rules.dsl.simplify import simplify
from disco_rules.dsl.slots import OBJECTIVE, OPTIMIZER, Slot

DEFAULT_TORCH_LR = 1e-3

# Names the generated modules use for their own purposes: a program value (parameter or
# result) or the rule's name must not take them.
_RESERVED = frozenset({
    "np", "jnp", "jax", "optax", "torch", "NamedTuple", "optimizer", "init",
    "learning_rate", "total_steps", "params", "updates", "state", "results", "outputs",
    "leaf", "count", "self", "closure", "loss", "group", "p", "as_tensor",
    *(op.name for op in OPS.values() if op.matrix),  # the matrix ops' helper functions
}) | set(vars(builtins))

# Arithmetic whose Python-number form never raises (no division, no power): torch computes
# it on the scalars lr, step, progress without making tensors.
_NUMBER_SAFE = frozenset({"copy", "neg", "square", "add", "sub", "mul", "interp"})
# Pure arithmetic templates: they accept Python numbers and 0-d values in every namespace.
_ARITHMETIC = frozenset({"copy", "neg", "square", "reciprocal", "add", "sub", "mul", "div",
                         "pow", "interp"})

# The kinds of a value in generated code.
_ARRAY, _SCALAR, _NUMBER = "array", "scalar", "number"  # number: a Python number (torch)


# -- the program as exported: simplified, results named by their place ---------------------

def prepare(program: Program, slot: Slot, name: str) -> Program:
    """`program` simplified, renamed `name`, its results named by their place in `slot`."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"export name {name!r} is not a Python identifier")
    simplified = simplify(program).replace(name=name)
    if slot == OPTIMIZER:
        wanted = ["update", *(f"new_{s}" for s in slot.state_names(program))]
    elif slot == OBJECTIVE:
        wanted = ["drift"]
    else:
        return simplified
    defined = {s.out for s in simplified.body}
    taken = set(simplified.params) | defined
    renames: dict[str, str] = {}
    for out, new in zip(simplified.outputs, wanted):
        if out in defined and out not in renames and new not in taken:
            renames[out] = new
            taken.add(new)

    def rename(operand: Operand) -> Operand:
        return renames.get(operand, operand) if isinstance(operand, str) else operand

    body = tuple(Stmt(rename(s.out), s.op, tuple(rename(a) for a in s.args))  # type: ignore[arg-type]
                 for s in simplified.body)
    return simplified.replace(body=body, outputs=tuple(rename(o) for o in simplified.outputs))


@dataclass(frozen=True)
class _Names:
    """The Python identifiers used for one program in generated code."""

    function: str
    values: dict[str, str]  # program name (param or statement result) -> identifier
    optimizer_class: str  # the torch optimizer
    state_class: str  # the optax state


def _class_name(program_name: str) -> str:
    camel = "".join(part[:1].upper() + part[1:] for part in program_name.split("_"))
    if not camel.isidentifier():  # empty, or starting with a digit as in `_1`
        camel = "Rule" + camel
    while keyword.iskeyword(camel) or camel in _RESERVED:
        camel += "_"
    return camel


def _names(program: Program) -> _Names:
    """Keep every program name that is safe in generated code; rename the others freshly."""
    optimizer_class = _class_name(program.name)
    state_class = optimizer_class + "State"
    value_names = [*program.params, *(stmt.out for stmt in program.body)]
    taken = set(_RESERVED) | set(value_names) | {program.name, optimizer_class, state_class}

    def fresh(name: str) -> str:
        candidate = "v" + name if name.startswith("_") else name
        while candidate in taken or keyword.iskeyword(candidate):
            candidate += "_"
        taken.add(candidate)
        return candidate

    def safe(name: str, reserved: set[str] | frozenset[str]) -> bool:
        return not (keyword.iskeyword(name) or name.startswith("_") or name in reserved)

    values = {name: name if safe(name, _RESERVED) else fresh(name) for name in value_names}
    function = program.name
    if not safe(function, _RESERVED | {"update", optimizer_class, state_class, *value_names}):
        function = fresh(function)
    return _Names(function, values, optimizer_class, state_class)


# -- the rule's statements ------------------------------------------------------------------

@dataclass
class _Body:
    """The rule's statements as source lines and the kind of every value they define."""

    lines: list[str]
    kinds: dict[str, str]


def _body(program: Program, names: _Names, xp: str, kinds: dict[str, str], ref: str | None,
          indent: str, fused: str | None = None, owned: frozenset[str] = frozenset()
          ) -> _Body:
    """Statements of `program` over namespace `xp`; `kinds` holds each parameter's kind, `ref`
    names an array of the common shape; `fused` is a result the caller computes itself;
    torch may overwrite `owned` parameters (and temporaries) once read for the last time."""
    kinds = dict(kinds)
    torch = xp == "torch"
    outputs = set(program.outputs)
    last_read = {a: i for i, stmt in enumerate(program.body) for a in stmt.names()}
    # Temporaries a torch op may overwrite once read for the last time: statement results
    # that are neither returned nor read by the fused update.
    reusable = ({s.out for s in program.body} | owned) - outputs - {
        a for s in program.body if s.out == fused for a in s.names()}

    def full(expression: str) -> str:
        return f"{xp}.full_like({ref}, {expression})" if ref else expression

    lines: list[str] = []
    for index, stmt in enumerate(program.body):
        if stmt.out == fused:
            continue
        dead = [isinstance(a, str) and a in reusable and last_read[a] == index
                and kinds[a] == _ARRAY for a in stmt.args]
        in_place = _in_place(stmt, dead, names) if torch else None
        if in_place is not None:
            kinds[stmt.out] = _ARRAY
            lines.append(f"{indent}{names.values[stmt.out]} = {in_place}")
            continue
        op = OPS[stmt.op]
        arg_kinds = [None if isinstance(a, Const) else kinds[a] for a in stmt.args]
        args = [operand_text(a) if isinstance(a, Const) else names.values[a] for a in stmt.args]
        if op.per_tensor and arg_kinds[0] != _ARRAY:
            # a reduction or matrix op of a scalar sees a tensor of the inputs' shape; without
            # array inputs, a matrix op's helper needs an array (a Python number has no shape)
            if ref:
                args[0] = full(args[0])
            elif op.matrix:
                args[0] = f"{xp}.asarray({args[0]})"
            kind = _ARRAY if ref else _SCALAR
        elif all(k is None for k in arg_kinds) and stmt.op not in _NUMBER_SAFE and not torch:
            # constants only: an array, as in the evaluator (and no Python `1.0 / 0.0`)
            args[0] = full(args[0]) if ref else f"{xp}.asarray({args[0]})"
            kind = _ARRAY if ref else _SCALAR
        elif torch and _ARRAY not in arg_kinds and _SCALAR not in arg_kinds:
            if stmt.op in _NUMBER_SAFE:
                kind = _NUMBER
            else:  # torch functions and unsafe arithmetic need a tensor
                convert = range(len(args)) if stmt.op not in _ARITHMETIC else range(1)
                for i in convert:
                    args[i] = f"as_tensor({args[i]}, {ref})"
                kind = _SCALAR
        else:
            if torch and stmt.op not in _ARITHMETIC:  # torch.maximum(x, 0.5) needs a tensor
                args = [f"as_tensor({a}, {ref})" if k in (None, _NUMBER) else a
                        for a, k in zip(args, arg_kinds)]
            kind = _ARRAY if _ARRAY in arg_kinds else _SCALAR
        expression = op.source(xp, args)
        if stmt.out in outputs and kind != _ARRAY and ref:
            expression, kind = full(expression), _ARRAY  # an output has the inputs' shape
        kinds[stmt.out] = kind
        lines.append(f"{indent}{names.values[stmt.out]} = {_strip(expression)}")
    return _Body(lines, kinds)


# Torch's in-place forms that compute exactly what the op's template computes.
_IN_PLACE_UNARY = {"neg": "neg_()", "abs": "abs_()", "sign": "sign_()", "sqrt": "sqrt_()",
                   "exp": "exp_()", "log": "log_()", "sin": "sin_()", "cos": "cos_()",
                   "tan": "tan_()", "arcsin": "arcsin_()", "arccos": "arccos_()",
                   "arctan": "arctan_()", "sinh": "sinh_()", "cosh": "cosh_()",
                   "tanh": "tanh_()", "arcsinh": "arcsinh_()", "arctanh": "arctanh_()"}
_IN_PLACE_BINARY = {"add": "add_", "sub": "sub_", "mul": "mul_", "div": "div_", "pow": "pow_"}


def _in_place(stmt: Stmt, dead: list[bool], names: _Names) -> str | None:
    """`stmt` as an in-place torch op on an argument it reads last (a temporary of the
    inputs' shape), or None where there is none or no exact in-place form."""
    def text(operand: Operand) -> str:
        return operand_text(operand) if isinstance(operand, Const) else names.values[operand]

    if stmt.op in _IN_PLACE_UNARY and dead[0]:
        return f"{text(stmt.args[0])}.{_IN_PLACE_UNARY[stmt.op]}"
    if stmt.op == "square" and dead[0]:
        return f"{text(stmt.args[0])}.mul_({text(stmt.args[0])})"
    if stmt.op == "interp":  # (1 - a) * x + a * y, the same products summed
        x, y, a = stmt.args
        if dead[1] and y not in (x, a):
            return f"{text(y)}.mul_({text(a)}).add_((1.0 - {text(a)}) * {text(x)})"
        if dead[0] and x not in (y, a):
            return f"{text(x)}.mul_(1.0 - {text(a)}).add_({text(a)} * {text(y)})"
        return None
    method = _IN_PLACE_BINARY.get(stmt.op)
    if method is None:
        return None
    sides = (0, 1) if OPS[stmt.op].commutative else (0,)
    for side in sides:
        if dead[side]:
            return f"{text(stmt.args[side])}.{method}({text(stmt.args[1 - side])})"
    return None


def _strip(expression: str) -> str:
    """`expression` without the outer parentheses the op templates put around it."""
    if not (expression.startswith("(") and expression.endswith(")")):
        return expression
    depth = 0
    for i, char in enumerate(expression):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and i < len(expression) - 1:
            return expression
    return expression[1:-1]


def _returned(program: Program, names: _Names, body: _Body, xp: str, ref: str | None
              ) -> list[str]:
    """The outputs as expressions: a scalar parameter returned as is is broadcast."""
    exprs = []
    for out in program.outputs:
        value = names.values[out]
        if body.kinds[out] != _ARRAY and ref:
            value = f"{xp}.full_like({ref}, {value})"
        exprs.append(value)
    return exprs


def _kinds(program: Program, slot: Slot, number_scalars: bool = False) -> dict[str, str]:
    """Each parameter's kind: the slot's scalar inputs are scalars (Python numbers in torch,
    `number_scalars`), the others arrays of the common shape."""
    scalar = _NUMBER if number_scalars else _SCALAR
    return {p: scalar if p in slot.scalar_inputs else _ARRAY for p in program.params}


# -- modules --------------------------------------------------------------------------------

def _docstring(text: str, indent: str) -> list[str]:
    """`text` as a docstring's lines, wrapped to fit 100 columns."""
    return textwrap.wrap(f'"""{text}"""', 100, initial_indent=indent, subsequent_indent=indent)


def _module(program: Program, what: str, imports: str, *parts: str) -> str:
    """A module: a docstring holding the program's text, the imports, then `parts`."""
    program_text = textwrap.indent(to_text(program), "    ")
    docstring = f'"""{what}, exported by disco from the (simplified) program:\n\n' \
                f'{program_text}"""\n'
    return "\n\n".join([docstring + "\n" + imports + "\n", *parts])


def _signature_text(program: Program, slot: Slot, names: _Names) -> str:
    """What the rule function takes and returns, for its docstring."""
    arrays = [names.values[p] for p in program.params if p not in slot.scalar_inputs]
    scalars = [names.values[p] for p in program.params if p in slot.scalar_inputs]
    parts = []
    if arrays:
        parts.append(f"array{'s' if len(arrays) > 1 else ''} {', '.join(arrays)}"
                     + (" of one shape" if len(arrays) > 1 else ""))
    if scalars:
        parts.append(f"scalar{'s' if len(scalars) > 1 else ''} {', '.join(scalars)}")
    outputs = [names.values[o] for o in program.outputs]
    returns = f"({', '.join(outputs)})" if len(outputs) > 1 else outputs[0]
    return f"{' and '.join(parts) or 'no inputs'}; returns {returns}"


def _function(program: Program, slot: Slot, names: _Names, xp: str) -> str:
    """The rule as a function of the program's parameters over namespace `xp`."""
    params = [names.values[p] for p in program.params]
    ref = next((p for p in program.params if p not in slot.scalar_inputs), None)
    ref_name = names.values[ref] if ref else None
    body = _body(program, names, xp, _kinds(program, slot), ref_name, "    ")
    lines = [f"def {names.function}({', '.join(params)}):",
             *_docstring(f"{program.name} on {_signature_text(program, slot, names)}.", "    "),
             *body.lines,
             f"    return {', '.join(_returned(program, names, body, xp, ref_name))}"]
    return "\n".join(lines) + "\n"


def _helpers(program: Program, xp: str) -> list[str]:
    """The helper function of each matrix op `program` uses (`orth`), over namespace `xp`."""
    used = {stmt.op for stmt in program.body}
    return [op.helper_source(xp) for op in OPS.values() if op.matrix and op.name in used]


def numpy_module(program: Program, slot: Slot, name: str) -> str:
    """The rule as a numpy function `name`."""
    program = prepare(program, slot, name)
    names = _names(program)
    return _module(program, f"`{names.function}` as a numpy function", "import numpy as np",
                   *_helpers(program, "np"), _function(program, slot, names, "np"))


def jax_module(program: Program, slot: Slot, name: str) -> str:
    """The rule as a jax.numpy function `name`."""
    program = prepare(program, slot, name)
    names = _names(program)
    return _module(program, f"`{names.function}` as a jax function", "import jax.numpy as jnp",
                   *_helpers(program, "jnp"), _function(program, slot, names, "jnp"))


def _check_optimizer(program: Program, slot: Slot, fmt: str) -> None:
    if slot.inputs != OPTIMIZER.inputs:
        raise ValueError(f"the {fmt} format exports optimizers: it needs the {OPTIMIZER.name} "
                         f"slot, not {slot.name}")
    slot.check(program)


def _progress_check(program: Program, caller: str, indent: str) -> list[str]:
    """Constructor lines refusing a missing total_steps, when the program reads progress."""
    if "progress" not in program.used_names():
        return []
    message = (f"{program.name} reads `progress` (step / total_steps), so {caller} needs "
               f"total_steps")
    return [f"{indent}if total_steps is None:", f"{indent}    raise ValueError({message!r})"]


def optax_module(program: Program, slot: Slot, name: str) -> str:
    """The rule as `optimizer(learning_rate, total_steps=None)`, an optax transformation."""
    _check_optimizer(program, slot, "optax")
    program = prepare(program, slot, name)
    names = _names(program)
    state = slot.state_names(program)
    fields = [names.values[s] for s in state]
    used = program.used_names()
    trees = {"w": "params", "g": "updates"} | {s: f"state.{names.values[s]}" for s in state}
    leaves = [p for p in program.params if p in trees and p in used] or ["g"]
    ref = names.values.get(leaves[0], leaves[0])
    body = _body(program, names, "jnp", _kinds(program, slot), ref, "            ")
    returned = _returned(program, names, body, "jnp", ref)
    negated = f"-{returned[0]}" if returned[0].isidentifier() else f"-({returned[0]})"

    state_class = [f"class {names.state_class}(NamedTuple):",
                   *_docstring(f"The count of updates done and, per state variable of "
                               f"{program.name}, a pytree like the parameters.", "    "),
                   "",
                   "    count: jax.Array",
                   *(f"    {field}: optax.Updates" for field in fields)]

    lines = ["def optimizer(learning_rate, total_steps=None) -> optax.GradientTransformation:",
             *_docstring(f"{program.name} as an optax transformation; learning_rate is a "
                         f"float or a schedule of the count of updates done.", "    "),
             *_progress_check(program, "optimizer()", "    "),
             "",
             "    def init(params):",
             *(["        zeros = jax.tree.map(jnp.zeros_like, params)"] if fields else []),
             f"        return {names.state_class}(jnp.zeros([], jnp.int32)"
             f"{', zeros' * len(fields)})",
             "",
             "    def update(updates, state, params=None):"]
    if "w" in used:
        message = f"{program.name} reads the weights w: call update(updates, state, params)"
        lines += ["        if params is None:", f"            raise ValueError({message!r})"]
    if "lr" in used:
        lines.append("        lr = jnp.asarray(learning_rate(state.count) if "
                     "callable(learning_rate) else learning_rate)")
    lines.append("        step = state.count + 1")
    if "progress" in used:
        lines.append("        progress = step / total_steps")
    leaf_params = ", ".join(names.values.get(p, p) for p in leaves)
    lines += ["",
              f"        def leaf({leaf_params}):",
              *body.lines,
              f"            return {', '.join([negated, *returned[1:]])}",
              "",
              f"        results = jax.tree.map(leaf, {', '.join(trees[p] for p in leaves)})"]
    if fields:
        lines += ["        outputs = jax.tree.transpose(jax.tree.structure(updates), None, "
                  "results)",
                  f"        return outputs[0], {names.state_class}(step, *outputs[1:])"]
    else:
        lines.append(f"        return results, {names.state_class}(step)")
    lines += ["", "    return optax.GradientTransformation(init, update)"]

    imports = "from typing import NamedTuple\n\nimport jax\nimport jax.numpy as jnp\nimport optax"
    return _module(program, f"`{names.function}` as an optax optimizer", imports,
                   *_helpers(program, "jnp"), "\n".join(state_class) + "\n",
                   "\n".join(lines) + "\n")


def _fusable(program: Program, kinds: dict[str, str]) -> tuple[str, str, str] | None:
    """(update, scale, array) when the update is scale * array, scale a number or constant,
    read nowhere else: the weight then changes by `p.add_(array, alpha=-scale)`."""
    update = program.outputs[0]
    stmt = next((s for s in program.body if s.out == update), None)
    if stmt is None or stmt.op != "mul" or update in program.outputs[1:]:
        return None
    if any(update in s.args for s in program.body):
        return None
    for scale, array in (stmt.args, stmt.args[::-1]):
        scale_ok = isinstance(scale, Const) or kinds.get(scale) == _NUMBER
        if scale_ok and isinstance(array, str) and kinds.get(array) == _ARRAY:
            return update, operand_text(scale) if isinstance(scale, Const) else scale, array
    return None


def torch_module(program: Program, slot: Slot, name: str) -> str:
    """The rule as a `torch.optim.Optimizer` subclass named `name` in CamelCase."""
    _check_optimizer(program, slot, "torch")
    program = prepare(program, slot, name)
    names = _names(program)
    state = slot.state_names(program)
    used = program.used_names()
    indent = " " * 16
    kinds = _kinds(program, slot, number_scalars=True)
    # a state variable not returned as it is may be overwritten once read for the last time
    owned = frozenset(state) - set(program.outputs)
    probe = _body(program, names, "torch", kinds, "p", indent)
    fusion = _fusable(program, probe.kinds)
    body = _body(program, names, "torch", kinds, "p", indent, fused=fusion and fusion[0],
                 owned=owned)
    inputs = {"w": "p", "g": "p.grad"} | {s: f'state["{s}"]' for s in state}
    reads = [f"{indent}{names.values[p]} = {inputs[p]}" for p in program.params
             if p in inputs and p in used]
    scalars = []
    if "step" in used or "progress" in used:
        scalars.append(f'{indent}step = float(state["step"])')
    if "progress" in used:
        scalars.append(f'{indent}progress = step / group["total_steps"]')

    stores, stored = [], set()
    for s, out in zip(state, program.outputs[1:]):
        value = names.values[out]
        if out == s:
            continue  # unchanged
        if out in program.params or out in stored:
            # p changes in place below, p.grad may be zeroed in place, and state tensors
            # are overwritten in place next step: each state variable owns its tensor
            value = f"{value}.clone()"
        elif body.kinds.get(out) != _ARRAY:
            value = f"torch.full_like(p, {value})"
        stored.add(out)
        stores.append(f'{indent}state["{s}"] = {value}')
    if fusion:
        _, scale, array = fusion
        negative = scale[1:] if scale.startswith("-") else f"-{scale}"
        change = f"p.add_({names.values.get(array, array)}, alpha={negative})"
    else:
        change = f"p.sub_({names.values[program.outputs[0]]})"

    needs_tensor = any("as_tensor(" in line for line in body.lines)
    helper = ["def as_tensor(x, like):",
              '    """x as a 0-d tensor of the dtype and device of `like`."""',
              "    return torch.as_tensor(x, dtype=like.dtype, device=like.device)"]
    cls = names.optimizer_class
    state_note = f" and zero-initialised state {', '.join(state)}" if state else ""
    lines = [f"class {cls}(torch.optim.Optimizer):",
             *_docstring(f"{program.name} as a torch optimizer; per parameter, a step count "
                         f"(from 1){state_note}.", "    "),
             "",
             f"    def __init__(self, params, lr={DEFAULT_TORCH_LR!r}, total_steps=None):",
             *_progress_check(program, f"{cls}()", "        "),
             '        super().__init__(params, {"lr": lr, "total_steps": total_steps})',
             "",
             "    @torch.no_grad()",
             "    def step(self, closure=None):",
             '        """Update every parameter that has a gradient; return the closure\'s '
             'loss."""',
             "        loss = None",
             "        if closure is not None:",
             "            with torch.enable_grad():",
             "                loss = closure()",
             "        for group in self.param_groups:",
             *(['            lr = group["lr"]'] if "lr" in used else []),
             '            for p in group["params"]:',
             "                if p.grad is None:",
             "                    continue",
             "                state = self.state[p]",
             "                if not state:",
             '                    state["step"] = 0',
             *(f'                    state["{s}"] = torch.zeros_like(p)' for s in state),
             '                state["step"] += 1',
             *scalars, *reads, *body.lines, *stores,
             f"                {change}",
             "        return loss"]
    parts = (["\n".join(helper) + "\n"] if needs_tensor else []) + _helpers(program, "torch") \
        + ["\n".join(lines) + "\n"]
    return _module(program, f"`{cls}`, a torch optimizer", "import torch", *parts)
