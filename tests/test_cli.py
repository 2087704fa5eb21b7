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


def test_a_generations_override_is_written_into_the_stored_config():
    from disco_rules.discovery.cli import _set_generations
    from disco_rules.discovery.config import parse_config

    text = 'seed = 3\ngenerations = 5\n[population]\nsize = 4\n[validation]\nevery = 2\n'
    config = parse_config(_set_generations(text, 9))
    assert config.generations == 9
    assert config.seed == 3 and config.population.size == 4 and config.validation.every == 2
    assert parse_config(_set_generations("seed = 1\n", 2)).generations == 2
