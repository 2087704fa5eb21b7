"""Programs as fixed-size arrays, and one JAX interpreter that runs any of them.

A program encodes into integer and float arrays of a fixed size (`Encoding`), so a whole
population is one array with a leading axis and runs through one compiled function: no
per-program compilation. Registers hold every value of a program: first the slot's inputs,
then its state variables, then one register per statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dsl.ops import MAX_ARITY, OP_CODES, OP_NAMES, OPS
from dsl.program import Const, Program, ProgramError
from dsl.slots import OPTIMIZER, Slot


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
    """The fixed sizes programs of one slot are encoded to."""

    slot: Slot = OPTIMIZER
    max_statements: int = 32

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


def _branch(name: str) -> Any:
    op = OPS[name]
    return lambda args: op.fn(jnp, *args[: op.arity])


_BRANCHES = tuple(_branch(name) for name in OP_NAMES)


def run(program: EncodedProgram, inputs: jax.Array) -> jax.Array:
    """Outputs [1 + max_state, ...] of one encoded program on `inputs` [n_inputs, ...].

    Pure and traceable: `jax.vmap` or `jax.lax.map` runs a population of different programs
    through one compilation.
    """
    program = EncodedProgram(*(jnp.asarray(field) for field in program))
    n_statements = program.ops.shape[0]
    registers = jnp.concatenate(
        [inputs, jnp.zeros((n_statements,) + inputs.shape[1:], inputs.dtype)])
    n_inputs = inputs.shape[0]

    def read(i: jax.Array, k: int, registers: jax.Array) -> jax.Array:
        index = program.args[i, k]
        value = registers[jnp.maximum(index, 0)]
        return jnp.where(index >= 0, value, program.consts[i, k].astype(inputs.dtype))

    def body(i: jax.Array, registers: jax.Array) -> jax.Array:
        args = [read(i, k, registers) for k in range(MAX_ARITY)]
        result = jax.lax.switch(program.ops[i], _BRANCHES, args)
        return registers.at[n_inputs + i].set(result.astype(inputs.dtype))

    registers = jax.lax.fori_loop(0, program.length, body, registers)
    return registers[program.outputs]


def apply_optimizer(program: EncodedProgram, w: jax.Array, g: jax.Array, state: jax.Array,
                    lr: jax.Array, step: jax.Array, progress: jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
    """One optimizer-slot call on one tensor: (update, new state [max_state, *w.shape])."""
    fill = jnp.ones_like(w)
    inputs = jnp.concatenate([jnp.stack([w, g, lr * fill, step * fill, progress * fill]), state])
    outputs = run(program, inputs)
    return outputs[0], outputs[1:]
