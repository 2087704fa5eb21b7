"""Distillation: a readable closed-form drift from a learned one.

A program search in the objective slot whose fitness is the error against a drift network on
a grid of (ratio, advantage, progress), as LPO's authors distilled DPO from their learned
drift. Warm-started from PPO's clip and DPO; programs are scored with the reference evaluator
(numpy), which is cheap at a grid's size. The winner is then checked the way that matters,
by training agents with it (`disco distill` scores it next to the network on the run's
held-out tasks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from disco_rules.dsl import library
from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.identity import canonical_hash
from disco_rules.dsl.mutate import MutationConfig
from disco_rules.dsl.program import Program
from disco_rules.dsl.simplify import simplify
from disco_rules.dsl.slots import OBJECTIVE
from disco_rules.populations.evolution import EvolutionState, Member, RegularizedEvolution

DriftFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(ratio, advantage, progress) arrays of one shape -> drift."""
WARM_START = ("ppo_clip", "dpo")


@dataclass(frozen=True)
class DistillConfig:
    """The program search's size: evaluations, population, tournament, program length."""

    evaluations: int = 2000
    population: int = 64
    tournament: int = 8
    children: int = 32
    max_statements: int = 16
    seed: int = 0


@dataclass(frozen=True)
class Distilled:
    """The best program found, its relative squared error on the grid, and the history of
    the best error after each generation."""

    program: Program
    error: float
    history: tuple[float, ...]


def drift_grid(temporally_aware: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat (ratio, advantage, progress) points: ratio 0.5..2 (log-spaced), advantage -3..3,
    and progress 0..1 in five steps for a temporally-aware drift (else 0.5)."""
    ratio = np.exp(np.linspace(np.log(0.5), np.log(2.0), 25))
    advantage = np.linspace(-3.0, 3.0, 25)
    progress = np.linspace(0.0, 1.0, 5) if temporally_aware else np.array([0.5])
    grid = np.meshgrid(ratio, advantage, progress, indexing="ij")
    return tuple(axis.ravel().astype(np.float32) for axis in grid)


def relative_error(program: Program, grid: tuple[np.ndarray, ...], target: np.ndarray) -> float:
    """Mean squared error of the program's drift against `target`, over the target's mean
    square; inf where the program gives a non-finite value."""
    ratio, advantage, progress = grid
    with np.errstate(all="ignore"):
        (drift,) = evaluate(program, {"ratio": ratio, "advantage": advantage,
                                      "progress": progress})
        drift = np.broadcast_to(np.asarray(drift, np.float64), target.shape)
        if not np.all(np.isfinite(drift)):
            return float("inf")
        return float(np.mean((drift - target) ** 2) / max(np.mean(target ** 2), 1e-12))


def warm_start_programs() -> list[Program]:
    return [library.program(name) for name in WARM_START]


def distill(drift: DriftFunction, temporally_aware: bool, config: DistillConfig = DistillConfig(),
            on_evaluation: Callable[[], None] | None = None) -> Distilled:
    """Regularized evolution of objective-slot programs towards `drift` on `drift_grid`;
    `on_evaluation()` is called after each new program is scored (for progress)."""
    grid = drift_grid(temporally_aware)
    target = np.asarray(drift(*grid), np.float64)
    evolution = RegularizedEvolution(config.population, config.tournament,
                                     MutationConfig(max_statements=config.max_statements))
    rng = np.random.default_rng(config.seed)
    known: dict[str, float] = {}  # canonical hash -> error: each function scored once
    best: tuple[float, Program] | None = None
    history = []
    state, next_id, evaluations = EvolutionState(), 0, 0
    while evaluations < config.evaluations:
        if not state.members:
            children = evolution.initial(warm_start_programs(), rng)
        else:
            children = evolution.ask(state, rng, config.children)
        members = []
        for child in children:
            key = canonical_hash(child.program, OBJECTIVE)
            if key not in known:
                known[key] = relative_error(child.program, grid, target)
                evaluations += 1
                if on_evaluation is not None:
                    on_evaluation()
            error = known[key]
            members.append(Member(next_id, child.program, -error))
            next_id += 1
            if best is None or error < best[0]:
                best = (error, child.program)
        state = evolution.tell(state, members)
        history.append(best[0])
    return Distilled(simplify(best[1]), best[0], tuple(history))
