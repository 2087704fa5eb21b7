"""Slots: the fixed call signatures at which an inner loop calls its rule.

A slot names the inputs its caller provides. Any other program parameter is a state
variable, zero-initialised with the shape of the first input; the program returns its main
result first, then the new value of each state variable in parameter order.
"""

from __future__ import annotations

from dataclasses import dataclass

from disco_rules.dsl.program import Program, ProgramError


@dataclass(frozen=True)
class Slot:
    """A call signature: `inputs` come from the caller, the rest of the params are state."""

    name: str
    inputs: tuple[str, ...]
    scalar_inputs: frozenset[str]  # given as scalars, broadcast to the first input's shape
    max_state: int

    def state_names(self, program: Program) -> tuple[str, ...]:
        return tuple(p for p in program.params if p not in self.inputs)

    def with_all_inputs(self, program: Program) -> Program:
        """`program` with the slot inputs it does not declare appended to its params (read by
        nothing yet; a mutation may start reading them). Same results, same state."""
        missing = tuple(name for name in self.inputs if name not in program.params)
        return program.replace(params=program.params + missing) if missing else program

    def check(self, program: Program) -> None:
        """Raise ProgramError unless `program` can be called at this slot."""
        state = self.state_names(program)
        if len(state) > self.max_state:
            raise ProgramError(
                f"the {self.name} slot allows at most {self.max_state} state variables, "
                f"{program.name} has {len(state)} ({', '.join(state)})")
        expected = 1 + len(state)
        if len(program.outputs) != expected:
            what = f"the result and {len(state)} state value(s)" if state else "one result"
            raise ProgramError(
                f"{program.name} must return {what} ({expected} values), "
                f"it returns {len(program.outputs)}")


OPTIMIZER = Slot(
    name="optimizer",
    inputs=("w", "g", "lr", "step", "progress"),
    scalar_inputs=frozenset({"lr", "step", "progress"}),
    max_state=4,
)
"""(param, grad, state..., lr, step, progress) -> (update, new state...); the update is
subtracted from the weight."""

OBJECTIVE = Slot(
    name="objective",
    inputs=("ratio", "advantage", "progress"),
    scalar_inputs=frozenset({"progress"}),
    max_state=0,
)
"""(ratio, advantage, progress) -> drift >= 0, zero at ratio 1: the LPO policy objective is
ratio * advantage - drift."""

SLOTS: dict[str, Slot] = {OPTIMIZER.name: OPTIMIZER, OBJECTIVE.name: OBJECTIVE}


def slot_of(program: Program) -> Slot:
    """The slot whose inputs `program` reads: the objective slot when all of its parameters
    are objective inputs (ratio, advantage, progress), else the optimizer slot."""
    return OBJECTIVE if set(program.params) <= set(OBJECTIVE.inputs) else OPTIMIZER
