"""JAX's persistent compilation cache: where it lives, and that a relaunch compiles nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from disco_rules.discovery import compile_cache
from disco_rules.discovery.config import ConfigError, parse_config

# The work of a tiny program search's first generation, as an evaluator actor does it: the
# AdamW baseline over the lr grid, then a population of programs on the same task.
GENERATION = """
import json, sys
from disco_rules.discovery.compile_cache import CompileCount, enable
enable(sys.argv[1])  # as the command line does, before JAX is imported
count = CompileCount().start()
from disco_rules.discovery.evaluator import BaselineItem, Evaluator, ProgramsItem
from disco_rules.discovery.tasks import Task
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse

evaluator = Evaluator(8, sys.argv[1])
task = Task.make("quadratic", dim=4, horizon=12)
sgd = parse("def sgd(w, g, lr):\\n    u = g * lr\\n    return u\\n")
sign = parse("def sign_sgd(w, g, lr):\\n    u = sign(g) * lr\\n    return u\\n")
programs = Encoding(max_statements=8).encode_population([sgd, sign])
evaluator(BaselineItem(task, (0.01, 0.1), 1, 0))
evaluator(ProgramsItem(task, programs, (0.01, 0.1), 1, 0))
print(json.dumps({"compiled": count.compiled, "loaded": count.loaded}))
"""


def run_generation(cache: Path) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", GENERATION, str(cache)], capture_output=True,
                          text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def entries(cache: Path) -> set[str]:
    return {path.name for path in cache.iterdir() if path.is_file()}


@pytest.mark.slow
def test_a_relaunch_with_the_same_cache_compiles_nothing(tmp_path):
    cache = tmp_path / "jax"
    first = run_generation(cache)
    assert first["compiled"] > 0 and first["loaded"] == 0
    written = entries(cache)
    assert len(written) >= first["compiled"]  # every compiled function, however small
    second = run_generation(cache)
    assert second == {"compiled": 0, "loaded": first["compiled"]}
    assert entries(cache) == written


def test_the_default_folder_is_per_user_and_the_env_var_overrides_it(monkeypatch, tmp_path):
    monkeypatch.delenv(compile_cache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.resolve(True) == str(tmp_path / "xdg" / "disco_rules" / "jax")
    monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "mine"))
    assert compile_cache.resolve(True) == str(tmp_path / "mine")
    monkeypatch.setenv(compile_cache.ENV_VAR, "off")
    assert compile_cache.resolve(True) is None
    assert compile_cache.resolve(False) is None
    assert compile_cache.resolve(str(tmp_path / "given")) == str(tmp_path / "given")


@pytest.mark.parametrize("value, expected", [("false", False), ('"/tmp/jax"', "/tmp/jax"),
                                             ("true", True)])
def test_the_config_key_takes_a_switch_or_a_folder(value, expected):
    config = parse_config(f"[cluster]\ncompilation_cache = {value}\n")
    assert config.cluster.compilation_cache == expected
    assert parse_config("").cluster.compilation_cache is True  # on by default


def test_a_number_is_not_a_cache_setting():
    with pytest.raises(ConfigError, match="cluster.compilation_cache"):
        parse_config("[cluster]\ncompilation_cache = 3\n")


def test_an_unwritable_folder_warns_and_leaves_the_cache_off(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="compilation cache off"):
        assert compile_cache.enable(str(blocker / "jax")) is False
    assert os.path.isfile(blocker)
