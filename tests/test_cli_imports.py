"""Cheap things first: config and path errors, resuming a finished run, and export, simplify
and inspect of files and stored programs answer without importing Ray, gymnax or JAX (each
command runs in a fresh interpreter, which then reports the heavy modules it imported)."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from disco_rules.discovery.store import CandidateRecord, RunStore, ValidationRecord
from disco_rules.dsl import library
from tests.configs import config_variant

QUICKSTART = Path(__file__).parent.parent / "examples" / "quickstart.toml"
HEAVY = ("ray", "gymnax", "jax")

# Runs the CLI, then prints the heavy top-level modules now loaded as the last stderr line.
WRAPPER = """
import sys
from disco_rules.discovery.cli import main
code = main(sys.argv[1:])
print("imported:" + ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
sys.exit(code)
""".format(heavy=HEAVY)

DEAD_CODE = "def evolved(w, g, lr):\n    unused = w * w\n    update = lr * g\n    return update\n"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A run whose checkpoint is at its last generation, with one program candidate (#1)."""
    run_dir = tmp_path_factory.mktemp("runs") / "quick-run"
    text = config_variant(QUICKSTART.read_text(), {"generations": 2})
    with RunStore.create(run_dir, text) as store:
        store.add_generation(0, [CandidateRecord(id=1, generation=0, kind="programs",
                                                 text=DEAD_CODE, hash="h1", fitness=0.1,
                                                 status="ok")],
                             validation=[ValidationRecord(candidate_id=1, task="t", score=0.2)])
        store.add_generation(1, [])
        store.save_checkpoint(1, {})
    return run_dir


def disco(*args: str, cwd: Path) -> tuple[int, str, str, list[str]]:
    """(exit code, stdout, stderr without the report line, heavy modules imported)."""
    result = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True,
                            text=True, cwd=cwd, timeout=120)
    *err, report = result.stderr.strip().splitlines()
    assert report.startswith("imported:"), result.stderr
    return result.returncode, result.stdout, "\n".join(err), \
        [m for m in report.removeprefix("imported:").split(",") if m]


def at_once(commands: list[tuple[str, ...]], cwd: Path) -> list[tuple[int, str, str, list[str]]]:
    """`disco` of each command, in processes that run at once (each a fresh interpreter,
    which the test would only wait for): their results, in order."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda args: disco(*args, cwd=cwd), commands))


def test_config_errors_answer_without_heavy_imports(tmp_path):
    (tmp_path / "typo.toml").write_text("generations = 2\ngeneratoins = 3\n")
    cases = [(("launch", "missing.toml"), "no such config file"),
             (("launch", "typo.toml"), "generatoins: unknown key"),
             (("submit", "typo.toml", "--address", "http://127.0.0.1:1",
               "--run-dir", "/tmp/r"), "generatoins: unknown key")]
    for (args, message), (code, _, err, heavy) in zip(cases, at_once(
            [args for args, _ in cases], cwd=tmp_path)):
        assert code == 2 and message in err and err.count("\n") == 0, err
        assert heavy == [], (args, heavy)


def test_resume_of_a_finished_run_says_so_without_heavy_imports(finished_run):
    code, _, err, heavy = disco("resume", str(finished_run), cwd=finished_run.parent)
    assert code == 2 and "is finished (2 of 2 generations)" in err and "--generations" in err
    assert heavy == []


def test_program_commands_answer_without_heavy_imports(finished_run):
    ref = f"{finished_run}:1"
    dpo = str(library.path("dpo"))
    commands = [
        (("export", ref, "--format", "optax"), "def optimizer("),
        (("export", ref, "--format", "torch"), "class QuickRunC1(torch.optim.Optimizer)"),
        (("export", dpo, "--format", "numpy"), "def dpo(ratio, advantage, progress)"),
        (("simplify", ref), "2 -> 1 statements"),
        (("inspect", ref), "candidate #1"),
        (("inspect", dpo), "slot:        objective"),
        (("inspect", str(finished_run)), "validated candidates first"),
    ]
    for (args, expected), (code, out, err, heavy) in zip(commands, at_once(
            [args for args, _ in commands], cwd=finished_run.parent)):
        assert code == 0, (args, err)
        assert expected in out, (args, out)
        assert heavy == [], (args, heavy)


def test_a_drift_program_plots_without_heavy_imports(tmp_path):
    code, _, _, heavy = disco("plot", str(library.path("dpo")), "--drift", "-o",
                              str(tmp_path / "drift.png"), cwd=tmp_path)
    assert code == 0 and heavy == [] and (tmp_path / "drift.png").is_file()


def test_the_wrapper_reports_heavy_imports():
    # a module registered as jax is what the wrapper looks for (importing JAX itself costs
    # seconds and tells no more)
    stub = "import sys, types\nsys.modules['jax'] = types.ModuleType('jax')\n"
    result = subprocess.run([sys.executable, "-c", stub + WRAPPER, "simplify",
                             str(library.path("sgd"))], capture_output=True, text=True,
                            timeout=120)
    assert result.stderr.strip().splitlines()[-1] == "imported:jax"


def test_a_network_exports_without_ray_or_gymnax(tmp_path):
    import numpy as np

    from disco_rules.discovery.search.kinds import network_from_text

    text = '{"network": "ta-lpo", "hidden": 4}'
    weights = np.linspace(-1, 1, network_from_text(text).num_params)
    text_config = config_variant(QUICKSTART.read_text(), {"generations": 2})
    with RunStore.create(tmp_path / "net", text_config) as store:
        store.add_generation(0, [CandidateRecord(id=1, generation=0, kind="ta-lpo", text=text,
                                                 hash="n1", fitness=0.1, status="ok",
                                                 weights=weights)])
    code, out, err, heavy = disco("export", f"{tmp_path / 'net'}:1", "--format", "numpy",
                                  cwd=tmp_path)
    assert code == 0 and "def drift(ratio, advantage, progress)" in out, err
    assert heavy == ["jax"]  # the network's shape class, not the RL training code
