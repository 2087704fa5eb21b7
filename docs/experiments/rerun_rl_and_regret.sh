#!/usr/bin/env bash
# Reruns the searches behind docs/results.md's "Learned drifts for PPO" and "Regret
# scheduling" sections, one after another, each timed (run it on an otherwise idle machine:
# the sections quote the times). The scoring commands, which need each run's winner ids,
# are listed in docs/results.md beside the tables.
#   bash docs/experiments/rerun_rl_and_regret.sh [RUNS_DIR]   # default runs/
set -euo pipefail
runs=${1:-runs}
configs=$(mktemp -d)
trap 'rm -rf "$configs"' EXIT

launch() {  # launch CONFIG RUN_DIR: one search, its wall time on stdout
    local start=$SECONDS
    disco launch "$1" --run-dir "$2" > "$2.log" 2>&1
    echo "$2: $((SECONDS - start)) s"
}

launch examples/lpo_cartpole.toml "$runs/lpo"
launch examples/ta_lpo_cartpole.toml "$runs/ta_lpo"
for seed in 0 1 2; do
    for scheduler in regret uniform; do
        sed "s/^seed = 0$/seed = $seed/" "docs/experiments/programs_$scheduler.toml" \
            > "$configs/programs_${scheduler}_$seed.toml"
        launch "$configs/programs_${scheduler}_$seed.toml" "$runs/programs_${scheduler}_$seed"
    done
done
for scheduler in regret uniform; do
    launch "docs/experiments/ta_lpo_$scheduler.toml" "$runs/ta_lpo_$scheduler"
done
