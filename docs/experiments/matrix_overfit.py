"""Is the held-out matrix completion family an optimization problem or an overfitting one?
Each rule (a DSL program file or RUN:ID, exported as optax: `outside_check.load_rule`) trains
`matrix_completion` (its shape `--shape`) at each batch size x horizon and lr on a few seeds;
printed per point: the mean final training loss on all
observed entries, the mean final validation loss (what `disco transfer` scores) and the mean
of each run's lowest validation loss along training (what early stopping would keep).

    .venv/bin/python docs/experiments/matrix_overfit.py \
        docs/experiments/programs/cautious_adamw.py dsl/programs/adamw.py [RUN:ID ...] \
        [--settings 128:4000,1024:4000] [--lrs 0.032,0.1,0.32] [--seeds 4] [--shape 64:48:8]

Seed s: data, initialisation and minibatches from jax.random.PRNGKey(s), the same for every
optimizer (not the keys `disco transfer` uses). What it does not establish: one family's
defaults (a matrix of true rank 3, noise 0.1, 30% of entries observed) at a few shapes.
"""

from __future__ import annotations

import argparse
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from outside_check import Optimizer, load_rule

from disco_rules.discovery.tasks.family import Task
from disco_rules.discovery.tasks.heldout import observed_entries


def curves(task: Task, make: Optimizer, lr: float, seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Training loss on every observed entry and validation loss after each step, [seed,
    step], the seeds vmapped."""
    problem = task.build()
    tx = make(lr)

    def run(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_data, k_init, k_batch = jax.random.split(jax.random.PRNGKey(seed), 3)
        data = problem.data(k_data)
        params = problem.init(k_init)

        def step(carry: Any, t: jax.Array) -> tuple[Any, tuple[jax.Array, jax.Array]]:
            params, state = carry
            batch = problem.train_batch(jax.random.fold_in(k_batch, t), data)
            grads = jax.grad(problem.loss)(params, batch)
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), (problem.loss(params, data["observed"]),
                                     problem.validation_loss(params, data))

        return jax.lax.scan(step, (params, tx.init(params)), jnp.arange(problem.horizon))[1]

    train, validation = jax.jit(jax.vmap(run))(jnp.arange(seeds))
    return np.asarray(train), np.asarray(validation)


def main(argv: Sequence[str] | None = None) -> None:
    """Print one line per setting x optimizer x lr, means over seeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="+")
    parser.add_argument("--settings", default="32:1000,128:4000,512:4000,1024:1000,1024:4000",
                        help="batch_size:horizon pairs")
    parser.add_argument("--lrs", default="0.01,0.032,0.1,0.32")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--shape", default="64:48:8", help="rows:cols:rank (the family's "
                        "defaults and the held-out tasks' rank)")
    args = parser.parse_args(argv)
    optimizers = [load_rule(spec) for spec in args.programs]
    rows, cols, rank = (int(x) for x in args.shape.split(":"))
    print(f"parameters (rows + cols) x rank = {(rows + cols) * rank}; observed entries "
          f"{observed_entries(rows, cols)}")
    print("batch horizon optimizer lr | final train | final validation | lowest validation")
    for setting in args.settings.split(","):
        batch, horizon = (int(x) for x in setting.split(":"))
        task = Task.make("matrix_completion", rows=rows, cols=cols, rank=rank,
                         batch_size=batch, horizon=horizon)
        for name, make in optimizers:
            for lr in (float(x) for x in args.lrs.split(",")):
                train, validation = curves(task, make, lr, args.seeds)
                final, lowest = validation[:, -1].mean(), validation.min(axis=1).mean()
                print(f"{batch} {horizon} {name} {lr:g} | {train[:, -1].mean():.4f} | "
                      f"{final:.4f} | {lowest:.4f}", flush=True)


if __name__ == "__main__":
    main()
