"""Random edits of programs: the variation operator of the evolutionary search.

As in the search that found Lion, a mutation inserts, deletes or modifies one statement. Every
mutant is a new valid Program with its parent's params and number of outputs, so it still fits
the slot its parent was written for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from disco_rules.dsl.ops import OP_NAMES, OPS
from disco_rules.dsl.program import Const, Operand, Program, Stmt

MUTATION_KINDS: tuple[str, ...] = ("insert", "delete", "change_arg", "change_op", "perturb_const")

# New constants: half from values optimizers tend to use, half log-uniform in [1e-3, 10].
_COMMON_CONSTANTS: tuple[float, ...] = (0.5, 1.0, 2.0, 0.1, 0.01, 0.9, 0.99, 0.999, 1e-8)
_MAX_MAGNITUDE = 1e12  # perturbed constants stay finite however long the chain

DEFAULT_OPS: tuple[str, ...] = tuple(name for name in OP_NAMES
                                     if name != "copy" and not OPS[name].matrix)
"""The ops mutations draw from unless told otherwise: every op but `copy` and the matrix ops
(`orth`), which a search opts into (`[population] ops`), so that existing configs and seeds
draw the same children as before there were matrix ops."""

Site = tuple[int, int]
"""Where a value is read: (statement index, argument index); index len(body) is the return."""


@dataclass(frozen=True)
class MutationConfig:
    """How `mutate` edits programs: size limit, constant sampling, allowed ops, kind weights."""

    max_statements: int = 24
    constant_probability: float = 0.2  # chance that a new argument is a constant, not a name
    constant_scale: float = 0.5  # sigma of the log-normal factor that perturbs a constant
    sign_flip_probability: float = 0.05  # chance that a perturbation also flips the sign
    ops: tuple[str, ...] = DEFAULT_OPS
    insert_weight: float = 1.0
    delete_weight: float = 1.0
    change_arg_weight: float = 1.0
    change_op_weight: float = 1.0
    perturb_const_weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        unknown = [op for op in self.ops if op not in OPS]
        if unknown:
            raise ValueError(f"unknown ops {unknown}; valid ops: {', '.join(OP_NAMES)}")
        if self.max_statements < 0:
            raise ValueError("max_statements must be at least 0")
        weights = self.weights()
        if any(w < 0 for w in weights.values()) or not any(weights.values()):
            raise ValueError(f"kind weights must be non-negative, not all zero: {weights}")

    def weights(self) -> dict[str, float]:
        """The weight of each mutation kind, by name."""
        return {kind: getattr(self, f"{kind}_weight") for kind in MUTATION_KINDS}


def mutate(program: Program, rng: np.random.Generator,
           config: MutationConfig = MutationConfig()) -> Program:
    """One random mutation of `program`; kinds that cannot apply give way to those that can.

    Raises ValueError when no kind with positive weight applies (e.g. an empty body with
    max_statements 0)."""
    weights = config.weights()
    kinds = [k for k in MUTATION_KINDS if weights[k] > 0 and _MUTATIONS[k][0](program, config)]
    if not kinds:
        raise ValueError(f"no mutation with positive weight applies to {program.name}")
    probabilities = np.array([weights[k] for k in kinds])
    kind = kinds[rng.choice(len(kinds), p=probabilities / probabilities.sum())]
    return _MUTATIONS[kind][1](program, rng, config)


def mutation_chain(program: Program, rng: np.random.Generator, n: int,
                   config: MutationConfig = MutationConfig()) -> Program:
    """`n` successive mutations of `program`."""
    for _ in range(n):
        program = mutate(program, rng, config)
    return program


def random_program(rng: np.random.Generator, n_statements: int,
                   params: tuple[str, ...] = ("w", "g", "m", "lr"), n_outputs: int = 2,
                   config: MutationConfig = MutationConfig(), name: str = "rule") -> Program:
    """A random program of `n_statements` statements, grown by inserts from one that returns
    its params; every output reads a body value when the body is not empty."""
    if not 0 <= n_statements <= config.max_statements:
        raise ValueError(f"n_statements must be in [0, {config.max_statements}]")
    if not params or n_outputs < 1:
        raise ValueError("a random program needs at least one param and one output")
    if n_statements and not config.ops:
        raise ValueError("no ops to build statements from")
    outputs = tuple(params[k % len(params)] for k in range(n_outputs))
    program = Program(name, tuple(params), (), outputs)
    for _ in range(n_statements):
        program = _insert(program, rng, config)
    return _outputs_from_body(program, rng)


def _outputs_from_body(program: Program, rng: np.random.Generator) -> Program:
    """Point outputs that return a param at body values, unread ones first."""
    if not program.body:
        return program
    results = [stmt.out for stmt in program.body]
    used = set(program.used_names())
    outputs = list(program.outputs)
    for index, out in enumerate(outputs):
        if out in program.params:
            unread = [r for r in results if r not in used]
            choices = unread or results
            outputs[index] = choices[rng.integers(len(choices))]
            used.add(outputs[index])
    return program.replace(outputs=tuple(outputs))


# --- the mutation kinds: each a (can_apply, apply) pair ------------------------------------


def _can_insert(program: Program, config: MutationConfig) -> bool:
    return len(program.body) < config.max_statements and bool(config.ops)


def _insert(program: Program, rng: np.random.Generator, config: MutationConfig) -> Program:
    """Insert a random statement and make one later read (or an output) read its result."""
    position = int(rng.integers(len(program.body) + 1))
    op = config.ops[rng.integers(len(config.ops))]
    names = program.defined_before(position)
    args = [_random_operand(rng, names, config) for _ in range(OPS[op].arity)]
    if names and all(isinstance(a, Const) for a in args):
        args[rng.integers(len(args))] = names[rng.integers(len(names))]
    stmt = Stmt(_fresh_name(program), op, tuple(args))
    body = program.body[:position] + (stmt,) + program.body[position:]
    sites = _read_sites(body, program.outputs, start=position + 1)
    body, outputs = _redirect(body, program.outputs, sites[rng.integers(len(sites))], stmt.out)
    return program.replace(body=body, outputs=outputs)


def _can_delete(program: Program, config: MutationConfig) -> bool:
    return any(_deletable(program, index) for index in range(len(program.body)))


def _deletable(program: Program, index: int) -> bool:
    """A statement can go if something defined before it can stand in for its result."""
    return bool(program.defined_before(index)) \
        or program.body[index].out not in program.used_names()


def _delete(program: Program, rng: np.random.Generator, config: MutationConfig) -> Program:
    """Delete a statement; its readers read one of its own name args instead, where it has
    one, else another value defined before it."""
    candidates = [i for i in range(len(program.body)) if _deletable(program, i)]
    index = candidates[rng.integers(len(candidates))]
    deleted = program.body[index]
    stand_ins = list(dict.fromkeys(deleted.names())) or list(program.defined_before(index))
    body = program.body[:index] + program.body[index + 1:]
    outputs = program.outputs
    if stand_ins:
        stand_in = stand_ins[rng.integers(len(stand_ins))]
        for site in _read_sites(body, outputs, start=index):
            if _read(body, outputs, site) == deleted.out:
                body, outputs = _redirect(body, outputs, site, stand_in)
    return program.replace(body=body, outputs=outputs)


def _can_change_arg(program: Program, config: MutationConfig) -> bool:
    return bool(program.body)


def _change_arg(program: Program, rng: np.random.Generator, config: MutationConfig) -> Program:
    """Replace one argument by another name defined before its statement, or a constant."""
    sites = [(i, k) for i, stmt in enumerate(program.body) for k in range(len(stmt.args))]
    index, position = sites[rng.integers(len(sites))]
    current = program.body[index].args[position]
    names = [n for n in program.defined_before(index) if n != current]
    new: Operand
    if names and rng.random() >= config.constant_probability:
        new = names[rng.integers(len(names))]
    else:
        new = _random_constant(rng)
        while new == current:
            new = _random_constant(rng)
    return program.replace(body=_set_arg(program.body, (index, position), new))


def _op_alternatives(stmt: Stmt, config: MutationConfig) -> list[str]:
    arity = OPS[stmt.op].arity
    return [op for op in config.ops if OPS[op].arity == arity and op != stmt.op]


def _can_change_op(program: Program, config: MutationConfig) -> bool:
    return any(_op_alternatives(stmt, config) for stmt in program.body)


def _change_op(program: Program, rng: np.random.Generator, config: MutationConfig) -> Program:
    """Give one statement another allowed op of the same arity."""
    candidates = [i for i, stmt in enumerate(program.body) if _op_alternatives(stmt, config)]
    index = candidates[rng.integers(len(candidates))]
    stmt = program.body[index]
    alternatives = _op_alternatives(stmt, config)
    new = Stmt(stmt.out, alternatives[rng.integers(len(alternatives))], stmt.args)
    return program.replace(body=program.body[:index] + (new,) + program.body[index + 1:])


def _constant_sites(program: Program) -> list[Site]:
    return [(i, k) for i, stmt in enumerate(program.body)
            for k, arg in enumerate(stmt.args) if isinstance(arg, Const)]


def _can_perturb_const(program: Program, config: MutationConfig) -> bool:
    return bool(_constant_sites(program))


def _perturb_const(program: Program, rng: np.random.Generator,
                   config: MutationConfig) -> Program:
    """Scale one constant by a log-normal factor, rarely flipping its sign; a zero is redrawn."""
    sites = _constant_sites(program)
    site = sites[rng.integers(len(sites))]
    value = program.body[site[0]].args[site[1]].value  # type: ignore[union-attr]
    factor = math.exp(rng.normal(0.0, config.constant_scale))
    sign = -1.0 if rng.random() < config.sign_flip_probability else 1.0
    if value == 0.0:
        new = _random_constant(rng)
    else:
        new = Const(sign * math.copysign(min(abs(value) * factor, _MAX_MAGNITUDE), value))
    return program.replace(body=_set_arg(program.body, site, new))


_MUTATIONS: dict[str, tuple[Callable[[Program, MutationConfig], bool],
                            Callable[[Program, np.random.Generator, MutationConfig], Program]]] = {
    "insert": (_can_insert, _insert),
    "delete": (_can_delete, _delete),
    "change_arg": (_can_change_arg, _change_arg),
    "change_op": (_can_change_op, _change_op),
    "perturb_const": (_can_perturb_const, _perturb_const),
}


# --- helpers ------------------------------------------------------------------------------


def _random_constant(rng: np.random.Generator) -> Const:
    if rng.random() < 0.5:
        return Const(_COMMON_CONSTANTS[rng.integers(len(_COMMON_CONSTANTS))])
    return Const(float(f"{10.0 ** rng.uniform(-3.0, 1.0):.3g}"))


def _random_operand(rng: np.random.Generator, names: tuple[str, ...],
                    config: MutationConfig) -> Operand:
    if names and rng.random() >= config.constant_probability:
        return names[rng.integers(len(names))]
    return _random_constant(rng)


def _fresh_name(program: Program) -> str:
    taken = program.all_names() | {program.name}
    index = 0
    while f"v{index}" in taken:
        index += 1
    return f"v{index}"


def _read_sites(body: tuple[Stmt, ...], outputs: tuple[str, ...], start: int) -> list[Site]:
    """Every read of a name by the statements from `start` on, then every output."""
    sites = [(i, k) for i in range(start, len(body))
             for k, arg in enumerate(body[i].args) if isinstance(arg, str)]
    return sites + [(len(body), k) for k in range(len(outputs))]


def _read(body: tuple[Stmt, ...], outputs: tuple[str, ...], site: Site) -> Operand:
    index, position = site
    return outputs[position] if index == len(body) else body[index].args[position]


def _redirect(body: tuple[Stmt, ...], outputs: tuple[str, ...], site: Site,
              name: str) -> tuple[tuple[Stmt, ...], tuple[str, ...]]:
    """Body and outputs with the read at `site` reading `name` instead."""
    index, position = site
    if index == len(body):
        return body, outputs[:position] + (name,) + outputs[position + 1:]
    return _set_arg(body, site, name), outputs


def _set_arg(body: tuple[Stmt, ...], site: Site, operand: Operand) -> tuple[Stmt, ...]:
    index, position = site
    stmt = body[index]
    args = stmt.args[:position] + (operand,) + stmt.args[position + 1:]
    return body[:index] + (Stmt(stmt.out, stmt.op, args),) + body[index + 1:]
