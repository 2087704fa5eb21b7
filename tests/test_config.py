"""Search configs: the shipped ones are valid; a bad one is one error naming its key."""

from pathlib import Path

import pytest

from disco_rules.discovery.config import (ConfigError, config_text, load_config, parse_config,
                                          warm_start_paths)
from disco_rules.discovery.plan import TaskPlan, load_warm_start
from disco_rules.discovery.search.programs import ProgramPopulation
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.mutate import MutationConfig
from disco_rules.dsl.ops import OP_NAMES

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("name", ["quickstart.toml", "adamw_search.toml", "regret_search.toml",
                                  "optimizer_search.toml"])
def test_shipped_configs_are_valid(name):
    config, text = load_config(ROOT / "examples" / name)
    plan = TaskPlan.from_config(config)
    assert plan.train and plan.heldout
    assert not {t.key for t in plan.train} & {t.key for t in plan.heldout}
    paths = warm_start_paths(config, ROOT / "examples")
    warm = load_warm_start(paths, Encoding(max_statements=config.population.max_statements))
    # a shipped program by its name, or a file (the flagship's) named by its stem
    assert [p.name for p in warm] == [Path(entry).stem for entry in config.population.warm_start]


def test_defaults_fill_what_the_text_leaves_out():
    config = parse_config("seed = 4\n[population]\nsize = 9\n")
    assert config.seed == 4 and config.population.size == 9
    assert config.population.tournament == 4 and config.tasks.seeds == 2


@pytest.mark.parametrize("text, message", [
    ('seed = "x"', "seed: expected an integer, got 'x'"),
    ("[population]\nsize = 0", "population.size: expected a positive integer, got 0"),
    ("[population]\nsizee = 3", "population.sizee: unknown key in [population]"),
    ("colour = 1", "colour: unknown key in the top level"),
    ("[tasks]\ntrain = [1]", "tasks.train[0]: expected a task table"),
    ("[tasks]\nlr_grid = []", "tasks.lr_grid: expected a non-empty list"),
    ("[tasks]\nlr_grid = [0.1, -1]", "tasks.lr_grid: learning rates must be positive"),
    ("[tasks]\nfitness_cap = 0", "tasks.fitness_cap: a score in (0, 5], got 0"),
    ("[tasks]\nfitness_cap = 6", "tasks.fitness_cap: a score in (0, 5], got 6"),
    ("[cluster]\nnum_actors = 2.5", "cluster.num_actors: expected an integer, got 2.5"),
    ("[cluster]\nnum_gpus_per_actor = 2", "cluster.num_gpus_per_actor: expected 0 or 1"),
    ("[population]\nsize = 3\ntournament = 5", "population.tournament: must not exceed"),
    ("[population]\nsize = 3\nelite = 3", "population.elite: members kept past their age"),
    ("[population]\nelite = -1", "population.elite: expected a non-negative integer, got -1"),
    ('[population]\nkind = "lpo"\nelite = 1', "population.elite: program populations only"),
    ('[population]\nkind = "lpx"',
     "population.kind: unknown population kind 'lpx'; valid population kinds: programs, lpo"),
    ('[population]\nkind = "lpo"\n[es]\nstrategy = "OpenES"', "es.strategy: 'OpenES' is not"),
    ('[population]\nkind = "lpo"\nsize = 7', "population.size: Open_ES samples antithetic"),
    ('[population]\nkind = "lpo"\n[es]\nsigma = 0', "es.sigma and es.learning_rate must"),
    ('[population]\nkind = "lpo"\n[ppo]\nnum_minibatches = 3',
     "ppo.num_minibatches: must divide"),
    ("[ppo]\nanneal_lr = 1", "ppo.anneal_lr: expected true or false"),
    ("population = 3", "population: expected a [population] table"),
    ('[scheduler]\nkind = "plr"',
     "scheduler.kind: unknown scheduler 'plr'; valid schedulers: none, regret, uniform"),
    ("[scheduler]\nlevels = 0", "scheduler.levels: expected a positive integer"),
    ("[scheduler]\nfamilies = 3", "scheduler.families: expected a table of tables"),
    ('[scheduler]\nkind = "regret"', "scheduler.families: families must map at least one"),
    ('[scheduler]\nkind = "regret"\nfamilies = { nope = {} }',
     "scheduler.families: unknown task family 'nope'"),
    ('[scheduler]\nkind = "uniform"\nfamilies = { quadratic = { dim = 1 } }',
     "scheduler.families.quadratic: dim=1 is outside its range"),
    ('[scheduler]\nkind = "regret"\ncapacity = 0\nfamilies = { rosenbrock = {} }',
     "scheduler.capacity: capacity must be an int >= 1"),
    ('[scheduler]\nkind = "regret"\nreplay_prob = 1.5\nfamilies = { rosenbrock = {} }',
     "scheduler.replay_prob: replay_prob must be a number in [0, 1]"),
    ('[scheduler]\nkind = "regret"\nregret_of = "worst"\nfamilies = { rosenbrock = {} }',
     "scheduler.regret_of: regret_of='worst' is not one of best, mean"),
    ("seed = ", "not valid TOML"),
    ("[cluster]\ndeadline_s = 0", "cluster.deadline_s: expected a positive number of seconds"),
    ('[cluster]\ndeadline_s = "1h"', "cluster.deadline_s: expected a number, got '1h'"),
    ("[cluster]\ndeadline_s = inf", "cluster.deadline_s: expected a finite number"),
    ('[population]\nops = ["orth", "frob"]',
     "population.ops: unknown op 'frob'; valid ops: neg, abs, sign"),
    ('[population]\nops = ["copy"]', "population.ops: unknown op 'copy'; valid ops: neg,"),
    ('[population]\nops = ["add", "add"]', "population.ops: each op at most once"),
    ('[population]\nops = "orth"', "population.ops: expected a non-empty list"),
])
def test_a_bad_value_names_its_key(text, message):
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_population_ops_lets_a_search_draw_orth_and_defaults_to_the_mutations_own():
    listed = parse_config('[population]\nops = ["orth", "add", "interp"]\n')
    assert listed.population.ops == ("orth", "add", "interp")
    assert parse_config(config_text(listed)).population.ops == ("orth", "add", "interp")
    assert ProgramPopulation(listed, None).evolution.mutation.ops == ("orth", "add", "interp")
    default = parse_config("")
    assert default.population.ops == MutationConfig().ops and "orth" not in default.population.ops
    assert ProgramPopulation(default, None).evolution.mutation == MutationConfig(
        max_statements=default.population.max_statements)


def test_an_unknown_op_names_every_valid_one():
    with pytest.raises(ConfigError) as info:
        parse_config('[population]\nops = ["orth", "frob"]')
    assert str(info.value).endswith(", ".join(n for n in OP_NAMES if n != "copy"))


def test_a_deadline_is_measured_unless_the_config_sets_one():
    assert parse_config("").cluster.deadline_s is None
    assert parse_config("[cluster]\ndeadline_s = 90").cluster.deadline_s == 90.0


@pytest.mark.parametrize("text", ["", "\n\n", "# a search, some day\n# [tasks]\n"])
def test_an_empty_config_file_is_refused_and_points_at_the_quickstart(tmp_path, text):
    path = tmp_path / "search.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"search.toml: the file is empty \(or only "
                                          r"comments\); start from examples/quickstart.toml"):
        load_config(path)


@pytest.mark.parametrize("table, message", [
    ('train = [{ family = "nope" }]', "tasks.train[0]: unknown task family 'nope'"),
    ('train = [{ family = "quadratic", dimm = 3 }]', "tasks.train[0]"),
    ('train = [{ family = "quadratic", dim = 1 }]', "tasks.train[0]"),
    ('train = [{ family = "quadratic" }]\nheldout = [{ family = "quadratic" }]',
     "also a training task"),
])
def test_bad_tasks_name_their_place_in_the_config(table, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TaskPlan.from_config(parse_config(f"[tasks]\n{table}\n"))


def test_an_unknown_warm_start_lists_the_examples(tmp_path):
    config = parse_config('[population]\nwarm_start = ["adamw", "nadam"]\n')
    with pytest.raises(ConfigError, match="'nadam' is neither a shipped program .*lion"):
        warm_start_paths(config, tmp_path)


def test_a_warm_start_file_that_does_not_parse_is_a_config_error(tmp_path):
    (tmp_path / "mine.py").write_text("def mine(w, g, lr):\n    return foo(g)\n")
    config = parse_config('[population]\nwarm_start = ["mine.py"]\n')
    with pytest.raises(ConfigError, match="population.warm_start: .*mine.py.*unknown function"):
        load_warm_start(warm_start_paths(config, tmp_path), Encoding())
