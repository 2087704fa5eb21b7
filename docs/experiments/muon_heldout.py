"""Is the goal's margin within reach of an optimizer outside the DSL's elementwise rules?
Muon (Jordan et al. 2024; optax.contrib.muon) against AdamW tuned per task, on the held-out
tasks of a config, under `disco transfer`'s protocol and keys.

Muon orthogonalises the momentum of each weight matrix (Newton-Schulz); no program of the
DSL can, since every op but the per-tensor reductions is elementwise. It runs as
`muon_optax.py` configures optax's (RMS matched to AdamW's, so one learning rate serves its
matrices and the Adam it applies to the other parameters; HWIO kernels as matrices). It is
tuned as `disco transfer` tunes AdamW: on the tuning seeds over the protocol's lrs (and past
an edge) x its schedules x weight decays `MUON_DECAYS` (decoupled, times the lr
as in optax's AdamW, on matrices and the rest alike), then scored at its chosen point on the
scoring seeds; the baseline is the transfer cache's tuned AdamW (read, never written) on the
same keys, so the scores are paired with every `disco transfer` report of those keys.

    python docs/experiments/muon_heldout.py docs/experiments/heldout_four_wellposed.toml \
        --seeds 2 --tasks 8 --run-seed 2 --test-seed 3 \
        --cache docs/experiments/transfer_pilots.cache.json \
        --muon-cache docs/experiments/muon_heldout.cache.json --out docs/experiments/muon_heldout.md

What it does not establish: one configuration of Muon (its paper's momentum 0.95, Nesterov,
5 Newton-Schulz steps); a tuning over fewer weight decays than AdamW's five.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np

from disco_rules import api
from disco_rules.discovery import transfer as protocol
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner.schedules import Point, schedule_of
from disco_rules.discovery.inner.schedules import grid as schedule_grid
from disco_rules.discovery.inner.train import (TrainResult, compiled, lr_scores,
                                               make_optax_train, tune_past_edges)
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.selection import standard_error
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.transfer_report import provenance
from disco_rules.discovery.verdict import judge, with_error
from disco_rules.dsl.interpreter import Encoding
from muon_optax import make_muon  # beside this script

MUON_DECAYS: tuple[float, ...] = (0.0, 1e-2, 1e-1)
NAME = "Muon"


_COMPILED: dict[tuple, object] = {}


def tune_muon(task: Task, grid: protocol.Grid, keys: jax.Array) -> protocol.Tuned:
    """Muon at every (lr, schedule, weight decay) of `grid` on every key, at its best point."""
    points = schedule_grid(grid.lrs, grid.schedules)
    decays = np.asarray(grid.weight_decays, np.float32)
    index, point_decay = (a.ravel() for a in np.meshgrid(np.arange(len(points.lr)), decays,
                                                          indexing="ij"))
    grid_points = Point(*(np.asarray(x)[index] for x in points))
    shape = (task.key, len(index), int(keys.shape[0]))
    if shape not in _COMPILED:
        def run(point: Point, weight_decay: jax.Array, key: jax.Array) -> TrainResult:
            return make_optax_train(task, lambda rate: make_muon(rate, weight_decay))(point, key)
        over_seeds = jax.vmap(run, in_axes=(None, None, 0))
        _COMPILED[shape] = compiled(jax.vmap(over_seeds, in_axes=(0, 0, None)))
    result = _COMPILED[shape](Point(*(jax.numpy.asarray(x) for x in grid_points)),
                              jax.numpy.asarray(point_decay), keys)
    result = TrainResult(*(np.asarray(x) for x in result))
    scores = lr_scores(result)
    if not np.isfinite(scores).any():
        return protocol.Tuned(math.nan, math.nan, np.full(keys.shape[0], np.inf),
                              np.full(result.curve.shape[-1], np.nan))
    best = int(np.argmin(scores))
    return protocol.Tuned(float(grid_points.lr[best]), float(point_decay[best]),
                          np.asarray(result.final_loss[best], np.float64),
                          np.mean(np.asarray(result.curve[best], np.float64), axis=0),
                          schedule_of(int(index[best]), grid.schedules))


def muon_on(task: Task, seeds: int, run_seed: int, test_seed: int, cache: dict,
            save: object) -> protocol.Tuned:
    """Muon tuned on the tuning seeds and scored at its point on the scoring seeds (cached)."""
    grid = replace(protocol.GRID, weight_decays=MUON_DECAYS)
    entry = json.dumps([task.key, seeds, run_seed, test_seed, list(grid.lrs),
                        list(MUON_DECAYS), [list(s) for s in grid.schedules], "muon rms 0.2"])
    if entry not in cache:
        keys = task_keys(task, seeds, run_seed)
        chosen = tune_past_edges(lambda lrs: tune_muon(task, replace(grid, lrs=lrs), keys),
                                 grid.lrs, grid.past_edge, lambda t: t.lr, lambda t: t.score)
        if math.isfinite(chosen.lr):
            at = protocol.Grid((chosen.lr,), (chosen.weight_decay,), (chosen.schedule,))
            scored = tune_muon(task, at, task_keys(task, seeds, test_seed))
            chosen = replace(chosen, losses=scored.losses, curve=scored.curve)
        cache[entry] = protocol._stored(chosen)
        save()
    return protocol._loaded(cache[entry])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--run-seed", type=int, required=True)
    parser.add_argument("--test-seed", type=int, required=True)
    parser.add_argument("--cache", required=True, help="transfer cache with tuned AdamW (read)")
    parser.add_argument("--muon-cache", required=True, help="Muon's tunings (read and written)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    config = api.read_config(args.config).config
    api.compilation_cache(config)
    plan = TaskPlan.from_config(config)
    rows = protocol.suite(plan)[:args.tasks]
    adamw_cache = json.loads(Path(args.cache).read_text())
    muon_path = Path(args.muon_cache)
    muon_cache = json.loads(muon_path.read_text()) if muon_path.exists() else {}

    def save() -> None:
        muon_path.write_text(json.dumps(muon_cache, indent=1, sort_keys=True))

    started = time.time()
    scores: dict[str, list[np.ndarray]] = {}
    lines = []
    for row in rows:
        before = len(adamw_cache)
        baseline = protocol.evaluate_task(row.task, {}, Encoding(max_statements=1), args.seeds,
                                          args.run_seed, args.test_seed, protocol.GRID,
                                          dict(adamw_cache)).baseline
        if len(adamw_cache) != before:
            raise SystemExit("the transfer cache lacks this task's tuned AdamW")
        tuned = muon_on(row.task, args.seeds, args.run_seed, args.test_seed, muon_cache, save)
        paired = protocol.paired_scores(baseline, tuned)
        scores.setdefault(row.group, []).append(paired)
        lines.append(f"| {row.task.key} | {row.label} | AdamW lr {baseline.lr:.3g} wd "
                     f"{baseline.weight_decay:g} {baseline.schedule.name} | Muon lr {tuned.lr:.3g} "
                     f"wd {tuned.weight_decay:g} {tuned.schedule.name} | "
                     f"{np.mean(paired):+.3f} |")
        print(lines[-1], f"({time.time() - started:.0f} s)", flush=True)
    pooled = {group: np.concatenate(parts) for group, parts in scores.items()}
    verdict = judge(pooled)
    families = " | ".join(f"{group} {with_error(float(np.mean(v)), standard_error(v), v.size)}"
                          for group, v in pooled.items())
    report = "\n".join([
        f"# Muon against tuned AdamW on {args.config}'s held-out tasks", "",
        provenance(["docs/experiments/muon_heldout.py", *sys.argv[1:]], ("python",)), "",
        "| task | label | tuned AdamW | Muon | score |", "|---|---|---|---|---|", *lines, "",
        f"Per family: {families}", "",
        f"Verdict over families: {verdict.text(NAME)}", ""])
    print(report)
    if args.out:
        Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
