"""Programs as fixed-size arrays, and one JAX interpreter that runs any of them.

A program encodes into integer and float arrays of a fixed size (`Encoding`), so a whole
population is one array with a leading axis and runs through one compiled function: no
per-program compilation. Registers hold every value of a program: first the slot's inputs,
then its state variables, then one register per statement.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from disco_rules.dsl.ops import MAX_ARITY, OP_CODES, OP_NAMES, OPS
from disco_rules.dsl.program import Const, Program, ProgramError
from disco_rules.dsl.slots import OPTIMIZER, Slot

MATRIX_OPS: frozenset[str] = frozenset(name for name in OP_NAMES if OPS[name].matrix)


class EncodingError(ProgramError):
    """A program that does not fit the fixed-size encoding."""


class EncodedProgram(NamedTuple):
    """A program as arrays; a population stacks these along a leading axis."""

    ops: Any  # int32 [max_statements]: op code of each statement
    args: Any  # int32 [max_statements, MAX_ARITY]: register read, or -1 for a constant
    consts: Any  # float32 [max_statements, MAX_ARITY]: value of constant arguments
    outputs: Any  # int32 [1 + max_state]: register of the result and of each new state value
    length: Any  # int32 []: number of statements in use


@dataclass(frozen=True)
class Encoding:
    """The fixed sizes programs of one slot are encoded to, and whether they may use matrix
    ops: without them (`matrix_ops=False`) the interpreter compiles no matrix branch, whose
    matrix products for every parameter tensor lengthen a trainer's compilation."""

    slot: Slot = OPTIMIZER
    max_statements: int = 32
    matrix_ops: bool = True

    @property
    def n_inputs(self) -> int:
        """Registers filled by the caller: the slot's inputs, then its state variables."""
        return len(self.slot.inputs) + self.slot.max_state

    @property
    def n_registers(self) -> int:
        return self.n_inputs + self.max_statements

    def encode(self, program: Program) -> EncodedProgram:
        """Arrays for `program`; EncodingError if it does not fit this encoding."""
        self.slot.check(program)
        matrix = next((s.op for s in program.body if s.op in MATRIX_OPS), None)
        if matrix is not None and not self.matrix_ops:
            raise EncodingError(f"{program.name} uses {matrix}; this encoding has no matrix ops")
        if len(program.body) > self.max_statements:
            raise EncodingError(
                f"{program.name} has {len(program.body)} statements; this encoding holds at "
                f"most {self.max_statements} (raise max_statements or simplify the program)")
        register = {name: self.slot.inputs.index(name) for name in program.params
                    if name in self.slot.inputs}
        for k, name in enumerate(self.slot.state_names(program)):
            register[name] = len(self.slot.inputs) + k
        ops = np.full(self.max_statements, OP_CODES["copy"], np.int32)
        args = np.zeros((self.max_statements, MAX_ARITY), np.int32)
        consts = np.zeros((self.max_statements, MAX_ARITY), np.float32)
        for i, stmt in enumerate(program.body):
            ops[i] = OP_CODES[stmt.op]
            for k, arg in enumerate(stmt.args):
                if isinstance(arg, Const):
                    args[i, k], consts[i, k] = -1, arg.value
                else:
                    args[i, k] = register[arg]
            register[stmt.out] = self.n_inputs + i
        outputs = np.arange(len(self.slot.inputs) - 1, self.n_inputs, dtype=np.int32)
        for k, name in enumerate(program.outputs):
            outputs[k] = register[name]
        return EncodedProgram(ops, args, consts, outputs, np.int32(len(program.body)))

    def encode_population(self, programs: Sequence[Program]) -> EncodedProgram:
        """One EncodedProgram whose arrays have a leading population axis."""
        encoded = [self.encode(p) for p in programs]
        return EncodedProgram(*(np.stack(field) for field in zip(*encoded)))


Shapes = tuple[tuple[int, ...], ...]  # the shapes of the tensors a flat vector holds, in order


def uses_matrix_ops(population: EncodedProgram) -> bool:
    """Whether any program of an encoded program or population (concrete arrays) uses a
    matrix op: an encoding without them runs it the same and compiles faster."""
    codes = [OP_CODES[name] for name in MATRIX_OPS]
    return bool(np.isin(np.asarray(population.ops), codes).any())


class _Segmented:
    """jax.numpy over a flat vector holding several tensors, one segment each: `sum` and
    `mean` reduce each segment separately and broadcast back, and `orth` orthogonalises each
    segment as a tensor of its shape, so reductions and matrix ops stay per tensor."""

    def __init__(self, shapes: Shapes) -> None:
        self.shapes = shapes
        self.sizes = tuple(math.prod(shape) for shape in shapes)

    def __getattr__(self, name: str) -> Any:
        return getattr(jnp, name)

    def _per_segment(self, x: jax.Array, reduce: Any) -> jax.Array:
        pieces, start = [], 0
        for size in self.sizes:
            value = reduce(x[..., start:start + size], axis=-1, keepdims=True)
            pieces.append(jnp.broadcast_to(value, x.shape[:-1] + (size,)))
            start += size
        return jnp.concatenate(pieces, axis=-1)

    def sum(self, x: jax.Array) -> jax.Array:
        return self._per_segment(x, jnp.sum)

    def mean(self, x: jax.Array) -> jax.Array:
        return self._per_segment(x, jnp.mean)

    def orth(self, x: jax.Array) -> jax.Array:
        """`orth` of each segment of the flat vector `x`, reshaped to its tensor's shape."""
        orth, pieces, start = OPS["orth"].fn, [], 0
        for shape, size in zip(self.shapes, self.sizes):
            pieces.append(orth(jnp, x[start:start + size].reshape(shape)).reshape(-1))
            start += size
        return jnp.concatenate(pieces)


@functools.lru_cache(maxsize=None)
def _branches(shapes: Shapes | None, matrix_ops: bool) -> tuple[Any, ...]:
    xp = jnp if shapes is None else _Segmented(shapes)

    def branch(name: str) -> Any:
        op = OPS[name]
        if name in MATRIX_OPS and not matrix_ops:  # never encoded: NaN if it were reached
            return lambda args: jnp.full_like(args[0], jnp.nan)
        return lambda args: op.fn(xp, *args[: op.arity])

    return tuple(branch(name) for name in OP_NAMES)


def run(program: EncodedProgram, inputs: jax.Array, shapes: Shapes | None = None,
        matrix_ops: bool = True) -> jax.Array:
    """Outputs [1 + max_state, ...] of one encoded program on `inputs` [n_inputs, ...].

    With `shapes` (tensor shapes whose sizes sum to the length of `inputs`' last axis), each
    value is a flat vector holding one tensor of each shape, and reductions and matrix ops
    act on each tensor separately; without, a value is one tensor of its own shape. Without
    `matrix_ops` (programs of an encoding that has none) no matrix branch is compiled. Pure
    and traceable: `jax.vmap` or `jax.lax.map` runs a population of different programs
    through one compilation.
    """
    program = EncodedProgram(*(jnp.asarray(field) for field in program))
    branches = _branches(None if shapes is None else tuple(tuple(s) for s in shapes),
                         matrix_ops)
    n_statements = program.ops.shape[0]
    registers = jnp.concatenate(
        [inputs, jnp.zeros((n_statements,) + inputs.shape[1:], inputs.dtype)])
    n_inputs = inputs.shape[0]

    def body(i: jax.Array, registers: jax.Array) -> jax.Array:
        index = program.args[i]
        values = registers[jnp.maximum(index, 0)]
        consts = jnp.broadcast_to(
            program.consts[i].astype(inputs.dtype).reshape((-1,) + (1,) * (inputs.ndim - 1)),
            values.shape)
        args = jnp.where((index >= 0).reshape(consts.shape[:1] + (1,) * (inputs.ndim - 1)),
                         values, consts)
        result = jax.lax.switch(program.ops[i], branches, args)
        return jax.lax.dynamic_update_index_in_dim(
            registers, result.astype(inputs.dtype), n_inputs + i, 0)

    registers = jax.lax.fori_loop(0, program.length, body, registers)
    return registers[program.outputs]


def apply_optimizer(program: EncodedProgram, w: jax.Array, g: jax.Array, state: jax.Array,
                    lr: jax.Array, step: jax.Array, progress: jax.Array,
                    shapes: Shapes | None = None, matrix_ops: bool = True
                    ) -> tuple[jax.Array, jax.Array]:
    """One optimizer-slot call: (update, new state [max_state, *w.shape]).

    `w` is one tensor, or with `shapes` a flat vector of several (see `run`).
    """
    fill = jnp.ones_like(w)
    inputs = jnp.concatenate([jnp.stack([w, g, lr * fill, step * fill, progress * fill]), state])
    outputs = run(program, inputs, shapes, matrix_ops)
    return outputs[0], outputs[1:]


def apply_optimizer_tree(program: EncodedProgram, params: Any, grads: Any, state: jax.Array,
                         lr: jax.Array, step: jax.Array, progress: jax.Array,
                         matrix_ops: bool = True) -> tuple[Any, jax.Array]:
    """The optimizer slot on a whole parameter pytree in one interpreter call.

    The leaves travel as one flat vector (reductions and matrix ops stay per leaf, which
    they see in its shape); `state` is [max_state, total size]. Returns (updates pytree, new
    state).
    """
    leaves, treedef = jax.tree.flatten(params)
    shapes = tuple(tuple(leaf.shape) for leaf in leaves)
    sizes = [math.prod(shape) for shape in shapes]
    flat_w = jnp.concatenate([leaf.reshape(-1) for leaf in leaves])
    flat_g = jnp.concatenate([leaf.reshape(-1) for leaf in jax.tree.leaves(grads)])
    update, new_state = apply_optimizer(program, flat_w, flat_g, state, lr, step, progress,
                                        shapes, matrix_ops)
    pieces = jnp.split(update, np.cumsum(sizes)[:-1])
    updates = [piece.reshape(leaf.shape) for piece, leaf in zip(pieces, leaves)]
    return jax.tree.unflatten(treedef, updates), new_state


def flat_size(params: Any) -> int:
    """Length of the flat vector `apply_optimizer_tree` packs `params` into."""
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))
