"""Messages a person can follow: a user's task error names the user's function and line
(the traceback with DISCO_DEBUG=1), and the Python API shows its progress when asked."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import disco_rules
from disco_rules.cluster.local import LocalPool
from disco_rules.cluster.reasons import (Frame, debug_traceback, frames_in, is_users, one_line,
                                         user_frame)
from disco_rules.discovery.evaluator import Evaluator
from tests.test_api import TINY
from tests.test_plugin_tasks import MODULE, write_plugin

DISCO = Path(sys.executable).parent / "disco"
LOSS_LINE = 'return jnp.mean((x @ params["w"] - y) ** 2)'


def _plugin(folder: Path, name: str, loss_line: str) -> Path:
    """A user's task module whose loss line is `loss_line`, and a config that uses it."""
    source = MODULE.replace(LOSS_LINE, loss_line)
    assert source != MODULE or loss_line == LOSS_LINE
    return write_plugin(folder, name, source, f"{name}:least_squares")


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_an_error_names_the_innermost_frame_of_the_users_code(tmp_path):
    import jax

    _plugin(tmp_path, "shapes_here", 'return jnp.mean((x @ params["w"][:2] - y) ** 2)')
    spec = importlib.util.spec_from_file_location("shapes_here", tmp_path / "shapes_here.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problem = module.build(_Task())
    key = jax.random.PRNGKey(0)
    with pytest.raises(TypeError) as caught:  # jnp raises deep inside JAX: not the user's
        problem.loss(problem.init(key), problem.data(key))
    line = _line_of(tmp_path / "shapes_here.py", 'params["w"][:2]')
    assert one_line(caught.value) == (f"in loss() at shapes_here.py:{line}: TypeError: "
                                      f"{str(caught.value).splitlines()[0]}")
    assert "dot_general requires contracting dimensions" in one_line(caught.value)
    # without frames, or with none of the user's, it is the bare `Type: message`
    assert one_line(caught.value, frames=()).startswith("TypeError: dot_general requires")


class _Task:
    """What a Family's build reads of a task."""

    def get(self, name):
        return {"dim": 4, "horizon": 10}[name]


def test_libraries_disco_and_pythons_own_files_are_not_the_users():
    import jax

    import disco_rules.discovery.evaluator as evaluator

    assert not is_users(jax.__file__)  # an installed package
    assert not is_users(evaluator.__file__)  # disco's own
    assert not is_users(os.__file__)  # the standard library
    assert not is_users("<frozen importlib._bootstrap>")
    assert is_users(__file__)  # a test is the user's code, as a plug-in beside a config is
    assert is_users("/tmp/ray/session_1/runtime_resources/py_modules_files/_ray_pkg_ab/my.py")


RAY_TRACEBACK = '''ray::EvaluatorActor.evaluate() (pid=1, ip=127.0.0.1)
  File "{disco}", line 117, in __call__
    tuned = tuned_adamw(item.task, lrs, item.weight_decays, keys, item.scored_seeds,
  File "/tmp/ray/session_1/runtime_resources/py_modules_files/_ray_pkg_ab/my_task.py", line 19, in loss
    return jnp.mean((x @ params["w"].reshape(4) - y) ** 2)
  File "{jax}", line 375, in _reshape
    newshape = _compute_newshape(self, args[0] if len(args) == 1 else args)
TypeError: cannot reshape array of shape (3,) (size 3) into shape 4 (size 4)'''


def test_a_ray_workers_traceback_text_names_the_users_frame():
    import jax

    import disco_rules.discovery.evaluator as evaluator

    text = RAY_TRACEBACK.format(disco=evaluator.__file__, jax=jax.__file__)
    frames = frames_in(text)
    assert [frame.name for frame in frames] == ["__call__", "loss", "_reshape"]
    assert user_frame(frames) == frames[1] and frames[1].line == 19
    error = TypeError("cannot reshape array of shape (3,) (size 3) into shape 4 (size 4)")
    assert one_line(error, frames) == ("in loss() at my_task.py:19: TypeError: cannot reshape "
                                       "array of shape (3,) (size 3) into shape 4 (size 4)")
    assert user_frame([frames[0], frames[2]]) is None
    assert one_line(error, [frames[0], frames[2]]).startswith("TypeError: cannot reshape")
    assert user_frame([Frame("<string>", 1, "f")]) is None


def test_the_debug_traceback_shows_what_a_one_line_message_hid():
    def users_loss():
        raise TypeError("shapes differ")

    try:
        try:
            users_loss()
        except TypeError as error:
            raise ValueError(f"tracing failed: {one_line(error)}") from None
    except ValueError as error:
        shown = debug_traceback(error)
    assert shown.index("TypeError: shapes differ") < shown.index("ValueError: tracing failed")
    assert "in users_loss" in shown and shown.count("Traceback (most recent call last)") == 2


def test_a_local_pools_failure_names_the_users_line(tmp_path, capsys, monkeypatch):
    def evaluate(item):
        return {}["no such key"]  # the user's line

    line = _line_of(Path(__file__), '{}["no such key"]')
    (result,) = LocalPool(lambda: evaluate).map([1])
    assert result.reason == f"in evaluate() at {Path(__file__).name}:{line}: KeyError: " \
                            "'no such key'"
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("DISCO_DEBUG", "1")
    LocalPool(lambda: evaluate).map([1])
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def _launch(config: Path, debug: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DISCO_DEBUG"}
    if debug:
        env["DISCO_DEBUG"] = "1"
    return subprocess.run([str(DISCO), "launch", str(config), "--run-dir",
                           str(config.parent / f"run-{debug}")], cwd=config.parent,
                          capture_output=True, text=True, timeout=600, env=env)


def test_a_shape_error_caught_by_the_config_check_names_the_users_line(tmp_path):
    config = _plugin(tmp_path, "my_task", 'return jnp.mean((x @ params["w"][:2] - y) ** 2)')
    line = _line_of(tmp_path / "my_task.py", 'params["w"][:2]')
    with ThreadPoolExecutor(max_workers=2) as pool:  # two fresh processes: at once
        quiet, loud = pool.map(lambda debug: _launch(config, debug=debug), (False, True))
    assert quiet.returncode == 2 and quiet.stderr.count("\n") == 1, quiet.stderr
    assert (f"failed: in loss() at my_task.py:{line}: TypeError: dot_general requires "
            "contracting dimensions") in quiet.stderr
    assert loud.returncode == 2
    assert f'my_task.py", line {line}, in loss' in loud.stderr  # the traceback
    assert loud.stderr.splitlines()[-1] == quiet.stderr.strip()


@pytest.mark.slow
def test_a_shape_error_in_a_ray_actor_names_the_users_line(tmp_path):
    # the config check traces the default task (dim 4), which works; the run's dim 3 fails
    config = _plugin(tmp_path, "my_task", 'return jnp.mean((x @ params["w"].reshape(4) - y) ** 2)')
    line = _line_of(tmp_path / "my_task.py", "reshape(4)")
    result = _launch(config, debug=True)
    assert result.returncode == 2, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("disco: error: the baseline on my_task:least_squares(dim=3")
    assert f"failed: in loss() at my_task.py:{line}: TypeError: cannot reshape" in last
    assert f'my_task.py", line {line}, in loss' in result.stderr  # the actor's traceback


@pytest.mark.slow  # runs three searches of a generation each
def test_the_api_shows_its_progress_when_asked_and_nothing_otherwise(tmp_path, capsys):
    pool = LocalPool(lambda: Evaluator(16))
    disco_rules.launch(TINY, run_dir=tmp_path / "quiet", generations=1, pool=pool)
    assert capsys.readouterr().out == ""  # not a terminal: off by default
    disco_rules.launch(TINY, run_dir=tmp_path / "shown", generations=1, pool=pool,
                       progress=True)
    out = capsys.readouterr().out
    assert out.startswith("loading JAX and checking the config...")
    assert "gen   0 |" in out and "meta-validation on held-out tasks: #" in out
    disco_rules.resume(tmp_path / "shown", generations=2, pool=pool, progress=True)
    assert "gen   1 |" in capsys.readouterr().out


def test_a_standard_error_is_shown_only_from_enough_results():
    from disco_rules.discovery.verdict import judge, with_error

    assert with_error(0.5, 0.1, 3) == "+0.500 ± 0.100"
    assert with_error(-0.651, 0.599, 2) == "-0.651 from 2 results"  # half the gap of two
    assert with_error(-0.651, 0.0, 1) == "-0.651 from 1 result"
    two = judge({"a": [-0.1], "b": [-1.3]})
    assert "±" not in two.text("#0") and "-0.700 from 2 results" in two.text("#0")
    three = judge({"a": [0.2, 0.21], "b": [0.19], "c": [0.2]})
    assert three.kind == "beats" and " ± " in three.text("#0")


@pytest.mark.parametrize("scores, shown", [
    ({"quadratic(dim=4)": -0.1, "rnn(width=8)": -1.3}, False),  # 2 held-out tasks
    ({"quadratic(dim=4)": -0.1}, False),  # one: the standard error was printed as 0.000
    ({"quadratic(dim=4)": -0.1, "rnn(width=8)": -1.3, "quadratic(dim=8)": -0.5}, True)])
def test_the_summary_and_pareto_show_a_standard_error_only_from_enough_tasks(
        tmp_path, capsys, scores, shown):
    from disco_rules.discovery.cli import main
    from disco_rules.discovery.cli.summary import print_summary
    from disco_rules.discovery.store import RunStore
    from tests.test_transfer_command import _validated_run

    run_dir = _validated_run(tmp_path / "run", {1: scores})
    with RunStore.open(run_dir) as store:
        print_summary(store, 1.0)
    out = capsys.readouterr().out
    chosen = next(line for line in out.splitlines() if line.startswith("chosen: #1"))
    verdict = next(line for line in out.splitlines() if line.startswith("verdict: "))
    n = len(scores)
    assert (("+-" in chosen or "±" in chosen) == shown), chosen
    assert ("±" in verdict) == shown and (f"from {n} result" in verdict) != shown, verdict
    assert main(["inspect", str(run_dir), "--pareto"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(">"))
    assert len(row.split()) == (6 if shown else 4), row  # mark, size, id, valid. (, +-, -2SE)
