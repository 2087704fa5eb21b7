"""Regularized evolution over programs (Real et al. 2019; the search that found Lion).

ask/tell over an immutable state: a child is a mutation of the fittest of a random
tournament; members age out oldest-first, whatever their fitness, except the `elite` fittest
working members, which stay while they lead. A failed child (fitness -inf or NaN: screened
out, diverged) joins as the oldest member, so it leaves first and never pushes a working
member out: a search whose mutants mostly fail keeps its working members.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from disco_rules.dsl.mutate import MutationConfig, mutate
from disco_rules.dsl.parser import parse
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Program


@dataclass(frozen=True)
class Member:
    """An evaluated candidate in the population."""

    id: int
    program: Program
    fitness: float


@dataclass(frozen=True)
class Child:
    """A candidate asked for: its program and the member it was mutated from."""

    program: Program
    parent_id: int | None


@dataclass(frozen=True)
class EvolutionState:
    members: tuple[Member, ...] = ()  # oldest first


@dataclass(frozen=True)
class RegularizedEvolution:
    """Tournament selection, mutation, and removal of the oldest member that is not among
    the `elite` fittest."""

    size: int
    tournament: int
    mutation: MutationConfig = MutationConfig()
    elite: int = 0

    def initial(self, warm_start: list[Program], rng: np.random.Generator) -> list[Child]:
        """The first `size` candidates: each warm start, then mutants of them, whose parent id
        is their warm start's index (its id: generation 0 numbers its candidates from 0)."""
        children = [Child(p, None) for p in warm_start[: self.size]]
        while len(children) < self.size:
            index = int(rng.integers(len(warm_start)))
            children.append(Child(mutate(warm_start[index], rng, self.mutation), index))
        return children

    def ask(self, state: EvolutionState, rng: np.random.Generator, n: int) -> list[Child]:
        """`n` children, each a mutation of a tournament winner."""
        return [self._child(state, rng) for _ in range(n)]

    def _child(self, state: EvolutionState, rng: np.random.Generator) -> Child:
        k = min(self.tournament, len(state.members))
        picks = rng.choice(len(state.members), size=k, replace=False)
        # ties go to the youngest contender
        winner = max(picks, key=lambda i: (state.members[i].fitness, i))
        parent = state.members[winner]
        return Child(mutate(parent.program, rng, self.mutation), parent.id)

    def tell(self, state: EvolutionState, members: list[Member]) -> EvolutionState:
        """Add evaluated members, failed ones as the oldest; the oldest that are not among the
        `elite` fittest working members leave so that at most `size` remain."""
        failed = tuple(m for m in members if not math.isfinite(m.fitness))
        working = tuple(m for m in members if math.isfinite(m.fitness))
        pool = failed + state.members + working
        excess = len(pool) - self.size
        if excess <= 0:
            return EvolutionState(pool)
        # ties between equally fit members go to the older, the incumbent
        ranked = sorted((i for i, m in enumerate(pool) if math.isfinite(m.fitness)),
                        key=lambda i: (-pool[i].fitness, i))
        kept = set(ranked[:self.elite])
        leaving = set([i for i in range(len(pool)) if i not in kept][:excess])
        return EvolutionState(tuple(m for i, m in enumerate(pool) if i not in leaving))


def state_to_data(state: EvolutionState) -> list[dict]:
    """Plain data for a msgpack checkpoint (programs as text, never pickled)."""
    return [{"id": m.id, "program": to_text(m.program), "fitness": m.fitness}
            for m in state.members]


def state_from_data(data: list[dict]) -> EvolutionState:
    return EvolutionState(tuple(Member(d["id"], parse(d["program"]), float(d["fitness"]))
                                for d in data))
