"""Does a candidate tuned on as many seeds as the baseline hold up better on fresh seeds?

A run tunes each validated candidate's lr and schedule on `validation.seeds` seeds (the
flagship before `8886669`: 2, since then the baseline's 3) and tuned AdamW on
`tasks.baseline_seeds` (3). For candidates of a finished run, this tunes each again on the
held-out tasks over the run's grids on SEEDS seeds, then trains it at that point and tuned
AdamW at its archived point on fresh seeds (`validation.confirmation_seeds` of them from the
run's seed + 1, its confirmation's; `--fresh K`: from the run's seed + K, another set), and
prints, per candidate, the per-task scores and the verdict (mean ± SE over tasks, grouped by
family) on the seeds that tuned it and on the fresh ones. Nothing is written to the run.

    tar xzf docs/experiments/flagship4_gen20.tar.gz -C runs
    python docs/experiments/validation_seeds.py runs/flagship4 3 3 64   # SEEDS, then ids
    python docs/experiments/validation_seeds.py runs/flagship9 3 17 112 --fresh 3

What it does not establish: one run's candidates, the run's 6 held-out tasks, 8 fresh seeds.
"""

from __future__ import annotations

import argparse
import sys

from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.confirmation import fresh_scores
from disco_rules.discovery.evaluator import Evaluator
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.search.programs import ProgramPopulation
from disco_rules.discovery.store import RunStore
from disco_rules.discovery.verdict import by_family, judge
from disco_rules.dsl.parser import parse
from disco_rules.dsl.simplify import simplify


def main(run_dir: str, seeds: int, ids: list[int], fresh_offset: int = 1) -> None:
    store = RunStore.open(run_dir, write=False)
    config = parse_config(store.config_text)
    heldout = list(TaskPlan.from_config(config).heldout)
    baselines = {task.key: store.baseline(task.key) for task in heldout}
    pool = LocalPool(lambda: Evaluator(config.population.max_statements))
    population = ProgramPopulation(config, pool)
    print(f"run {run_dir}: candidates tuned on {seeds} seeds (the run: "
          f"{config.validation_seeds}), tuned AdamW on "
          f"{config.tasks.seeds_of_baseline}; fresh: {config.validation.confirmation_seeds} "
          f"seeds from {config.seed + fresh_offset}")
    for cid in ids:
        program = simplify(parse(store.candidate(cid).text))
        tuned = population.score_rules([program], heldout, baselines, seeds)[0]
        points = {score.row.task: score.row for score in tuned}
        fresh = fresh_scores(pool, config, {cid: program}, {cid: points}, baselines, heldout,
                             population.agent, fresh_offset)
        print(f"#{cid}")
        for score, row in zip(tuned, fresh):
            point = f"lr {score.row.lr:g} {score.row.schedule}"
            print(f"  {row.task:70s} {point:20s} tuning {score.value:+.3f}  fresh {row.score:+.3f}")
        for label, scores in (("tuning", {s.row.task: s.value for s in tuned}),
                              ("fresh", {row.task: row.score for row in fresh})):
            print(f"  {label}: {judge(by_family(scores)).text(f'#{cid}', 'tuned AdamW')}")
        sys.stdout.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("seeds", type=int, help="seeds each candidate is tuned on")
    parser.add_argument("ids", type=int, nargs="+")
    parser.add_argument("--fresh", type=int, default=1,
                        help="fresh seeds from the run's seed + this (1: its confirmation's)")
    args = parser.parse_args()
    main(args.run, args.seeds, args.ids, args.fresh)
