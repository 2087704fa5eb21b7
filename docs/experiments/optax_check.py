"""Does a run's candidate, exported as an optax module, train as the interpreter trains it?
Final validation losses of both on each of the run's held-out tasks, same lr and seeds.

    .venv/bin/python docs/experiments/optax_check.py RUN ID --lr 0.0032 [--seeds 8]
"""

from __future__ import annotations

import argparse
import types
from typing import Sequence

import jax
import numpy as np

from disco_rules.api import open_run
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner.train import evaluate_population, make_optax_train
from disco_rules.discovery.plan import TaskPlan
from disco_rules.dsl.interpreter import Encoding


def main(argv: Sequence[str] | None = None) -> None:
    """Print, per held-out task, both paths' mean final loss and their largest relative gap."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("id", type=int)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--run-seed", type=int, default=3, help="the keys' seed (default 3: "
                        "`disco transfer`'s scoring keys for a run of seed 1)")
    args = parser.parse_args(argv)
    run = open_run(args.run)
    candidate = run.candidate(args.id)
    module = types.ModuleType("exported")
    exec(candidate.export("optax"), module.__dict__)  # the file `disco export` writes
    encoding = Encoding(max_statements=max(run.config.population.max_statements,
                                           len(candidate.program.body)))
    for task in TaskPlan.from_config(run.config).heldout:
        keys = task_keys(task, args.seeds, args.run_seed)
        interpreted = evaluate_population(task, encoding,
                                          encoding.encode_population([candidate.program]),
                                          np.asarray([args.lr], np.float32), keys)
        ours = np.asarray(interpreted.final_loss[0, 0], np.float64)
        train = jax.jit(jax.vmap(make_optax_train(task, module.optimizer), in_axes=(None, 0)))
        exported = np.asarray(train(np.float32(args.lr), keys).final_loss, np.float64)
        gap = np.max(np.abs(exported - ours) / np.abs(ours))
        print(f"{task.key}: interpreter {ours.mean():.5g}, optax export {exported.mean():.5g}, "
              f"largest relative gap over {args.seeds} seeds {gap:.2g}")


if __name__ == "__main__":
    main()
