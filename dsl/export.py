"""Program -> source of a self-contained Python module (numpy, jax, optax or torch) that does
not import disco, so a discovered rule runs wherever those libraries do.

Every format writes the same rule function, with the op table's own templates over the
format's array namespace and the evaluator's semantics: inputs broadcast to one common
shape, a constant is an array of that shape, reductions see the whole (broadcast) array. It
is named after the program and takes the program's parameters; it returns the single value
when the program has one output and a tuple otherwise. Program names that would break or
clash with the generated code (keywords, `np`, `zeros`, a function named `update`, ...) get
a trailing `_`, and names starting with `_` a leading `v`.

- `numpy`, `jax`: just the rule function.
- `optax`: `optimizer(learning_rate, total_steps=None) -> optax.GradientTransformation`, the
  rule applied per leaf (so reductions are per tensor), returning the negated program update
  (optax adds updates). The state is a count and one zero-initialised pytree per state
  variable. `learning_rate` is a float or a schedule of the count of updates done (from 0,
  as in optax); `step` counts from 1 and `progress = step / total_steps`.
- `torch`: a `torch.optim.Optimizer` subclass named after the program in CamelCase (each
  `_`-separated part capitalised: `adamw` -> `Adamw`, `my_rule` -> `MyRule`), taking
  `(params, lr, total_steps=None)`, keeping a step count and the state tensors per parameter,
  and subtracting the update in place.
"""

from __future__ import annotations

import builtins
import keyword
import textwrap
from dataclasses import dataclass
from typing import Callable

from disco_rules.dsl.ops import OPS
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Const, Operand, Program
from disco_rules.dsl.slots import OPTIMIZER, Slot

FORMATS: tuple[str, ...] = ("numpy", "jax", "optax", "torch")

# Names the rule function's body reads or the optax state uses as a field: program values
# (parameters and results) must not take them.
_VALUE_RESERVED = frozenset({"np", "jnp", "jax", "optax", "torch", "zeros", "count"})
# Module-level names and the optax and torch wrappers' locals: the rule function must not
# take them either.
_FUNCTION_RESERVED = _VALUE_RESERVED | {
    "NamedTuple", "optimizer", "init", "update", "learning_rate", "total_steps", "params",
    "updates", "state", "results", "outputs", "lr", "step", "progress", "self", "closure",
    "loss", "group", "p"} | set(vars(builtins))


# How each namespace makes an array of an input without copying one (torch.asarray warns on
# tensors that require grad).
_AS_ARRAY = {"np": "np.asarray", "jnp": "jnp.asarray", "torch": "torch.as_tensor"}


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
    while keyword.iskeyword(camel) or camel in vars(builtins):
        camel += "_"
    return camel


def _names(program: Program) -> _Names:
    """Keep every program name that is safe in generated code; rename the others freshly."""
    optimizer_class = _class_name(program.name)
    state_class = optimizer_class + "State"
    value_names = [*program.params, *(stmt.out for stmt in program.body)]
    taken = set(_FUNCTION_RESERVED) | set(value_names) | {program.name, optimizer_class,
                                                          state_class}

    def fresh(name: str) -> str:
        candidate = "v" + name if name.startswith("_") else name
        while candidate in taken or keyword.iskeyword(candidate):
            candidate += "_"
        taken.add(candidate)
        return candidate

    def safe(name: str, reserved: frozenset[str] | set[str]) -> bool:
        return not (keyword.iskeyword(name) or name.startswith("_") or name in reserved)

    values = {name: name if safe(name, _VALUE_RESERVED) else fresh(name)
              for name in value_names}
    function = program.name
    if not safe(function, _FUNCTION_RESERVED | {optimizer_class, state_class, *value_names}):
        function = fresh(function)
    return _Names(function, values, optimizer_class, state_class)


def _docstring(text: str, indent: str) -> list[str]:
    """`text` as a docstring's lines, wrapped to fit 100 columns."""
    return textwrap.wrap(f'"""{text}"""', 100, initial_indent=indent, subsequent_indent=indent)


def _operand_source(operand: Operand, names: _Names) -> str:
    if isinstance(operand, Const):
        return f"(zeros + {operand.value!r})"
    return names.values[operand]


def _function_source(program: Program, names: _Names, xp: str) -> str:
    """The rule as a function over namespace `xp`, computing exactly what `evaluate` does."""
    params = [names.values[p] for p in program.params]
    outputs = [names.values[o] for o in program.outputs]
    returns = f"the tuple ({', '.join(outputs)})" if len(outputs) > 1 else outputs[0]
    lines = [f"def {names.function}({', '.join(params)}):",
             *_docstring(f"Program `{program.name}` on inputs broadcast to one common shape; "
                         f"returns {returns}.", "    ")]
    lines += [f"    {p} = {_AS_ARRAY[xp]}({p})" for p in params]
    lines.append(f"    zeros = {xp}.zeros_like({' + '.join(f'{p} * 0' for p in params)})")
    lines += [f"    {p} = zeros + {p}" for p in params]
    for stmt in program.body:
        args = [_operand_source(arg, names) for arg in stmt.args]
        lines.append(f"    {names.values[stmt.out]} = {OPS[stmt.op].source(xp, args)}")
    lines.append(f"    return {', '.join(outputs)}")
    return "\n".join(lines) + "\n"


def _module(program: Program, what: str, imports: str, *parts: str) -> str:
    program_text = textwrap.indent(to_text(program), "    ")
    docstring = f'"""{what}, exported by disco from the program:\n\n{program_text}"""\n'
    return "\n\n".join([docstring + "\n" + imports + "\n", *parts])


def _numpy(program: Program, slot: Slot) -> str:
    names = _names(program)
    return _module(program, f"`{names.function}` as a numpy function", "import numpy as np",
                   _function_source(program, names, "np"))


def _jax(program: Program, slot: Slot) -> str:
    names = _names(program)
    return _module(program, f"`{names.function}` as a jax function",
                   "import jax.numpy as jnp", _function_source(program, names, "jnp"))


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


def _optax(program: Program, slot: Slot) -> str:
    _check_optimizer(program, slot, "optax")
    names = _names(program)
    state = slot.state_names(program)
    fields = [names.values[s] for s in state]
    used = program.used_names()
    trees = {"w": "params", "g": "updates"} | {s: f"state.{names.values[s]}" for s in state}
    mapped = [p for p in program.params if p in trees]
    call = ", ".join(names.values[p] if p in trees else p for p in program.params)
    lambda_params = ", ".join(names.values[p] for p in mapped) or "_"
    mapped_trees = ", ".join(trees[p] for p in mapped) or "updates"

    state_class = [f"class {names.state_class}(NamedTuple):",
                   *_docstring(f"The count of updates done and, per state variable of "
                               f"{program.name}, a pytree like the parameters.", "    "),
                   "",
                   "    count: jax.Array",
                   *(f"    {field}: optax.Params" for field in fields)]

    lines = ["def optimizer(learning_rate, total_steps=None) -> optax.GradientTransformation:",
             *_docstring(f"{program.name} as an optax transformation; learning_rate is a "
                         f"float or a schedule of the count of updates done.", "    "),
             *_progress_check(program, "optimizer()", "    "),
             "",
             "    def init(params):"]
    if fields:
        lines.append("        zeros = jax.tree.map(jnp.zeros_like, params)")
    lines += [f"        return {names.state_class}(jnp.zeros([], jnp.int32)"
              f"{', zeros' * len(fields)})",
              "",
              "    def update(updates, state, params=None):"]
    if "w" in used:
        message = f"{program.name} reads the weights w: call update(updates, state, params)"
        lines += ["        if params is None:", f"            raise ValueError({message!r})"]
    elif "w" in program.params:
        lines.append("        params = updates if params is None else params  "
                     "# w is unread: only its shape counts")
    lines += ["        lr = learning_rate(state.count) if callable(learning_rate) "
              "else learning_rate",
              "        step = state.count + 1"]
    if "progress" in used:
        lines.append("        progress = step / total_steps")
    elif "progress" in program.params:
        lines.append("        progress = 0.0  # unread")
    lines += ["        results = jax.tree.map(",
              f"            lambda {lambda_params}: {names.function}({call}), {mapped_trees})"]
    if fields:
        lines += ["        outputs = jax.tree.transpose(jax.tree.structure(updates), None, "
                  "results)",
                  f"        return jax.tree.map(jnp.negative, outputs[0]), "
                  f"{names.state_class}(step, *outputs[1:])"]
    else:
        lines.append(f"        return jax.tree.map(jnp.negative, results), "
                     f"{names.state_class}(step)")
    lines += ["", "    return optax.GradientTransformation(init, update)"]

    imports = "from typing import NamedTuple\n\nimport jax\nimport jax.numpy as jnp\nimport optax"
    return _module(program, f"`{names.function}` as an optax optimizer", imports,
                   _function_source(program, names, "jnp"),
                   "\n".join(state_class) + "\n", "\n".join(lines) + "\n")


def _torch(program: Program, slot: Slot) -> str:
    _check_optimizer(program, slot, "torch")
    names = _names(program)
    state = slot.state_names(program)
    used = program.used_names()
    scalars = {"lr": 'torch.full_like(p, group["lr"])',
               "step": 'torch.full_like(p, state["step"])',
               "progress": ('torch.full_like(p, state["step"] / group["total_steps"])'
                            if "progress" in used else "torch.zeros_like(p)")}
    arguments = {"w": "p", "g": "p.grad"} | {s: f'state["{s}"]' for s in state}
    call = ", ".join(arguments.get(p, p) for p in program.params)  # scalars are locals
    targets = ", ".join(["update", *(f'state["{s}"]' for s in state)])

    lines = [f"class {names.optimizer_class}(torch.optim.Optimizer):",
             *_docstring(f"{program.name} as a torch optimizer; per parameter, a step count "
                         f"(from 1)" + (f" and zero-initialised state {', '.join(state)}."
                                        if state else "."), "    "),
             "",
             "    def __init__(self, params, lr, total_steps=None):",
             *_progress_check(program, f"{names.optimizer_class}()", "        "),
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
             '            for p in group["params"]:',
             "                if p.grad is None:",
             "                    continue",
             "                state = self.state[p]",
             "                if not state:",
             '                    state["step"] = 0',
             *(f'                    state["{s}"] = torch.zeros_like(p)' for s in state),
             '                state["step"] += 1',
             *(f"                {p} = {scalars[p]}" for p in program.params if p in scalars),
             f"                {targets} = {names.function}({call})",
             "                p.sub_(update)",
             "        return loss"]
    return _module(program, f"`{names.function}` as a torch optimizer", "import torch",
                   _function_source(program, names, "torch"), "\n".join(lines) + "\n")


_WRITERS: dict[str, Callable[[Program, Slot], str]] = {
    "numpy": _numpy, "jax": _jax, "optax": _optax, "torch": _torch}


def export(program: Program, fmt: str, slot: Slot = OPTIMIZER) -> str:
    """Source of a module defining `program` in format `fmt` (one of FORMATS); `slot` says
    which parameters are state for the optimizer formats."""
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise ValueError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    return writer(program, slot)
