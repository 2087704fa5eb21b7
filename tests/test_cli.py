"""The command line on program files: output that says what it should, and one-line errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from disco_rules.discovery.cli import main
from disco_rules.dsl.identity import canonical_hash, fingerprint
from disco_rules.dsl.parser import parse

EXAMPLES = Path(__file__).parent.parent / "dsl" / "programs"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_simplify_prints_a_smaller_equivalent_program(tmp_path, capsys):
    source = tmp_path / "p.py"
    source.write_text("def p(w, g, lr):\n    a = g * 1.0\n    dead = exp(w)\n"
                      "    b = a + 0.0\n    u = lr * b\n    return u\n")
    code, out, _ = run(capsys, "simplify", str(source))
    assert code == 0
    assert out.splitlines()[-1] == "# 4 -> 1 statements (3 removed)"
    simplified = parse("\n".join(out.splitlines()[:-1]) + "\n")
    assert len(simplified.body) == 1


def test_inspect_reports_hash_fingerprint_inputs_and_state(capsys):
    code, out, _ = run(capsys, "inspect", str(EXAMPLES / "adam.py"))
    program = parse((EXAMPLES / "adam.py").read_text())
    assert code == 0
    assert f"hash:        {canonical_hash(program)}" in out
    assert f"fingerprint: {fingerprint(program)}" in out
    assert "inputs:      w (unused), g, lr, step" in out
    assert "state:       m, v" in out


def test_export_writes_a_module_that_runs_without_disco(tmp_path, capsys):
    target = tmp_path / "lion_numpy.py"
    code, _, err = run(capsys, "export", str(EXAMPLES / "lion.py"), "--format", "numpy",
                       "-o", str(target))
    assert code == 0 and "wrote" in err
    script = (f"import sys, numpy as np, importlib.util\n"
              f"spec = importlib.util.spec_from_file_location('m', {str(target)!r})\n"
              f"m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
              f"u, mm = m.lion(np.ones(3), np.array([1.0, -2.0, 0.5]), np.zeros(3), 0.1)\n"
              f"print(*u)\n"
              f"assert not {{'dsl', 'discovery', 'populations', 'cluster'}} & set(sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout
    expected = (np.sign(0.1 * np.array([1.0, -2.0, 0.5])) + 0.01) * 0.1
    np.testing.assert_allclose([float(v) for v in out.split()], expected)


@pytest.mark.parametrize("argv, message", [
    (["inspect", "no/such/file.py"], "no such program file"),
    (["simplify", "{bad}"], "line 2, column 12: 'y' is used before it is assigned"),
    (["export", "{bad}", "--format", "optax"], "used before"),
    (["export", "{two_outputs}", "--format", "optax"], "must return one result"),
    (["inspect", "{binary}"], "not a text file"),
])
def test_errors_are_one_line_with_a_nonzero_exit(tmp_path, capsys, argv, message):
    files = {"bad": "def f(x):\n    return y\n", "two_outputs": "def f(w, g):\n    return g, w\n"}
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text)
    (tmp_path / "binary.py").write_bytes(b"\xff\xfe\x00bad")
    argv = [a.format(**{k: str(tmp_path / f"{k}.py") for k in (*files, "binary")})
            for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("disco: error:") and message in err


def test_the_console_script_exits_nonzero_without_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "disco_rules.discovery.cli", "inspect",
                             str(tmp_path / "missing.py")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_an_override_is_written_into_the_stored_config():
    from disco_rules.discovery.config import parse_config, set_top_level

    text = 'seed = 3\ngenerations = 5\n[population]\nsize = 4\n[validation]\nevery = 2\n'
    config = parse_config(set_top_level(set_top_level(text, "generations", 9), "seed", 11))
    assert config.generations == 9 and config.seed == 11
    assert config.population.size == 4 and config.validation.every == 2
    assert parse_config(set_top_level("seed = 1\n", "generations", 2)).generations == 2
    assert parse_config(set_top_level("generations = 2\n", "seed", 4)).seed == 4


@pytest.mark.parametrize("flag, value, message", [
    ("--seed", "-1", "--seed: expected a non-negative integer, got -1"),
    ("--seed", str(2 ** 32), "--seed: at most 4294967295"),
    ("--generations", "0", "--generations: expected a positive integer, got 0"),
])
def test_a_bad_override_is_one_line_before_a_run_dir_exists(tmp_path, capsys, flag, value,
                                                           message):
    config = Path(__file__).parent.parent / "examples" / "quickstart.toml"
    code = main(["launch", str(config), "--run-dir", str(tmp_path / "r"),
                 flag, value])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_distill_refuses_a_count_that_is_not_positive_before_loading_anything(capsys):
    with pytest.raises(SystemExit) as usage:  # argparse's errors: exit 2, no traceback
        main(["distill", "no_such_run:1", "--evaluations", "0"])
    err = capsys.readouterr().err
    assert usage.value.code == 2 and "--evaluations: expected a positive integer, got '0'" in err
    assert "Traceback" not in err


# -- mends: objective-slot programs, --drift on optimizers, names, --top order, help -------

@pytest.mark.parametrize("name", ["dpo", "ppo_clip"])
def test_inspect_describes_drift_programs_in_the_objective_slot(capsys, name):
    code, out, err = run(capsys, "inspect", str(EXAMPLES / f"{name}.py"))
    assert code == 0, err
    assert "slot:        objective" in out
    assert "inputs:      ratio, advantage, progress (unused)" in out
    assert "state:       none" in out


def test_plot_drift_of_an_optimizer_program_says_what_it_is(tmp_path, capsys):
    code, _, err = run(capsys, "plot", str(EXAMPLES / "sgd.py"), "--drift",
                       "-o", str(tmp_path / "x.png"))
    assert code == 2 and err.count("\n") == 1
    assert "sgd(w, g, lr) is an optimizer program" in err and "state variables" not in err


def test_export_name_overrides_and_a_file_keeps_its_programs_name(capsys):
    _, out, _ = run(capsys, "export", str(EXAMPLES / "momentum.py"), "--format", "torch")
    assert "class Momentum(torch.optim.Optimizer)" in out
    _, out, _ = run(capsys, "export", str(EXAMPLES / "momentum.py"), "--format", "torch",
                    "--name", "heavy_ball")
    assert "class HeavyBall(torch.optim.Optimizer)" in out and "Momentum" not in out
    code, _, err = run(capsys, "export", str(EXAMPLES / "momentum.py"), "--format", "numpy",
                       "--name", "not-a-name")
    assert code == 2 and "not a Python identifier" in err


def test_every_option_of_every_command_has_help():
    from disco_rules.discovery.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.choices and a.dest == "command"]
    missing = [f"{name} {action.option_strings or action.dest}"
               for name, command in commands.choices.items()
               for action in command._actions
               if action.help is None and action.dest != "help"]
    assert missing == []


def test_inspect_top_ranks_validated_candidates_first_as_the_summary_does(tmp_path, capsys):
    from disco_rules.discovery.store import CandidateRecord, RunStore, ValidationRecord

    text = (Path(__file__).parent.parent / "examples" / "quickstart.toml").read_text()
    fitness = {1: 0.9, 2: 0.1, 3: 0.5, 4: 0.7}  # training fitness
    validation = {2: 0.3, 3: 0.4}  # held-out scores of the validated ones
    with RunStore.create(tmp_path / "run", text) as store:
        store.add_generation(0, [CandidateRecord(
            id=cid, generation=0, kind="programs", hash=f"h{cid}", fitness=value, status="ok",
            text=f"def p{cid}(w, g, lr):\n    update = lr * g\n    return update\n")
            for cid, value in fitness.items()],
            validation=[ValidationRecord(candidate_id=cid, task="t", score=score)
                        for cid, score in validation.items()])

    def ids(*options):
        code, out, err = run(capsys, "inspect", str(tmp_path / "run"), *options)
        assert code == 0, err
        return [int(line.split()[0]) for line in out.splitlines()[2:]]

    assert ids() == [3, 2, 1, 4]  # validated by validation, then the rest by fitness
    assert ids("--top", "3") == [3, 2, 1]
    assert ids("--by", "fitness") == [1, 4, 3, 2]


def test_the_launch_summary_says_what_scores_mean_and_that_nothing_beats_within_noise(tmp_path, capsys):
    from disco_rules.discovery.cli.summary import print_summary
    from disco_rules.discovery.store import (BaselineRecord, CandidateRecord, RunStore,
                                             ValidationRecord)

    text = (Path(__file__).parent.parent / "examples" / "quickstart.toml").read_text()
    with RunStore.create(tmp_path / "run", text) as store:
        store.add_baseline(BaselineRecord(task="a", score=0.0, loss=1.0, lr=0.01,
                                          optimizer="adamw", weight_decay=1e-4, seeds=2))
        store.add_baseline(BaselineRecord(task="b", score=0.0, loss=1.0, lr=0.01,
                                          optimizer="adamw", weight_decay=1e-4, seeds=2))
        store.add_generation(0, [CandidateRecord(
            id=7, generation=0, kind="programs", hash="h7", fitness=0.2, status="ok",
            text="def p(w, g, lr):\n    update = lr * g\n    return update\n")],
            validation=[ValidationRecord(candidate_id=7, task="a", score=0.12),
                        ValidationRecord(candidate_id=7, task="b", score=-0.3)])
        print_summary(store, 1.0)
    out = capsys.readouterr().out
    assert "0 = the tuned baseline, negative = worse than it, +0.1 = about 10% lower loss" \
        in out
    # +0.12 and -0.30: no win, whatever the count of tasks above 0
    assert "#7 beats" not in out
    assert "no candidate beats tuned AdamW beyond noise on the held-out tasks" in out


def test_plot_titles_are_wrapped_never_cut():
    from disco_rules.discovery.plot import _wrapped

    title = "runs/quickstart-20261201-213000:1234 mlp_regression(depth=2,in_dim=16,width=32)"
    lines = _wrapped(title, 40).splitlines()
    assert len(lines) > 1 and all(len(line) <= 40 for line in lines)
    assert "".join(lines).replace(" ", "") == title.replace(" ", "")
