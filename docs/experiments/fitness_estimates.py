"""How well does a member's training fitness predict its held-out (meta-validation) score?

Reads a finished run's archive and prints Spearman's rank correlation, over the meta-validated
candidates, of their mean validation score with estimates of their training fitness:

- at birth: the archived fitness (the mean over the generation's fixed task and levels);
- a member `age` generations old: its mean over that generation's tasks alone (the fitness
  the search used before `993e6d5`) against its mean over every training task it had been
  scored on by then (the running mean, the search's fitness since);
- at its validation and over its whole life: the running mean, and a fit of member + task
  effects to every candidate's scores archived by then (levels that were hard for everyone
  counting against no one), the alternative the running mean was chosen over;
- the held-out scores of candidates validated after one generation's levels (newborns)
  against those validated after two or more (generation 0's round left out);
- and how much of a training score is the member: over the working candidates (mean training
  score above -0.3), a fit of member + task effects, its residual variance against the
  variance of the members' true effects (the fitted effects' variance less their noise). Their
  ratio is the number of ties with the baseline a shrinkage estimate of a member's effect
  starts from, and a mean over n tasks is n / (n + ratio) reliable (docs/results.md, "How
  much of a training score is the member"); and whether pairing helps: the SD of a working
  child's score less its working parent's on the training tasks both were scored on (a
  paired, child-against-parent fitness would be that much surer than the residual's).

    tar xzf docs/experiments/flagship4_gen20.tar.gz -C runs
    python docs/experiments/fitness_estimates.py runs/flagship4

What it does not establish: the candidates are the search's leaders (selected on the
fitness being tested), a few dozen of them, and one run.
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.stats import spearmanr

from disco_rules.discovery.config import parse_config
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.store import RunStore


def task_effects_fit(table: dict[int, dict[str, float]]
                     ) -> tuple[dict[int, float], dict[str, float]]:
    """(member effects, task effects) of a least-squares fit of member + task effects to the
    scores (member -> task -> score); members comparable with one another, not with a mean."""
    members, tasks = sorted(table), sorted({t for scores in table.values() for t in scores})
    column = {t: len(members) + k for k, t in enumerate(tasks)}
    cells = [(i, column[t], x) for i, m in enumerate(members) for t, x in table[m].items()]
    design = np.zeros((len(cells), len(members) + len(tasks)))
    for r, (i, j, _) in enumerate(cells):
        design[r, i] = design[r, j] = 1.0
    effects = np.linalg.lstsq(design, np.array([x for *_, x in cells]), rcond=None)[0]
    return ({m: float(effects[i]) for i, m in enumerate(members)},
            {t: float(effects[column[t]]) for t in tasks})


def variance_components(table: dict[int, dict[str, float]]) -> tuple[float, float]:
    """(residual variance of a member + task effects fit, variance of the members' true
    effects: the fitted effects' variance less the mean of residual / tasks)."""
    members, tasks = task_effects_fit(table)
    residuals = [x - members[m] - tasks[t] for m in table for t, x in table[m].items()]
    dof = len(residuals) - len(members) - len(tasks) + 1
    residual = float(np.sum(np.square(residuals)) / dof)
    spread = float(np.var(list(members.values()))
                   - np.mean([residual / len(table[m]) for m in members]))
    return residual, spread


def main(run_dir: str) -> None:
    store = RunStore.open(run_dir, write=False)
    config = parse_config(store.config_text)
    plan = TaskPlan.from_config(config)
    heldout = {task.key for task in plan.heldout}
    fixed = [task.key for task in plan.train]
    cap = config.tasks.fitness_cap
    validation = {c.id: float(np.mean([r.score for r in rows])) for c, rows in store.validated()}
    validated_at = dict(store.query(
        "SELECT candidate_id, MIN(generation) FROM validation GROUP BY candidate_id"))
    levels: dict[int, list[str]] = {}
    for level in store.sampled_levels():
        levels.setdefault(level.generation, []).append(level.task)
    scored: dict[int, list[tuple[str, int, float]]] = {}  # candidate -> (task, generation, score)
    for c, t, g, s in store.query("SELECT candidate_id, task, generation, score FROM scores"):
        if t not in heldout:
            scored.setdefault(c, []).append((t, g, np.nan if s is None else s))

    def training(cid: int, until: int | None = None) -> dict[str, float]:
        """A candidate's capped training scores archived by generation `until`."""
        return {t: min(s, cap) for t, g, s in scored[cid] if until is None or g <= until}

    def rank(estimates: dict[int, float]) -> str:
        ids = sorted(estimates)
        rho = spearmanr([validation[i] for i in ids], [estimates[i] for i in ids]).correlation
        return f"{rho:+.2f} over {len(ids)}"

    print(f"run {run_dir}: {len(validation)} meta-validated candidates")
    at_birth = {i: store.candidate(i).fitness for i in validation}
    print(f"at birth (archived fitness): {rank(at_birth)}")
    for age in (1, 2, 3, 5):
        window, running = {}, {}
        for cid in validation:
            g = store.candidate(cid).generation + age
            scores = training(cid, until=g)
            current = fixed + levels.get(g, [])
            if g not in levels or not set(current) <= scores.keys() \
                    or not all(map(np.isfinite, scores.values())):
                continue  # not alive (not re-scored) at that age
            born = store.candidate(cid).generation
            window[cid] = float(np.mean([scores[t] for t in current]))
            running[cid] = float(np.mean([s for t, s in scores.items()
                                          if t in fixed or any(t in levels.get(h, ())
                                                               for h in range(born, g + 1))]))
        if len(window) > 4:
            print(f"{age} generations old: this generation's tasks {rank(window)}; "
                  f"running mean {rank(running)}")
    for label, until in (("at its validation", validated_at), ("over its whole life", {})):
        by_generation: dict[int | None, list[int]] = {}
        for cid in validation:
            by_generation.setdefault(until.get(cid), []).append(cid)
        mean, fitted = {}, {}
        for g, ids in by_generation.items():
            table = {c: training(c, g) for c in scored}
            table = {c: scores for c, scores in table.items()
                     if scores and all(map(np.isfinite, scores.values()))}
            fit, _ = task_effects_fit(table)
            for cid in ids:
                mean[cid] = float(np.mean(list(table[cid].values())))
                fitted[cid] = fit[cid]
        print(f"{label}: running mean {rank(mean)}; task effects fit {rank(fitted)}")
    by_age: dict[bool, list[float]] = {}  # scored on 2+ generations when validated -> scores
    for cid, g in validated_at.items():
        if g > 0 and cid in scored:
            generations = {h for _, h, _ in scored[cid] if h <= g}
            by_age.setdefault(len(generations) > 1, []).append(validation[cid])
    for older, scores in sorted(by_age.items()):
        print(f"validated after {'two generations or more' if older else 'one generation'} "
              f"of levels: held-out mean {np.mean(scores):+.3f} over {len(scores)} "
              f"({', '.join(f'{x:+.3f}' for x in sorted(scores))})")
    table = {c: training(c) for c in scored}
    working = {c: t for c, t in table.items() if len(t) > 1
               and all(map(np.isfinite, t.values())) and np.mean(list(t.values())) > -0.3}
    residual, spread = variance_components(working)
    print(f"{len(working)} working candidates: residual variance {residual:.4f}, members' "
          f"true effects {spread:.4f}: ratio {residual / spread:.1f}")
    differences = []  # per pair: the child's score less its parent's on each shared task
    for child, parent in store.query("SELECT id, parent_id FROM candidates "
                                     "WHERE parent_id IS NOT NULL"):
        if child in working and parent in working:
            shared = working[child].keys() & working[parent].keys()
            if len(shared) > 2:
                differences.append([working[child][t] - working[parent][t] for t in shared])
    within = sum(np.var(d) * len(d) for d in differences) / sum(len(d) - 1 for d in differences)
    print(f"{len(differences)} working child-parent pairs: a child's score less its parent's "
          f"on a shared task strays by SD {np.sqrt(within):.3f} (residual SD "
          f"{np.sqrt(residual):.3f})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/flagship4")
