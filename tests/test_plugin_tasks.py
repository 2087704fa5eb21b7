"""Task families from the user's own module (`family = "module:name"`): in-process, through
Ray actors in other processes, and one-line errors for bad plug-ins."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import disco_rules
from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.config import ConfigError
from disco_rules.discovery.evaluator import Evaluator
from tests.configs import config_variant
from tests.processes import finish_all, kill_all

DISCO = Path(sys.executable).parent / "disco"

MODULE = '''
"""A user's task family: least squares on a fixed random design."""
import jax
import jax.numpy as jnp

from disco_rules import Family, Problem, Range


def build(task):
    dim, n = task.get("dim"), 32

    def data(key):
        k_x, k_w = jax.random.split(key)
        x = jax.random.normal(k_x, (n, dim))
        return x, x @ jax.random.normal(k_w, (dim,))

    def loss(params, batch):
        x, y = batch
        return jnp.mean((x @ params["w"] - y) ** 2)

    return Problem(init=lambda key: {"w": jnp.zeros(dim)}, data=data,
                   train_batch=lambda key, d: d, loss=loss, validation_loss=loss,
                   horizon=task.get("horizon"))


least_squares = Family("least_squares", ranges={"dim": Range(1, 64, integer=True),
                                                "horizon": Range(5, 1000, integer=True)},
                       defaults={"dim": 4, "horizon": 10}, build=build)
'''

CONFIG = """
seed = 1
generations = 2

[population]
size = 4
tournament = 2
children = 3
warm_start = ["sgd", "momentum"]
max_statements = 12

[tasks]
seeds = 1
lr_grid = [0.01, 0.1]
train = [{ family = "quadratic", dim = 3, horizon = 10 }]  # write_plugin sets the family
heldout = [{ family = "quadratic", dim = 5, horizon = 10 }]

[validation]
every = 1
top = 1

[cluster]
batch_size = 4
num_actors = 1
"""


def plugin_config(family: str) -> str:
    """CONFIG with `family` as its training and held-out family."""
    return config_variant(CONFIG, {
        "tasks.train": [{"family": family, "dim": 3, "horizon": 10}],
        "tasks.heldout": [{"family": family, "dim": 5, "horizon": 10}]})


def write_plugin(folder: Path, module: str, source: str, family: str) -> Path:
    (folder / f"{module}.py").write_text(source)
    config = folder / "search.toml"
    config.write_text(plugin_config(family))
    return config


def candidate_rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "archive.sqlite") as db:
        return db.execute("SELECT id, text, fitness, status FROM candidates ORDER BY id"
                          ).fetchall()


@pytest.mark.slow
def test_a_family_from_a_user_module_runs_in_process_and_on_ray_actors(tmp_path):
    config = write_plugin(tmp_path, "my_least_squares", MODULE, "my_least_squares:least_squares")
    # the same search from the command line, run from another folder, with the evaluators
    # in Ray actors (other processes, which get the module through Ray's runtime
    # environment), writes the same archive; it runs while this process runs the search
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    on_ray = subprocess.Popen([str(DISCO), "launch", str(config), "--run-dir",
                               str(tmp_path / "ray")], cwd=elsewhere, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        local = disco_rules.launch(config, run_dir=tmp_path / "local",
                                   pool=LocalPool(lambda: Evaluator(12)))
    except BaseException:
        kill_all([on_ray])
        raise
    ray_run = finish_all({"ray": on_ray}, timeout=600)["ray"]
    keys = set(local.top(1)[0].scores)
    assert keys == {"my_least_squares:least_squares(dim=3,horizon=10)"}
    assert local.top(1)[0].validation_score is not None
    assert ray_run.returncode == 0, ray_run.stderr
    assert candidate_rows(tmp_path / "ray") == candidate_rows(tmp_path / "local")
    assert any(status == "ok" for *_, status in candidate_rows(tmp_path / "ray"))


BAD = [
    ("no_such_module:family", None, "no module named 'no_such_module'"),
    ("plug_missing:nope", MODULE, "module plug_missing has no 'nope'"),
    ("plug_not_family:jnp", MODULE, "plug_not_family.jnp is a module, not a disco_rules Family"),
    ("plug_signature:least_squares",
     MODULE.replace("def build(task):", "def build(task, extra):"),
     "build must take one argument, the task"),
    ("plug_vector_loss:least_squares",
     MODULE.replace("return jnp.mean((x @ params[\"w\"] - y) ** 2)",
                    "return (x @ params[\"w\"] - y) ** 2"),
     r"loss must return a scalar, got shape \(32,\)"),
    ("plug_raises:least_squares", MODULE + "\nraise RuntimeError('broken plug-in')\n",
     r"importing plug_raises failed: in <module>\(\) at plug_raises.py:\d+: RuntimeError: "
     "broken plug-in"),  # the module's line that raised
    ("plug_exits:least_squares", MODULE + "\nimport sys\nsys.exit(3)\n",
     r"importing plug_exits called sys.exit\(3\)"),
    ("plug_build_exits:least_squares",
     MODULE.replace("    dim, n = ", "    raise SystemExit('no data here')\n    dim, n = "),
     r"building its default task called sys.exit\('no data here'\)"),
]


@pytest.mark.parametrize("family, source, message", BAD)
def test_a_bad_plugin_is_a_one_line_config_error_before_any_run_dir(tmp_path, family, source,
                                                                     message):
    module = family.partition(":")[0]
    config = write_plugin(tmp_path, module, source or "", family)
    if source is None:
        (tmp_path / f"{module}.py").unlink()
    with pytest.raises(ConfigError, match=message) as caught:
        disco_rules.launch(config, run_dir=tmp_path / "run")
    assert str(caught.value).startswith(f"tasks.train[0]: task family '{family}'")
    assert "\n" not in str(caught.value) and not (tmp_path / "run").exists()


def test_the_cli_reports_a_bad_plugin_in_one_line_with_exit_code_2(tmp_path):
    config = write_plugin(tmp_path, "plug_cli", MODULE, "plug_cli:absent")
    result = subprocess.run([str(DISCO), "launch", str(config), "--run-dir",
                             str(tmp_path / "run")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "plug_cli has no 'absent'" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_run_remembers_where_its_task_modules_are_so_it_resumes_from_any_folder(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    config = write_plugin(project, "where_tasks", MODULE, "where_tasks:least_squares")
    source = disco_rules.api.read_config(config)  # looks beside the config
    warm_start = disco_rules.api.check(source.config, source.base)  # loads the module there
    disco_rules.api.create_run(tmp_path / "run", source.name, source.text, warm_start).close()
    assert json.loads((tmp_path / "run" / "task_modules.json").read_text()) == {
        "where_tasks": str(project)}
    # a fresh process in another folder builds the run's tasks through what the run recorded
    find = "from disco_rules.api import find_task_modules; find_task_modules(store)\n"
    script = ("from disco_rules.discovery.store import RunStore\n"
              "from disco_rules.discovery.config import parse_config\n"
              "from disco_rules.discovery.plan import TaskPlan\n"
              f"store = RunStore.open({str(tmp_path / 'run')!r}, write=False)\n"
              "{find}print(TaskPlan.from_config(parse_config(store.config_text)).train[0].key)")
    with ThreadPoolExecutor(max_workers=2) as pool:  # with and without it, at once
        found, lost = pool.map(lambda text: subprocess.run(
            [sys.executable, "-c", text], cwd=elsewhere, capture_output=True, text=True,
            timeout=120), (script.format(find=find), script.format(find="")))
    assert found.stdout.strip() == "where_tasks:least_squares(dim=3,horizon=10)", found.stderr
    assert "no module named 'where_tasks'" in lost.stderr  # what resume did before
