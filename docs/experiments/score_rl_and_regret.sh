#!/usr/bin/env bash
# The held-out scores behind docs/results.md's "Learned drifts for PPO" and "Regret
# scheduling" tables, from the runs that rerun_rl_and_regret.sh leaves in RUNS_DIR: each
# run's best candidate by meta-validation (its chosen winner for program runs) and, for
# network runs, the strategy's final mean, re-scored with more seeds.
#   bash docs/experiments/score_rl_and_regret.sh [RUNS_DIR]   # default runs/
set -euo pipefail
runs=${1:-runs}

best() {  # best RUN: the best network by meta-validation
    disco inspect "$1" --json --top 1 | python3 -c "import json, sys; print(json.load(sys.stdin)['top'][0]['id'])"
}
final_mean() {  # final_mean RUN: the evolution strategy's mean in the last generation
    python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(
        \"SELECT max(id) FROM candidates WHERE reason = 'the strategy''s mean'\").fetchone()[0])" \
        "$1/archive.sqlite"
}
chosen() {  # chosen RUN: a program run's winner, the simplest within noise of the best
    disco inspect "$1" --pareto | sed -n 's/^chosen #\([0-9]*\):$/\1/p'
}

echo "== LPO and TA-LPO on CartPole across horizons"
disco score "$runs/lpo:$(best "$runs/lpo")" "$runs/lpo:$(final_mean "$runs/lpo")" "$runs/lpo:0" \
    dsl/programs/dpo.py dsl/programs/ppo_clip.py --run "$runs/lpo" --seeds 16
disco score "$runs/ta_lpo:$(best "$runs/ta_lpo")" "$runs/ta_lpo:$(final_mean "$runs/ta_lpo")" \
    --run "$runs/ta_lpo" --seeds 16

echo "== program search, regret against uniform"
for seed in 0 1 2; do
    for scheduler in regret uniform; do
        run="$runs/programs_${scheduler}_$seed"
        disco score "$run:$(chosen "$run")" --run "$run" --seeds 6
    done
done
disco score dsl/programs/adam.py --run "$runs/programs_regret_0" --seeds 6

echo "== TA-LPO, regret against uniform"
for scheduler in regret uniform; do
    run="$runs/ta_lpo_$scheduler"
    disco score "$run:$(best "$run")" "$run:$(final_mean "$run")" "$run:0" \
        dsl/programs/ppo_clip.py --run "$run" --seeds 8
done

echo "== levels sampled: mean regret (baseline score - the population's best), share replayed"
for run in "$runs"/programs_{regret,uniform}_{0,1,2} "$runs"/ta_lpo_{regret,uniform}; do
    python3 -c "import sqlite3, sys; print(sys.argv[1], *('%.3f' % x for x in sqlite3.connect(
        sys.argv[1] + '/archive.sqlite').execute(
        'SELECT avg(regret), avg(replayed) FROM levels').fetchone()))" "$run"
done
