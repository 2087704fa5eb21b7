"""Hostile or broken input to `disco` is one error line on stderr, exit code 2, no traceback,
and a launch that fails leaves no run directory: huge or deeply nested programs, NUL bytes,
damaged archives and checkpoints, out-of-range numbers, impossible paths.

Each case runs the real console script in a fresh process; none starts Ray (every one fails
before it would).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from disco_rules.discovery.store import CandidateRecord, RunStore
from tests.test_cli_runs import DISCO, _environment

QUICKSTART = Path(__file__).parent.parent / "examples" / "quickstart.toml"
SIGNATURE = "def p(w, g, lr, step, progress):\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run directory with one program candidate (#1) and a checkpoint, made without Ray."""
    run_dir = tmp_path_factory.mktemp("bad") / "run"
    with RunStore.create(run_dir, QUICKSTART.read_text()) as store:
        store.add_generation(0, [CandidateRecord(
            id=1, generation=0, kind="program", hash="h1", fitness=0.1, status="ok",
            text="def p(w, g, lr):\n    update = lr * g\n    return update\n")])
        store.save_checkpoint(0, {})
    return run_dir


def _damaged_copy(run: Path, base: Path, how: str) -> Path:
    """A copy of `run` with its archive truncated or garbled, or every checkpoint corrupt."""
    copy = base / how
    shutil.copytree(run, copy)
    archive = copy / "archive.sqlite"
    data = archive.read_bytes()
    if how == "truncated":
        archive.write_bytes(data[:len(data) // 3])
    elif how == "garbled header":
        archive.write_bytes(b"\xff" * 100 + data[100:])
    elif how == "garbled pages":
        archive.write_bytes(data[:4096] + b"\xff" * (len(data) - 4096))
    elif how == "binary config":
        (copy / "config.toml").write_bytes(b"\xff\xfe\x00 not text")
    else:
        for checkpoint in (copy / "checkpoints").iterdir():
            checkpoint.write_bytes(b"not msgpack" + checkpoint.read_bytes()[:20])
    return copy


CASES = {
    # programs
    "a 20,000-term sum": (["inspect", "{tmp}/sum.py"], "nested too deeply"),
    "5,000 nested unary minuses": (["simplify", "{tmp}/neg.py"], "nested too deeply"),
    "a bracketed sum over the nesting limit": (["inspect", "{tmp}/wide.py"],
                                               "nested over 100 levels"),
    "a NUL byte": (["inspect", "{tmp}/nul.py"], "nul.py: line 2, column 15: a NUL character"),
    "a program of 2 MB": (["export", "{tmp}/big.py", "--format", "numpy"],
                          "over 1000000"),
    # run references and options
    "a candidate id beyond SQLite's integers": (["inspect", "{run}:99999999999999999999999"],
                                                "no such candidate"),
    "a negative --top": (["inspect", "{run}", "--top", "-5"], "--top"),
    "a port beyond 65535": (["launch", "{tmp}/ok.toml", "--run-dir", "{tmp}/new",
                             "--metrics-port", "70000"], "--metrics-port"),
    "an unknown command": (["frobnicate"], "invalid choice"),
    "export into a missing folder": (["export", "{run}:1", "--format", "numpy", "-o",
                                      "/missing/dir/x.py"], "/missing/dir/x.py"),
    # damaged runs
    "a truncated archive": (["inspect", "{truncated}"], "is damaged"),
    "a garbled archive header": (["status", "{garbled header}"], "is damaged"),
    "garbled archive pages": (["inspect", "{garbled pages}"], "is damaged"),
    "every checkpoint corrupt": (["resume", "{corrupt checkpoints}"],
                                 "no intact checkpoint"),
    "a config that is not text": (["status", "{binary config}"], "is not UTF-8 text"),
    "--seeds beyond the limit": (["score", "{run}:1", "--run", "{run}", "--seeds", "10000000"],
                                 "--seeds: at most 1000"),
    # configs and run directories
    "a seed of 20 digits": (["launch", "{tmp}/seed.toml", "--run-dir", "{tmp}/new"],
                            "seed: at most 4294967295"),
    "a NaN learning rate": (["launch", "{tmp}/nan.toml", "--run-dir", "{tmp}/new"],
                            "tasks.lr_grid[0]: expected a finite number"),
    "a population of a million": (["launch", "{tmp}/huge.toml", "--run-dir", "{tmp}/new"],
                                  "population.size: at most 100000"),
    "a run too big for this machine": (["launch", "{tmp}/memory.toml", "--run-dir",
                                        "{tmp}/new"], "over this machine's"),
    "a run dir under /dev/null": (["launch", "{tmp}/ok.toml", "--run-dir", "/dev/null/run"],
                                  "cannot create the run directory"),
    "a run dir under /proc": (["launch", "{tmp}/ok.toml", "--run-dir", "/proc/disco-run"],
                              "cannot create the run directory"),
    "a run dir under /sys": (["launch", "{tmp}/ok.toml", "--run-dir", "/sys/disco-run"],
                             "cannot create the run directory"),
}


def _write_inputs(tmp: Path) -> None:
    (tmp / "sum.py").write_text(SIGNATURE + "    u = " + " + ".join(["g"] * 20_000)
                                + "\n    return u\n")
    (tmp / "neg.py").write_text(SIGNATURE + "    u = " + "-" * 5_000 + "g\n    return u\n")
    (tmp / "wide.py").write_text(SIGNATURE + "    u = " + "g + (" * 150 + "g" + ")" * 150
                                 + "\n    return u\n")
    (tmp / "nul.py").write_text(SIGNATURE + "    u = g * lr\x00\n    return u\n")
    (tmp / "big.py").write_text(SIGNATURE + "    u = g\n" * 200_000 + "    return u\n")
    base = QUICKSTART.read_text()
    (tmp / "ok.toml").write_text(base)
    (tmp / "seed.toml").write_text(base.replace("seed = 0", "seed = 99999999999999999999"))
    (tmp / "nan.toml").write_text(base.replace("lr_grid = [0.003, 0.03, 0.3]",
                                               "lr_grid = [nan, 0.03]"))
    (tmp / "huge.toml").write_text(base.replace("size = 32", "size = 1000000"))
    (tmp / "memory.toml").write_text(
        base.replace("seeds = 2", "seeds = 1000").replace("max_statements = 16",
                                                          "max_statements = 1000")
        .replace("lr_grid = [0.003, 0.03, 0.3]", f"lr_grid = {[0.001 * i for i in range(1, 65)]}")
        .replace('{ family = "mlp_regression", horizon = 100 }',
                 '{ family = "mlp_regression", width = 128, depth = 4, in_dim = 64 }'))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_error_line_with_exit_code_2(case, run, tmp_path):
    _write_inputs(tmp_path)
    places = {"tmp": tmp_path, "run": run}
    for how in ("truncated", "garbled header", "garbled pages", "corrupt checkpoints",
                "binary config"):
        if "{" + how + "}" in " ".join(CASES[case][0]):
            places[how] = _damaged_copy(run, tmp_path, how)
    args = [arg.format(**places) for arg in CASES[case][0]]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = subprocess.run([DISCO, *args], cwd=tmp_path, capture_output=True, text=True,
                            env=_environment(run.parent / "jax-cache"), timeout=120)
    assert result.returncode == 2, result.stderr
    # stdout may show the progress of a phase that ran first (loading JAX), nothing else
    assert all(line.startswith("loading JAX") for line in result.stdout.splitlines())
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("disco: error: ") and "Traceback" not in result.stderr
    assert CASES[case][1] in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run directory, no runs/
    assert not Path("/proc/disco-run").exists() and not Path("/sys/disco-run").exists()


def test_the_memory_check_is_part_of_the_config_check_and_passes_the_quickstart():
    from disco_rules.discovery.config import load_config, parse_config
    from disco_rules.discovery.footprint import check_memory, estimate_bytes
    from disco_rules.discovery.plan import TaskPlan

    config, _ = load_config(QUICKSTART)
    check_memory(config, None)
    small = estimate_bytes(config, TaskPlan.from_config(config))
    bigger = parse_config(QUICKSTART.read_text().replace("seeds = 2", "seeds = 20"))
    assert estimate_bytes(bigger, TaskPlan.from_config(bigger)) > small


def test_a_cluster_run_is_checked_against_its_largest_node():
    from disco_rules.discovery.config import ConfigError, load_config
    from disco_rules.discovery.footprint import PROCESS_BYTES, check_cluster_memory, item_bytes
    from disco_rules.discovery.plan import TaskPlan

    config, _ = load_config(QUICKSTART)
    actor = PROCESS_BYTES + item_bytes(config, TaskPlan.from_config(config))
    check_cluster_memory(config, [actor / 2, float(actor)])  # fits on the larger node
    check_cluster_memory(config, [])  # no node seen yet: nothing to check against
    with pytest.raises(ConfigError, match=r"over the 0\.\d GiB that Ray offers on the "
                                          r"cluster's largest node: lower tasks.seeds"):
        check_cluster_memory(config, [actor / 3, actor / 2])
