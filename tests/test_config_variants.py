"""The tests' config variants: a set key takes effect in the parsed config, whatever else
the text holds, and a key under a table that does not exist fails instead of doing nothing."""

import math
import tomllib

import pytest

from disco_rules.discovery.config import parse_config
from tests.configs import config_variant

TEXT = """\
seed = 1  # a comment
generations = 4

[population]
size = 4

[tasks]
lr_grid = [0.01, 0.1]
train = [{ family = "quadratic", dim = 3 }]
"""


def test_a_variant_sets_keys_and_keeps_the_rest():
    text = config_variant(TEXT, {"seed": 7, "population.size": 8,
                                 "population.warm_start": ["sgd"],
                                 "tasks.train": [{"family": "quadratic", "dim": 5}],
                                 "scheduler": {"kind": "regret", "families": {"cartpole": {}}},
                                 "tasks.lr_grid": [1e-08, math.inf]})
    assert tomllib.loads(text) == {
        "seed": 7, "generations": 4, "population": {"size": 8, "warm_start": ["sgd"]},
        "tasks": {"lr_grid": [1e-08, math.inf],
                  "train": [{"family": "quadratic", "dim": 5}]},
        "scheduler": {"kind": "regret", "families": {"cartpole": {}}}}
    assert parse_config(config_variant(TEXT, {"population.size": 8})).population.size == 8


def test_a_key_under_a_missing_table_is_an_error():
    with pytest.raises(KeyError, match=r"no table \[es\] to set es.sigma"):
        config_variant(TEXT, {"es.sigma": 0.1})
    with pytest.raises(KeyError, match=r"no table \[population.network\]"):
        config_variant(TEXT, {"population.network.hidden": 2})
