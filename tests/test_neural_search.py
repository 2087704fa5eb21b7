"""Meta-training drift networks (LPO / TA-LPO) with an evolution strategy: what is archived,
how fitness is normalised by PPO, determinism and resume, failures, and that a tiny run
improves its rule."""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from disco_rules.cluster.local import LocalPool
from disco_rules.cluster.results import Failed
from disco_rules.discovery.cli import main
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.evaluator import RulesItem, Evaluator
from disco_rules.discovery.search.engine import Engine, make_engine
from disco_rules.discovery.search.kinds import network_from_text
from disco_rules.discovery.scoring import score_rules, split_evenly
from disco_rules.discovery.inner.rl_train import first_finite, normalised_return
from disco_rules.discovery.store import RunStore
from disco_rules.dsl.parser import parse
from disco_rules.dsl.slots import OBJECTIVE
from disco_rules.populations.drift_network import DriftNetwork
from disco_rules.populations.strategy import Strategy
from tests.configs import config_variant
from tests.processes import finish_all, kill_all

CONFIG = """\
seed = 4
generations = 3

[population]
kind = "ta-lpo"
size = 4
hidden = 4

[es]
sigma = 0.3

[tasks]
seeds = 2
lr_grid = [2.5e-3]
train = [{ family = "cartpole", total_timesteps = 4096 }]
heldout = [{ family = "cartpole", total_timesteps = 4096, length = 0.8 }]

[ppo]
num_envs = 4
num_steps = 64

[validation]
every = 2
top = 1

[cluster]
batch_size = 5
"""


def make_search(run_dir: Path, text: str = CONFIG, pool=None) -> Engine:
    store = RunStore.create(run_dir, text) if not run_dir.exists() else RunStore.open(run_dir)
    pool = pool or LocalPool(functools.partial(Evaluator, 8))
    search = make_engine(parse_config(text), store, pool)
    search.restore()
    return search


def archive(store: RunStore) -> list[tuple]:
    rows = store.query("SELECT * FROM candidates ORDER BY id")
    scores = store.query("SELECT * FROM scores ORDER BY candidate_id, task")
    validation = store.query("SELECT * FROM validation ORDER BY candidate_id")
    return rows + scores + validation


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Engine:
    search = make_search(tmp_path_factory.mktemp("neural") / "run")
    search.run(3)
    return search


@pytest.mark.slow  # `finished` runs a 3-generation search that trains PPO agents
def test_every_member_and_the_mean_are_archived_with_their_weights(finished):
    store = finished.store
    network = DriftNetwork(temporally_aware=True, hidden=4)
    assert store.count() == 3 * 5  # population 4 and the strategy's mean, 3 generations
    for cid in range(15):
        record = store.candidate(cid)
        assert record.kind == "ta-lpo" and network_from_text(record.text) == network
        assert record.weights.shape == (network.num_params,)
        assert record.status == "ok" and np.isfinite(record.fitness)
        mean_id = 5 * record.generation
        assert record.parent_id == (mean_id if cid != mean_id else
                                    (None if record.generation == 0 else mean_id - 5))
    # members are the mean plus sigma-noise in antithetic pairs
    mean, members = (store.candidate(0).weights,
                     np.stack([store.candidate(i).weights for i in range(1, 5)]))
    np.testing.assert_allclose(members[:2] - mean, -(members[2:] - mean), atol=1e-5)
    assert 0.1 < np.std(members - mean) < 0.6


@pytest.mark.slow
def test_fitness_is_the_return_normalised_by_tuned_ppos(finished):
    store = finished.store
    for cid in (0, 3, 7):
        (score,) = [s for s in store.scores_of(cid) if "length=0.5" in s.task]
        baseline = store.baseline(score.task)
        expected = normalised_return(score.curve[-1], first_finite(np.asarray(baseline.curve)),
                                     baseline.score)
        assert score.score == pytest.approx(float(expected), rel=1e-4)
        assert store.candidate(cid).fitness == pytest.approx(score.score)
    # the reference points: PPO itself scores 1, an agent that never improves scores 0
    assert normalised_return(baseline.score, 20.0, baseline.score) == pytest.approx(1.0)
    assert normalised_return(20.0, 20.0, baseline.score) == 0.0


@pytest.mark.slow
def test_the_strategy_learns_from_the_fitness(finished, tmp_path):
    """Generation 1's mean is what the strategy makes of generation 0's members and their
    archived fitness; the same members with their fitness shuffled step elsewhere (the
    control: a step that ignored the fitness would pass the first check too)."""
    store = finished.store
    fresh = make_search(tmp_path / "fresh").population  # generation 0's strategy, untold
    proposal = fresh.ask(0, 0)
    members = np.stack([store.candidate(i).weights for i in range(1, 5)])
    np.testing.assert_allclose(proposal.population, members, atol=1e-6)
    fitness = np.array([store.candidate(i).fitness for i in range(1, 5)], np.float32)
    before, after = store.candidate(0).weights, store.candidate(5).weights

    def mean_told(values: np.ndarray) -> np.ndarray:
        state = fresh.strategy.tell(proposal.tell_key, proposal.population, values,
                                    proposal.state)
        return np.asarray(fresh.strategy.mean(state))

    step = np.linalg.norm(after - before)
    assert step > 0
    np.testing.assert_allclose(mean_told(fitness), after, atol=1e-3 * step)
    # the control: the same fitness values given to other members. A step blind to the
    # fitness would land on `after` for every order (some orders do: fitness shaping ranks
    # the values and the antithetic pairs make some permutations equivalent)
    elsewhere = [order for order in itertools.permutations(range(4))
                 if np.linalg.norm(mean_told(fitness[list(order)]) - after) > 0.1 * step]
    assert len(elsewhere) >= 12, elsewhere


@pytest.mark.slow
def test_validation_scores_held_out_tasks_for_the_leaders_and_the_mean(finished):
    validated = {v.candidate_id for g in range(15) for v in finished.store.validation_of(g)}
    assert {0, 10} <= validated  # the means of generations 0 and 2 (validation there)
    winner, value = finished.store.top(1, by="validation")[0]
    assert np.isfinite(value) and winner.id in validated


@pytest.mark.slow
def test_same_seed_same_archive_and_resume_continues_identically(finished, tmp_path):
    interrupted = make_search(tmp_path / "run")
    interrupted.run(2)
    interrupted.store.close()
    resumed = make_search(tmp_path / "run")  # a new process would do exactly this
    assert resumed.generation == 2
    resumed.run(3)
    assert archive(resumed.store) == archive(finished.store)


@pytest.mark.slow
def test_a_non_finite_rule_is_scored_worst_with_a_reason_and_the_run_goes_on(finished):
    population = finished.population
    bad = np.full((2, population.network.num_params), np.nan, np.float32)
    bad[1] = 0.0
    table = score_rules(population.pool, finished.config, population.network.kind, population.network,
                        population.agent,
                        bad, finished.tasks.train,
                        {t.key: finished.store.baseline(t.key) for t in finished.tasks.all()},
                        run_seed=0)
    (nan_score,), (zero_score,) = table
    assert nan_score.value == -np.inf and nan_score.reason == "nan"
    assert np.isnan(nan_score.se)
    assert np.isfinite(zero_score.value) and zero_score.reason is None


class LosesEveryThirdItem:
    """A pool whose actor dies on some items even after retries: they come back Failed."""

    def __init__(self) -> None:
        self.inner = LocalPool(functools.partial(Evaluator, 8))
        self.calls = 0

    def map(self, items):
        results = []
        for item in items:
            if isinstance(item, RulesItem):
                self.calls += 1
                if self.calls % 3 == 0:
                    results.append(Failed("ActorDiedError: the actor died"))
                    continue
            results.extend(self.inner.map([item]))
        return results


@pytest.mark.slow  # a 2-generation search that trains PPO agents
def test_lost_work_marks_its_candidates_failed_and_the_run_completes(tmp_path):
    search = make_search(tmp_path / "run", pool=LosesEveryThirdItem())
    search.run(2)
    failed = [search.store.candidate(i) for i in range(10)
              if search.store.candidate(i).status == "failed"]
    assert failed and all("ActorDiedError" in c.reason and c.fitness == -np.inf
                          for c in failed)
    assert search.store.count() == 10


def test_chunks_are_even_so_a_fixed_population_compiles_one_shape():
    assert split_evenly(17, 16) == [(0, 9), (9, 17)]
    assert split_evenly(5, 5) == [(0, 5)]
    assert [b - a for a, b in split_evenly(33, 16)] == [11, 11, 11]


@pytest.mark.slow
def test_a_tiny_meta_training_run_improves_a_bad_rule(tmp_path):
    """Start from a drift that makes PPO unlearn (a penalty of 1.3 (r - 1) A outweighs the
    gain r A of moving the policy towards good actions): a few generations of OpenES must lift
    the mean rule's normalised return from about 0 to well above it."""
    text = config_variant(CONFIG, {
        "population.kind": "lpo", "population.size": 8, "population.hidden": 1,
        "es.learning_rate": 0.2, "cluster.batch_size": 9,
        "tasks.train": [{"family": "cartpole", "total_timesteps": 8192}],
        "tasks.heldout": [{"family": "cartpole", "total_timesteps": 8192, "length": 0.8}]})
    search = make_search(tmp_path / "run", text)
    network = search.population.network
    bad = np.zeros(network.num_params, np.float32)
    bad[6] = -1.3  # the (1 - r) A feature into the hidden unit: (r - 1) A, times 1.3
    bad[network.num_features + 1] = 1.0  # output weight
    search.population.strategy = Strategy(search.population.strategy.spec, bad)
    search.population.state = search.population.strategy.init(jax.random.PRNGKey(0))
    search.run(6)
    means = [search.store.candidate(9 * g).fitness for g in range(6)]
    assert means[0] < 0.2, means
    assert max(means[-2:]) > 0.6, means


@pytest.mark.slow
def test_disco_launches_a_network_run_and_exports_and_plots_its_winner(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(config_variant(CONFIG, {"generations": 1}))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "DISCO_DEBUG")}
    disco = str(Path(sys.executable).parent / "disco")
    run_dir = tmp_path / "run"
    launch = subprocess.run([disco, "launch", str(config), "--run-dir", str(run_dir)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert launch.returncode == 0, launch.stderr
    assert "gen   0 |   5 candidates" in launch.stdout
    assert "best network (#" in launch.stdout
    with RunStore.open(run_dir) as store:
        winner, _ = store.top(1, by="validation")[0]
    ref = f"{run_dir}:{winner.id}"
    examples = Path(__file__).parent.parent / "dsl" / "programs"
    # what reads the run (export, plot, score) runs while `disco resume` writes it on: each
    # a fresh process, readers see the run as of when they opened it, and the winner's ref
    # stays valid
    procs = {name: subprocess.Popen([disco, *args], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env)
             for name, args in {
                 "resumed": ["resume", str(run_dir), "--generations", "2"],
                 "scored": ["score", ref, str(examples / "ppo_clip.py"), "--run", str(run_dir)],
                 "exported": ["export", ref, "--format", "numpy"],
                 "plotted": ["plot", ref, "--drift", "-o", str(tmp_path / "drift.png")],
                 "wrong": ["export", ref, "--format", "optax"]}.items()}
    distilled = tmp_path / "distilled.py"
    try:
        assert main(["distill", ref, "--evaluations", "50", "-o", str(distilled)]) == 0
    except BaseException:
        kill_all(procs.values())
        raise
    done = finish_all(procs, timeout=600)
    OBJECTIVE.check(parse(distilled.read_text()))
    exported = done["exported"]
    assert exported.returncode == 0, exported.stderr
    namespace: dict = {}
    exec(exported.stdout, namespace)
    network = DriftNetwork(temporally_aware=True, hidden=4)
    ratio, advantage = np.linspace(0.5, 1.5, 11), np.linspace(-2, 2, 11)
    np.testing.assert_allclose(namespace["drift"](ratio, advantage, 0.3),
                               network.apply(winner.weights, ratio, advantage, 0.3),
                               rtol=1e-5, atol=1e-6)
    png = tmp_path / "drift.png"
    plotted = done["plotted"]
    assert plotted.returncode == 0 and png.read_bytes()[:4] == b"\x89PNG"
    scored = done["scored"]
    assert scored.returncode == 0, scored.stderr
    clip_row = scored.stdout.strip().splitlines()[-1]
    assert clip_row.split()[0].endswith("ppo_clip.py")
    means = [float(v) for v in re.findall(r"[+-]\d+\.\d+", clip_row)]  # signed: not the SEs
    assert means == [1.0, 1.0]  # PPO's clip program is PPO
    resumed = done["resumed"]
    assert resumed.returncode == 0, resumed.stderr
    assert "gen   1 |   5 candidates" in resumed.stdout
    capsys.readouterr()
    assert main(["status", str(run_dir), "--json"]) == 0  # the new target is the run's
    status = json.loads(capsys.readouterr().out)
    assert status["generations"] == 2 and status["target_generations"] == 2
    wrong = done["wrong"]
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines() == [
        f"disco: error: {ref}: a network exports as jax or numpy, not 'optax'"]


LPG_CONFIG = """\
seed = 1
generations = 1

[population]
kind = "ta-lpg"
size = 4
hidden = 4

[tasks]
seeds = 2
lr_grid = [1e-3, 3e-3]
train = [{ family = "gridworld", layout = "small", total_timesteps = 3200 }]
heldout = [{ family = "random_gridworld", size = 4, objects = 2, total_timesteps = 3200 }]

[lpg]
num_envs = 8
num_steps = 20
prediction_size = 6
return_scale = 20.0

[validation]
top = 1

[cluster]
batch_size = 5
"""


@pytest.mark.slow
def test_ta_lpg_networks_train_actor_predictors_against_a2c_on_gridworlds(tmp_path):
    search = make_search(tmp_path / "run", LPG_CONFIG)
    search.run(1)
    store = search.store
    assert store.count() == 5
    record = store.candidate(3)
    network = network_from_text(record.text)
    assert network.kind == "ta-lpg" and network.prediction_size == 6
    assert record.weights.shape == (network.num_params,) and np.isfinite(record.fitness)
    baseline = store.baseline(search.tasks.train[0].key)
    assert baseline.lr in (1e-3, 3e-3)  # A2C's step size, tuned over the grid
    assert baseline.score > first_finite(np.asarray(baseline.curve))  # A2C learned
    # the fitness pays LPG's L2 regulariser on its targets: below the normalised return
    (score,) = [s for s in store.scores_of(3) if s.task == search.tasks.train[0].key]
    plain = normalised_return(score.curve[-1], first_finite(np.asarray(baseline.curve)),
                              baseline.score)
    assert score.score < plain and score.score == pytest.approx(plain, abs=0.05)
    (validated, value), = store.top(1, by="validation")
    assert np.isfinite(value)


DRIFT_PROGRAMS_CONFIG = """\
seed = 2
generations = 2

[population]
size = 6
tournament = 2
children = 4
warm_start = ["ppo_clip", "dpo"]
max_statements = 16

[tasks]
seeds = 2
lr_grid = [2.5e-3]  # the same lr as [ppo]: PPO's clip program is then PPO exactly
train = [{ family = "cartpole", total_timesteps = 4096 }]
heldout = [{ family = "cartpole", total_timesteps = 4096, length = 0.8 }]

[ppo]
num_envs = 4
num_steps = 64
lr = 2.5e-3

[validation]
top = 1

[cluster]
batch_size = 6
"""


@pytest.mark.slow
def test_program_search_evolves_drift_programs_on_rl_tasks(tmp_path):
    from disco_rules.api import check, create_run

    config = parse_config(DRIFT_PROGRAMS_CONFIG)
    store = create_run(tmp_path / "run", "test", DRIFT_PROGRAMS_CONFIG, check(config, tmp_path))
    search = make_engine(config, store, LocalPool(functools.partial(Evaluator, 16)))
    search.restore()
    assert search.population.slot == OBJECTIVE
    search.run(2)
    clip = store.candidate(0)
    assert "clip(" in clip.text and clip.status == "ok"
    # PPO's clip as a drift program, at PPO's lr and keys, is PPO: it scores 1 exactly
    assert clip.fitness == pytest.approx(1.0, abs=1e-4)
    assert store.count() == 6 + 4
    assert any(store.candidate(i).fitness != clip.fitness for i in range(1, 10)
               if store.candidate(i).status == "ok")
    (winner, value), = store.top(1, by="validation")
    assert np.isfinite(value)


@pytest.mark.slow
def test_the_regret_scheduler_picks_cartpole_levels_for_a_network_population(tmp_path):
    text = config_variant(CONFIG, {"scheduler": {
        "kind": "regret", "levels": 2, "capacity": 4, "replay_prob": 0.5,
        "families": {"cartpole": {"total_timesteps": 4096}}}})
    straight = make_search(tmp_path / "straight", text)
    straight.run(3)
    rows = straight.store.sampled_levels()
    assert [row.generation for row in rows] == [0, 0, 1, 1, 2, 2]
    assert all(row.family == "cartpole" and np.isfinite(row.regret) for row in rows)
    # every member was scored on its generation's levels, against a per-level PPO baseline
    for row in rows:
        assert straight.store.baseline(row.task) is not None
        scores = [s for s in straight.store.scores_of(5 * row.generation + 1)
                  if s.task == row.task]
        assert len(scores) == 1
    # regret = 1 (PPO's normalised score) - the best member's score on the level
    first = [row for row in rows if row.generation == 0]
    for row in first:
        best = max(s.score for i in range(1, 5) for s in straight.store.scores_of(i)
                   if s.task == row.task)
        assert row.regret == pytest.approx(1.0 - min(best, 5.0))
    interrupted = make_search(tmp_path / "resumed", text)
    interrupted.run(2)
    interrupted.store.close()
    resumed = make_search(tmp_path / "resumed", text)
    resumed.run(3)
    assert archive(resumed.store) == archive(straight.store)
    assert resumed.store.sampled_levels() == rows
