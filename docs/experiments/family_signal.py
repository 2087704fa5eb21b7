"""Which training family ranks rules as the held-out families do?

Reads a program run's archive (read-only): its meta-validated candidates and their held-out
mean. Scores every one of them, as the search scores a candidate (its config's candidate
schedule, lr grid and seeds; paired with AdamW tuned over its lr x weight decay x schedule
grid on its baseline seeds), on the levels below, one family at a time, and prints per
family Spearman's rank correlation between the family's mean score (each level's counted at
most the run's fitness_cap) and the held-out mean, over all candidates and over those within
0.25 of AdamW held out.

    python docs/experiments/family_signal.py runs/capped [FAMILY ...]

With FAMILY names (keys of LEVELS), only those.
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.stats import spearmanr

from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.baselines import adamw_item, loss_record
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.evaluator import Evaluator
from disco_rules.discovery.scoring import fitness_of, score_programs
from disco_rules.discovery.store import RunStore
from disco_rules.discovery.tasks import Task
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse

# Levels of the flagship's lists (examples/optimizer_search.toml), two per family at
# different horizons, batch sizes and widths.
LEVELS = {
    "digits_mlp": [Task.make("digits_mlp", depth=1, width=32, batch_size=16, horizon=400),
                   Task.make("digits_mlp", depth=1, width=16, batch_size=64, horizon=100)],
    "tabular": [Task.make("tabular", dataset="breast_cancer", depth=1, width=16,
                          batch_size=64, horizon=300),
                Task.make("tabular", dataset="wine", depth=1, width=32, batch_size=16,
                          horizon=75)],
    # the tasks every generation of the capped pilot's config scores on: its one fixed
    # training task and its screen task
    "fixed train": [Task.make("tabular", dataset="diabetes", width=32, horizon=300)],
    "screen": [Task.make("tabular", dataset="wine", width=16, batch_size=16, horizon=100)],
    "digits screen": [Task.make("digits_mlp", width=16, depth=1, batch_size=16, horizon=100)],
    "ae digits screen": [Task.make("mlp_autoencoder", dataset="digits", width=16, depth=1,
                                   code=4, batch_size=16, horizon=100)],
    "ae cancer screen": [Task.make("mlp_autoencoder", dataset="breast_cancer", width=16,
                                   depth=1, code=4, batch_size=16, horizon=100)],
    "sequence_copy": [Task.make("sequence_copy", cell="gru", seq_len=4, vocab=6, width=16,
                                batch_size=32, horizon=600),
                      Task.make("sequence_copy", cell="gru", seq_len=4, vocab=6, width=32,
                                batch_size=8, horizon=150)],
    "mlp_autoencoder": [Task.make("mlp_autoencoder", dataset="digits", depth=1, code=4,
                                  width=32, batch_size=16, horizon=400),
                        Task.make("mlp_autoencoder", dataset="breast_cancer", depth=1, code=4,
                                  width=16, batch_size=64, horizon=100)],
}
NEAR = -0.25  # held-out mean above which a candidate counts as near AdamW


def main(run_dir: str, *families: str) -> None:
    with RunStore.open(run_dir, write=False) as store:
        config = parse_config(store.config_text)
        rows = store.query("SELECT candidate_id, AVG(score), COUNT(*) FROM validation "
                           "GROUP BY candidate_id")
        most = max(n for _, _, n in rows)
        held = {cid: mean for cid, mean, n in rows if n == most}
        ids = sorted(held)
        programs = [parse(store.candidate(cid).text) for cid in ids]
    size = max(len(p.body) for p in programs)
    encoding = Encoding(max_statements=size)
    pool = LocalPool(lambda: Evaluator(size))
    validation = np.array([held[cid] for cid in ids])
    near = validation > NEAR
    print(f"{run_dir}: {len(ids)} candidates meta-validated on all {most} "
          f"held-out tasks, {near.sum()} within {-NEAR} of AdamW there")
    print(f"{'family':16s} {'levels':>6s} {'rho (all)':>10s} {'rho (near)':>11s}")
    for family, levels in LEVELS.items():
        if families and family not in families:
            continue
        # the search's own path: its baseline items and rows, its scoring, its fitness
        baselines = {level.key: loss_record(level, result, config) for level, result in
                     zip(levels, pool.map([adamw_item(level, config, None)
                                           for level in levels]))}
        table = score_programs(pool, config, encoding, programs, levels, baselines)
        mean = np.array([fitness_of([score.value for score in row], config.tasks.fitness_cap)
                         for row in table])
        rho_all = spearmanr(mean, validation).statistic
        rho_near = spearmanr(mean[near], validation[near]).statistic
        print(f"{family:16s} {len(levels):6d} {rho_all:+10.2f} {rho_near:+11.2f}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
