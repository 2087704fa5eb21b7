"""Does a run's discovered optimizer transfer? Its winner (and its best by validation) and the
shipped optimizers against AdamW tuned per task, on the run's held-out tasks and on variants
of them the run never saw.

    .venv/bin/python docs/experiments/transfer.py RUN [--ids ID ...] [--seeds 8] [--out FILE.md]

One protocol for every optimizer: each trains on the same tuning seeds (keys from
`evaluator.task_keys`, so the same data splits and initialisations) at every point of its grid
(programs: LR_GRID; AdamW: LR_GRID x WEIGHT_DECAYS, 0 = Adam), is taken at the point with the
lowest mean over those seeds of log final validation loss (`lr_scores`, as the run tunes its
baselines), and is then trained at that point on as many fresh scoring seeds. A score is
log(tuned AdamW loss / optimizer loss) per task and scoring seed, paired by seed: 0 = as good
as tuned AdamW, +0.1 = about 10% lower loss. Scoring on seeds no tuning saw keeps the
best-of-grid luck (larger for AdamW's 35 points than a program's 7) out of the scores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from disco_rules.api import Run, open_run
from disco_rules.discovery import compile_cache
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner.train import (CURVE_POINTS, LOSS_FLOOR, TrainResult, adamw_decay,
                                               evaluate_population, lr_scores, make_optax_train)
from disco_rules.discovery.pareto import validated_programs
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.selection import simplest_within_noise, standard_error
from disco_rules.discovery.store import RunStore
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.tasks.family import family
from disco_rules.dsl import library
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Program
from disco_rules.dsl.simplify import simplify

# Variants of each held-out task: each scales the integer parameters it names that the task's
# family has (horizon, or the model's width: `width`, `channels`, `head_dim`).
# Cheapest first: `--tasks N` cuts the suite from the end.
VARIANTS: tuple[tuple[str, dict[str, float]], ...] = (
    ("0.5x horizon", {"horizon": 0.5}),
    ("2x wider", {"width": 2.0, "channels": 2.0, "head_dim": 2.0}),
    ("2x horizon", {"horizon": 2.0}),
)
LR_GRID: tuple[float, ...] = tuple(float(lr) for lr in np.logspace(-4, -1, 7))
WEIGHT_DECAYS: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)
REFERENCES: tuple[str, ...] = ("adam", "lion", "sgd", "momentum")


# -- one task ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tuned:
    """An optimizer at its chosen grid point on one task (NaN lr: no point worked)."""

    lr: float
    weight_decay: float  # AdamW's; NaN for a program
    losses: np.ndarray  # [S] final validation loss per seed; +inf where no point worked
    curve: np.ndarray  # [CURVE_POINTS] mean validation curve over the seeds


def _choose(result: TrainResult, lrs: np.ndarray, decays: np.ndarray) -> Tuned:
    """The grid point [G] of a [G, S] result with the lowest `lr_scores`."""
    scores = lr_scores(result)
    seeds = np.asarray(result.final_loss).shape[1]
    if not np.isfinite(scores).any():
        return Tuned(math.nan, math.nan, np.full(seeds, np.inf), np.full(CURVE_POINTS, np.nan))
    best = int(np.argmin(scores))
    return Tuned(float(lrs[best]), float(decays[best]),
                 np.asarray(result.final_loss[best], np.float64),
                 np.mean(np.asarray(result.curve[best], np.float64), axis=0))


def tune_adamw(task: Task, lrs: Sequence[float], weight_decays: Sequence[float],
               keys: jax.Array) -> Tuned:
    """AdamW (optax) trained at every (lr, weight decay) pair on every key in one compiled
    call, at its best pair."""
    grid_lr, grid_decay = (a.ravel().astype(np.float32) for a in
                           np.meshgrid(np.asarray(lrs), np.asarray(weight_decays), indexing="ij"))
    train = make_optax_train(task, lambda point: adamw_decay(point[0], point[1]))
    over_grid = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    result = over_grid(jnp.stack([grid_lr, grid_decay], axis=1), keys)
    return _choose(TrainResult(*(np.asarray(x) for x in result)), grid_lr, grid_decay)


def tune_programs(task: Task, encoding: Encoding, programs: Sequence[Program],
                  lrs: Sequence[float], keys: jax.Array) -> list[Tuned]:
    """Every program at every lr and key in one interpreter call, each at its best lr."""
    lrs = np.asarray(lrs, np.float32)
    result = evaluate_population(task, encoding, encoding.encode_population(programs), lrs, keys)
    result = TrainResult(*(np.asarray(x) for x in result))
    return [_choose(TrainResult(*(x[p] for x in result)), lrs, np.full(len(lrs), np.nan))
            for p in range(len(programs))]


def paired_scores(baseline: Tuned, tuned: Tuned) -> np.ndarray:
    """log(baseline loss / optimizer loss) per seed (losses floored at LOSS_FLOOR); -inf for
    an optimizer that worked at no grid point."""
    with np.errstate(divide="ignore"):
        return (np.log(np.maximum(baseline.losses, LOSS_FLOOR))
                - np.log(np.maximum(tuned.losses, LOSS_FLOOR)))


@dataclass(frozen=True)
class TaskResult:
    """Tuned AdamW and every optimizer on one task, on the same seeds."""

    task: Task
    baseline: Tuned
    optimizers: dict[str, Tuned]

    def scores(self, name: str) -> np.ndarray:
        """Optimizer `name`'s paired scores [S] against tuned AdamW."""
        return paired_scores(self.baseline, self.optimizers[name])


def _entry(task: Task, seeds: int, run_seed: int, lrs: Sequence[float], optimizer: str) -> str:
    """The cache key of one optimizer's tuning on a task: everything its result depends on."""
    return json.dumps([task.key, seeds, run_seed, [float(lr) for lr in lrs], optimizer])


def _stored(tuned: Tuned) -> dict[str, object]:
    return {"lr": tuned.lr, "weight_decay": tuned.weight_decay,
            "losses": tuned.losses.tolist(), "curve": tuned.curve.tolist()}


def _loaded(stored: Mapping[str, object]) -> Tuned:
    return Tuned(float(stored["lr"]), float(stored["weight_decay"]),
                 np.asarray(stored["losses"], np.float64), np.asarray(stored["curve"], np.float64))


def score_adamw(task: Task, chosen: Tuned, keys: jax.Array) -> Tuned:
    """AdamW at its chosen (lr, weight decay), trained on `keys`."""
    if not math.isfinite(chosen.lr):
        return chosen
    scored = tune_adamw(task, [chosen.lr], [chosen.weight_decay], keys)
    return replace(chosen, losses=scored.losses, curve=scored.curve)


def score_program(task: Task, encoding: Encoding, program: Program, chosen: Tuned,
                  keys: jax.Array) -> Tuned:
    """`program` at its chosen lr, trained on `keys`."""
    if not math.isfinite(chosen.lr):
        return chosen
    scored = tune_programs(task, encoding, [program], [chosen.lr], keys)[0]
    return replace(chosen, losses=scored.losses, curve=scored.curve)


def evaluate_task(task: Task, programs: Mapping[str, Program], encoding: Encoding,
                  seeds: int, run_seed: int, test_seed: int, lrs: Sequence[float] = LR_GRID,
                  weight_decays: Sequence[float] = WEIGHT_DECAYS,
                  cache: dict[str, dict] | None = None) -> TaskResult:
    """Tuned AdamW and each program on `task`: each tuned on the keys `task_keys(task, seeds,
    run_seed)` and scored at its chosen point on `task_keys(task, seeds, test_seed)`; the
    tunings not in `cache` (which gains every result) of the programs in one interpreter call."""
    keys = task_keys(task, seeds, run_seed)
    test_keys = task_keys(task, seeds, test_seed)
    cache = {} if cache is None else cache
    names = {"AdamW": f"optax.adamw, weight decays {[float(d) for d in weight_decays]}"}
    names.update({name: to_text(program) for name, program in programs.items()})
    tunings = {name: _entry(task, seeds, run_seed, lrs, text) for name, text in names.items()}
    if tunings["AdamW"] not in cache:
        cache[tunings["AdamW"]] = _stored(tune_adamw(task, lrs, weight_decays, keys))
    missing = [name for name in programs if tunings[name] not in cache]
    if missing:
        tuned = tune_programs(task, encoding, [programs[name] for name in missing], lrs, keys)
        cache.update({tunings[name]: _stored(t) for name, t in zip(missing, tuned)})
    scored = {}
    for name, text in names.items():
        chosen = _loaded(cache[tunings[name]])
        entry = json.dumps([task.key, seeds, test_seed, "scored at", chosen.lr,
                            chosen.weight_decay, text])
        if entry not in cache:
            cache[entry] = _stored(score_adamw(task, chosen, test_keys) if name == "AdamW" else
                                   score_program(task, encoding, programs[name], chosen,
                                                 test_keys))
        scored[name] = _loaded(cache[entry])
    baseline = scored.pop("AdamW")
    return TaskResult(task, baseline, scored)


# -- summaries --------------------------------------------------------------------------------


def mean_and_error(values: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error (std with ddof=1 over sqrt(n)); -inf/NaN if any is -inf."""
    values = np.asarray(values, np.float64).ravel()
    if not np.all(np.isfinite(values)):
        return (-math.inf if np.any(values == -np.inf) else math.nan), math.nan
    return float(values.mean()), standard_error(values)


def group_scores(results: Sequence[TaskResult], groups: Sequence[str], name: str
                 ) -> dict[str, np.ndarray]:
    """Optimizer `name`'s scores pooled over the tasks (x seeds) of each group, in order of
    first appearance, plus "overall" over every task."""
    pooled: dict[str, list[np.ndarray]] = {}
    for result, group in zip(results, groups):
        pooled.setdefault(group, []).append(result.scores(name))
    pooled["overall"] = [result.scores(name) for result in results]
    return {group: np.concatenate(parts) for group, parts in pooled.items()}


# -- the suite and the candidates -------------------------------------------------------------


def variant(task: Task, factors: Mapping[str, float]) -> Task:
    """`task` with each integer parameter named in `factors` that it has scaled, rounded and
    kept inside its family's range."""
    params, ranges = dict(task.params), family(task.family).ranges
    changed = {name: int(min(max(round(params[name] * factor), ranges[name].low),
                             ranges[name].high))
               for name, factor in factors.items() if name in params}
    return Task.make(task.family, **{**params, **changed})


def suite(plan: TaskPlan) -> list[tuple[str, str, Task]]:
    """(group, label, task): the held-out tasks (each group named by its family, or its key
    where two share a family), then, variant by variant (VARIANTS lists the cheapest first,
    for `--tasks N`), the variants of every held-out task that are none of the run's tasks."""
    families = [task.family for task in plan.heldout]
    groups = [task.family if families.count(task.family) == 1 else task.key
              for task in plan.heldout]
    rows = [(group, "held-out", task) for group, task in zip(groups, plan.heldout)]
    seen = {task.key for task in plan.all()}
    for label, factors in VARIANTS:
        for group, task in zip(groups, plan.heldout):
            new = variant(task, factors)
            if new.key not in seen:
                seen.add(new.key)
                rows.append((group, label, new))
    return rows


def default_ids(run: Run) -> list[tuple[int, str]]:
    """(id, role) of the run's chosen winner (the simplest meta-validated program within one
    standard error of the best) and its best by mean validation score; one row if the same."""
    with RunStore.open(run.run_dir, write=False) as store:
        chosen = simplest_within_noise(validated_programs(store))
    best = run.top(1)
    if chosen is None or not best:
        raise SystemExit(f"{run.run_dir}: no meta-validated program yet (--ids with no ids "
                         "evaluates only the references)")
    if chosen.id == best[0].id:
        return [(chosen.id, "winner = best valid.")]
    return [(chosen.id, "winner"), (best[0].id, "best valid.")]


# -- the report -------------------------------------------------------------------------------


def _cell(values: np.ndarray) -> str:
    mean, error = mean_and_error(values)
    if not math.isfinite(mean):
        return f"{mean}"
    return f"{mean:+.3f} ± {error:.3f}" if math.isfinite(error) else f"{mean:+.3f}"


def summary_table(results: Sequence[TaskResult], groups: Sequence[str], names: Sequence[str]
                  ) -> str:
    """Markdown: per optimizer, the mean ± SE of its scores per group and overall, and on how
    many groups (held-out families) its mean is above 0."""
    columns = list(dict.fromkeys(groups))
    lines = ["| optimizer | " + " | ".join(columns) + " | overall | families > 0 |",
             "|---" * (len(columns) + 3) + "|"]
    for name in names:
        pooled = group_scores(results, groups, name)
        above = sum(mean_and_error(pooled[g])[0] > 0 for g in columns)
        lines.append(f"| {name} | " + " | ".join(_cell(pooled[g]) for g in columns)
                     + f" | {_cell(pooled['overall'])} | {above}/{len(columns)} |")
    return "\n".join(lines)


def task_table(results: Sequence[TaskResult], labels: Sequence[str], names: Sequence[str]
               ) -> str:
    """Markdown: per task, tuned AdamW's point and loss and each optimizer's mean ± SE over the
    scoring seeds with its chosen lr."""
    lines = ["| task | variant | tuned AdamW | " + " | ".join(names) + " |",
             "|---" * (len(names) + 3) + "|"]
    for result, label in zip(results, labels):
        b = result.baseline
        loss = math.exp(np.mean(np.log(np.maximum(b.losses, LOSS_FLOOR))))
        cells = [f"{_cell(result.scores(n))} @ {result.optimizers[n].lr:.2g}" for n in names]
        lines.append(f"| `{result.task.key}` | {label} | {loss:.4g} (lr {b.lr:.2g}, "
                     f"wd {b.weight_decay:g}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(results: Sequence[TaskResult], groups: Sequence[str],
                labels: Sequence[str], name: str, output: Path) -> None:
    """Per group, the mean validation curves of optimizer `name` (solid) and tuned AdamW
    (dashed) on each of its tasks, against the fraction of training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(dict.fromkeys(groups))
    figure, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 4), squeeze=False)
    for ax, group in zip(axes[0], columns):
        tasks = [(r, l) for r, g, l in zip(results, groups, labels) if g == group]
        for k, (result, label) in enumerate(tasks):
            x = np.linspace(0, 1, CURVE_POINTS)
            colour = f"C{k}"
            ax.semilogy(x, result.optimizers[name].curve, color=colour, label=f"{name}: {label}")
            ax.semilogy(x, result.baseline.curve, color=colour, linestyle="--",
                        label=f"AdamW: {label}")
        ax.set_title(group)
        ax.set_xlabel("fraction of training")
        ax.set_ylabel("validation loss (mean over seeds)")
        ax.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, evaluate the suite, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory")
    parser.add_argument("--ids", type=int, nargs="*", help="candidate ids (default: the "
                        "run's chosen winner and its best by mean validation score; none: "
                        "only the references)")
    parser.add_argument("--program", type=Path, nargs="*", default=[], help="program files "
                        "to score beside the references, each named by its file's stem")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--run-seed", type=int, help="the keys' seed (default: the run's "
                        "seed + 1, so seeds its meta-validation never used)")
    parser.add_argument("--test-seed", type=int, help="the scoring keys' seed (default: "
                        "the tuning keys' seed + 1)")
    parser.add_argument("--out", type=Path, help="markdown report; curves beside it (.png)")
    parser.add_argument("--tasks", type=int, help="evaluate only the first N tasks of the "
                        "suite (the held-out tasks come first)")
    parser.add_argument("--cache", type=Path, help="JSON file of finished tunings, read and "
                        "extended after every task (a rerun with other candidates only "
                        "trains those)")
    args = parser.parse_args(argv)
    compile_cache.enable(compile_cache.resolve(True))  # the runs' own JAX compilation cache

    run = open_run(args.run)
    status = run.status()
    plan = TaskPlan.from_config(run.config)
    ids = [(i, "") for i in args.ids] if args.ids is not None else default_ids(run)
    candidates = {f"#{cid} {role}".strip(): run.candidate(cid).program for cid, role in ids}
    programs = dict(candidates)
    programs.update({name: library.program(name) for name in REFERENCES})
    programs.update({path.stem: parse(path.read_text()) for path in args.program})
    encoding = Encoding(max_statements=max([run.config.population.max_statements]
                                           + [len(p.body) for p in programs.values()]))
    run_seed = run.config.seed + 1 if args.run_seed is None else args.run_seed
    test_seed = run_seed + 1 if args.test_seed is None else args.test_seed

    rows = suite(plan)
    left_out = rows[args.tasks:] if args.tasks is not None else []
    rows = rows[:len(rows) - len(left_out)]
    results = []
    start = time.time()
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    for group, label, task in rows:
        results.append(evaluate_task(task, programs, encoding, args.seeds, run_seed,
                                     test_seed, cache=cache))
        if args.cache:
            args.cache.with_suffix(".tmp").write_text(json.dumps(cache))
            args.cache.with_suffix(".tmp").replace(args.cache)
        print(f"[{time.time() - start:6.0f} s] {task.key} ({label})", file=sys.stderr, flush=True)
    groups = [group for group, _, _ in rows]
    labels = [label for _, label, _ in rows]
    names = list(programs)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip() or "unknown"
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    read = (f"archive through generation {status.generations - 1}" if status.generations
            else "no generation finished")
    texts = "\n\n".join(f"{name} (simplified):\n\n```python\n{simplify(programs[name])}\n```"
                        for name in candidates) or "None: only the references."
    report = "\n".join([
        f"# Transfer of {run.run_dir} ({read}; {status.target_generations} planned)",
        "",
        f"commit `{commit}`; command: `{command}`",
        "",
        f"Score: log(tuned AdamW loss / optimizer loss) per task and scoring seed, paired by "
        f"seed, {args.seeds} scoring seeds (keys `task_keys(task, {args.seeds}, {test_seed})`); "
        f"mean ± standard error over tasks x seeds. Every optimizer is tuned on {args.seeds} "
        f"other seeds (keys `task_keys(task, {args.seeds}, {run_seed})`): programs over the lrs "
        f"{', '.join(f'{lr:.2g}' for lr in LR_GRID)}; AdamW over those lrs x weight decays "
        f"({', '.join(f'{d:g}' for d in WEIGHT_DECAYS)}; 0 = Adam); chosen = lowest mean over "
        f"the tuning seeds of log final validation loss. Columns: the run's held-out families, "
        f"each its held-out task and variants ({', '.join(v for v, _ in VARIANTS)}).",
        "",
        *([f"Not evaluated (--tasks {args.tasks}): "
           + ", ".join(f"`{task.key}` ({label})" for _, label, task in left_out) + ".", ""]
          if left_out else []),
        summary_table(results, groups, names),
        "",
        "## Per task (score @ chosen lr)",
        "",
        task_table(results, labels, names),
        "",
        "## Candidates",
        "",
        texts,
        "",
    ])
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        if candidates:
            plot_curves(results, groups, labels, names[0], args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
