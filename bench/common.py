"""What the benchmark scripts share: the random programs they time."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from disco_rules.dsl.interpreter import Encoding, EncodingError
from disco_rules.dsl.mutate import MutationConfig, mutation_chain
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program
from disco_rules.dsl.simplify import simplify

EXAMPLES = Path(__file__).resolve().parent.parent / "dsl" / "programs"
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "lion")  # the optimizer-slot examples


def random_programs(n: int, seed: int, max_statements: int, max_chain: int = 5
                    ) -> list[Program]:
    """`n` mutation chains (1 to `max_chain` mutations) of the example optimizers,
    simplified as the search simplifies every candidate before evaluating it."""
    rng = np.random.default_rng(seed)
    parents = [parse((EXAMPLES / f"{name}.py").read_text()) for name in OPTIMIZERS]
    config = MutationConfig(max_statements=max_statements)
    encoding = Encoding(max_statements=max_statements)
    programs: list[Program] = []
    while len(programs) < n:
        parent = parents[int(rng.integers(len(parents)))]
        program = simplify(mutation_chain(parent, rng, int(rng.integers(1, max_chain + 1)),
                                          config))
        try:
            encoding.encode(program)
        except EncodingError:  # too many statements for the slot: not a program it can run
            continue
        programs.append(program)
    return programs


def screen_arguments(doc: str, programs: int) -> argparse.Namespace:
    """The command line of a screen's benchmark (`doc`: its module docstring): how many
    random programs (default `programs`), programs per compiled training call, seed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--programs", type=int, default=programs)
    parser.add_argument("--batch", type=int, default=16, help="programs per training call")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()
