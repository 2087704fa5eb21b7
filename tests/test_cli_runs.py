"""The `disco` command line end to end on real runs, as a user runs it: `disco launch` starts
Ray in-process in a subprocess, then inspect, simplify, export and plot read the run;
a run killed with SIGKILL resumes to the archive of a run left alone; and bad input is one
error line that leaves no run directory behind.

One uninterrupted run (module fixture) serves every test; two more, launched at once, are
killed (SIGKILL) or stopped (SIGTERM) and resumed. All share a JAX compilation cache (a tmp
dir) so that only the first compiles.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.identity import fingerprint
from disco_rules.dsl.parser import parse
from disco_rules.discovery.store import RunStore
from tests.configs import config_variant
from tests.processes import reap_session

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="process checks read /proc (Linux)")

DISCO = str(Path(sys.executable).parent / "disco")
EXAMPLES = Path(__file__).parent.parent / "dsl" / "programs"
GENERATIONS = 5
RUN_TIMEOUT_S = 300

# Tiny, but each generation after the first trains long enough (horizon 1000) that a kill
# after generation 1 reliably lands before the run ends.
CONFIG = f"""\
seed = 3
generations = {GENERATIONS}

[population]
size = 6
tournament = 3
children = 4
warm_start = ["sgd", "momentum"]
max_statements = 12

[tasks]
seeds = 1
lr_grid = [0.01, 0.1]
train = [{{ family = "quadratic", dim = 4, horizon = 1000 }}]
heldout = [{{ family = "quadratic", dim = 6, horizon = 1000, condition_number = 10.0 }}]

[validation]
every = 2
top = 2

[cluster]
num_actors = 1
batch_size = 8
"""


# -- processes -----------------------------------------------------------------------------

def _environment(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)  # `disco launch` must start its own Ray, not join one
    env.pop("DISCO_DEBUG", None)
    env.update(JAX_COMPILATION_CACHE_DIR=str(cache_dir),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    return env


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    survivors: dict[int, str]  # processes of its session alive after it ended


def _run_in_session(args: list[str], cwd: Path, env: dict[str, str],
                    timeout: float = RUN_TIMEOUT_S) -> Finished:
    """Run a command in a new session, to the end, and check its processes went with it."""
    proc = subprocess.Popen(args, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        reap_session(proc.pid, grace_s=10)
        pytest.fail(f"{' '.join(args)} ran over {timeout} s\n{out}\n{err}")
    return Finished(proc.returncode, out, err, reap_session(proc.pid))


def _disco(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A quick `disco` command (no Ray)."""
    return subprocess.run([DISCO, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


# -- archives ------------------------------------------------------------------------------

def _rows(run_dir: Path) -> dict[str, list[tuple]]:
    """Every archived row that says what the search did, in a fixed order."""
    db = sqlite3.connect(f"file:{run_dir / 'archive.sqlite'}?mode=ro", uri=True)
    try:
        return {
            "candidates": db.execute("SELECT * FROM candidates ORDER BY id").fetchall(),
            "scores": db.execute("SELECT candidate_id, task, generation, score, loss, lr, curve "
                                 "FROM scores ORDER BY candidate_id, task").fetchall(),
            "validation": db.execute("SELECT * FROM validation "
                                     "ORDER BY candidate_id, task").fetchall(),
            "baselines": db.execute("SELECT * FROM baselines ORDER BY task").fetchall(),
            "events": db.execute("SELECT * FROM events ORDER BY generation, name").fetchall(),
        }
    finally:
        db.close()


def _generation_lines(stdout: str) -> list[re.Match]:
    return list(re.finditer(r"^gen +(\d+) \| +(\d+) candidates, +(\d+) evaluated, +(\d+) cached",
                            stdout, re.M))


# -- the uninterrupted run -----------------------------------------------------------------

@dataclass
class Run:
    base: Path
    config: Path
    run_dir: Path
    env: dict[str, str]
    launch: Finished


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    base = tmp_path_factory.mktemp("cli_runs")
    config = base / "tiny.toml"
    config.write_text(CONFIG)
    env = _environment(base / "jax-cache")
    run_dir = base / "straight"
    launch = _run_in_session([DISCO, "launch", str(config), "--run-dir", str(run_dir)],
                             cwd=base, env=env)
    if launch.returncode != 0:
        pytest.fail(f"disco launch failed ({launch.returncode}):\n{launch.stdout}\n"
                    f"{launch.stderr}")
    return Run(base, config, run_dir, env, launch)


@pytest.mark.slow  # `run` is a whole 5-generation `disco launch` on a local Ray
def test_launch_prints_a_line_per_generation_and_the_run_directory(run):
    out = run.launch.stdout
    # the first line but the progress of the phases before the run appears (loading JAX for
    # the memory estimate, starting Ray: the run directory is made once Ray is up)
    first = [line for line in out.splitlines()
             if not line.startswith(("loading JAX", "starting Ray"))][0]
    assert first == f"run directory: {run.run_dir}"
    lines = _generation_lines(out)
    assert [int(m[1]) for m in lines] == list(range(GENERATIONS))
    with RunStore.open(run.run_dir) as store:
        per_generation = dict(store.query(
            "SELECT generation, COUNT(*) FROM candidates GROUP BY generation"))
        count = store.count()
        winners = [record.id for record, _ in store.top(3, by="validation")]
    assert count == sum(per_generation.values()) > 0
    for m in lines:
        candidates, evaluated, cached = int(m[2]), int(m[3]), int(m[4])
        assert candidates == per_generation[int(m[1])]
        assert evaluated + cached == candidates
    assert [int(m[2]) for m in lines] == [6] + [4] * (GENERATIONS - 1)  # size, then children
    assert f"run directory: {run.run_dir}  ({count} candidates archived" in out
    shown = re.findall(r"^  #(\d+) +validation \S+  training fitness", out, re.M)
    assert [int(i) for i in shown] == winners and winners
    assert "Traceback" not in run.launch.stderr


@pytest.mark.slow
def test_launch_leaves_no_process_behind(run):
    assert run.launch.survivors == {}


@pytest.mark.slow
def test_the_run_directory_holds_config_archive_checkpoints_and_warm_starts(run):
    assert (run.run_dir / "config.toml").read_text() == CONFIG
    assert (run.run_dir / "archive.sqlite").is_file()
    checkpoints = sorted(p.name for p in (run.run_dir / "checkpoints").iterdir())
    assert checkpoints[-1] == f"checkpoint-{GENERATIONS - 1:08d}.msgpack"
    with RunStore.open(run.run_dir) as store:
        assert store.last_generation() == GENERATIONS - 1
        assert store.load_checkpoint()[0] == GENERATIONS - 1
    warm = sorted((run.run_dir / "warm_start").iterdir())
    assert [p.name for p in warm] == ["00-sgd.py", "01-momentum.py"]
    for path, name in zip(warm, ["sgd", "momentum"]):  # the programs, printed
        assert parse(path.read_text()) == parse((EXAMPLES / f"{name}.py").read_text())


@pytest.mark.slow
def test_inspect_lists_the_best_programs(run):
    result = _disco("inspect", str(run.run_dir), "--top", "5", "--by", "fitness",
                    cwd=run.base, env=run.env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    with RunStore.open(run.run_dir) as store:
        assert lines[0].startswith(f"run {run.run_dir}: {store.count()} candidates archived, ")
        best = store.top(5)
        winners = [record.id for record, _ in store.top(3, by="validation")]
    ids = [int(line.split()[0]) for line in lines[2:]]
    assert ids == [record.id for record, _ in best] and len(ids) == 5
    by_default = _disco("inspect", str(run.run_dir), "--top", "5", cwd=run.base, env=run.env)
    ids = [int(line.split()[0]) for line in by_default.stdout.splitlines()[2:]]
    assert ids[:len(winners)] == winners  # the launch summary's order


@pytest.mark.slow
def test_inspect_json_ranks_archived_programs_by_fitness(run):
    result = _disco("inspect", str(run.run_dir), "--json", "--by", "fitness", cwd=run.base,
                    env=run.env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    top = data["top"]
    fitnesses = [entry["fitness"] for entry in top]
    assert len(top) == 10
    assert fitnesses == sorted(fitnesses, reverse=True)
    assert len({entry["hash"] for entry in top}) == len(top)  # distinct programs
    with RunStore.open(run.run_dir) as store:
        assert data["candidates"] == store.count()
        all_fitness = [f for (f,) in store.query("SELECT fitness FROM candidates")]
        assert fitnesses[0] == max(f for f in all_fitness if f is not None)
        for entry in top:
            record = store.candidate(entry["id"])  # KeyError if it is not archived
            assert (record.fitness, record.hash, record.text, record.generation) == \
                (entry["fitness"], entry["hash"], entry["program"], entry["generation"])
            validation = [v.score for v in store.validation_of(entry["id"])]
            if validation:
                assert entry["validation"] == pytest.approx(np.mean(validation))
            else:
                assert entry["validation"] is None
        assert any(entry["validation"] is not None for entry in top)


def _validated_descendant(store: RunStore) -> int:
    """The validated candidate with the longest lineage (a search child, not a warm start)."""
    ids = [cid for (cid,) in store.query(
        "SELECT DISTINCT v.candidate_id FROM validation v JOIN candidates c "
        "ON c.id = v.candidate_id WHERE c.parent_id IS NOT NULL ORDER BY v.candidate_id")]
    assert ids, "the run validated no child of the search"
    return max(ids, key=lambda cid: (len(store.lineage(cid)), -cid))


@pytest.mark.slow
def test_inspect_a_candidate_shows_its_lineage_and_scores_per_task(run):
    with RunStore.open(run.run_dir) as store:
        cid = _validated_descendant(store)
        record = store.candidate(cid)
        lineage = [r.id for r in store.lineage(cid)]
        scores = store.scores_of(cid)
        heldout = {v.task for v in store.validation_of(cid)}
    result = _disco("inspect", f"{run.run_dir}:{cid}", cwd=run.base, env=run.env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(record.text)
    assert f"candidate #{cid}, generation {record.generation}: {record.status}" in out
    (lineage_line,) = [line for line in out.splitlines() if line.startswith("lineage: ")]
    assert [int(i) for i in re.findall(r"#(\d+)", lineage_line)] == lineage
    assert len(lineage) >= 2
    kinds = set()
    for score in scores:
        kind = "held-out" if score.task in heldout else "training"
        kinds.add(kind)
        (line,) = [line for line in out.splitlines() if f" {score.task}: score " in line]
        assert line.split()[0] == kind
        assert f"loss {score.loss:.4g}" in line and f"lr {score.lr:g}" in line
        assert ("dim=6" if kind == "held-out" else "dim=4") in score.task
    assert kinds == {"training", "held-out"}


@pytest.mark.slow
def test_simplify_prints_an_equivalent_program_and_the_statement_count(run):
    with RunStore.open(run.run_dir) as store:
        # the stored program with the most statements, so that simplify has work to do
        record = max((store.candidate(cid) for (cid,) in store.query(
            "SELECT id FROM candidates WHERE status = 'ok'")),
            key=lambda r: (len(parse(r.text).body), -r.id))
    result = _disco("simplify", f"{run.run_dir}:{record.id}", cwd=run.base, env=run.env)
    assert result.returncode == 0, result.stderr
    *program_lines, count_line = result.stdout.splitlines()
    simplified = parse("\n".join(program_lines) + "\n")
    before, after, removed = map(int, re.fullmatch(
        r"# (\d+) -> (\d+) statements \((\d+) removed\)", count_line).groups())
    assert before == len(parse(record.text).body)
    assert after == len(simplified.body) and removed == before - after
    assert fingerprint(simplified) == record.fingerprint


def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_export_optax_writes_an_optimizer_that_updates_a_pytree(run, tmp_path):
    import jax
    import optax

    with RunStore.open(run.run_dir) as store:
        winner = store.top(1, by="validation")[0][0]
    program = parse(winner.text)
    target = tmp_path / "winner_optax.py"
    result = _disco("export", f"{run.run_dir}:{winner.id}", "--format", "optax",
                    "-o", str(target), cwd=run.base, env=run.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and f"wrote {target}" in result.stderr
    source = target.read_text()
    assert not re.search(r"^\s*(from|import)\s+(dsl|discovery|populations|cluster)\b",
                         source, re.M)

    optimizer = _load_module(target, "winner_optax").optimizer(0.1)
    assert isinstance(optimizer, optax.GradientTransformation)
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=3).astype(np.float32),
              "b": {"c": rng.normal(size=(2, 2)).astype(np.float32)}}
    state_names = [p for p in program.params
                   if p not in ("w", "g", "lr", "step", "progress")]
    expected_state = {name: jax.tree.map(np.zeros_like, params) for name in state_names}
    state = optimizer.init(params)
    weights, expected_weights = params, params
    for step in (1, 2):  # two steps, so that the state carried between them counts
        grads = jax.tree.map(lambda p: rng.normal(size=p.shape).astype(np.float32), params)
        updates, state = optimizer.update(grads, state, weights)
        weights = optax.apply_updates(weights, updates)

        def expected(w, g, *state_leaves):
            inputs = {"w": w, "g": g, "lr": 0.1, "step": float(step), "progress": 0.0,
                      **dict(zip(state_names, state_leaves))}
            return evaluate(program, {p: inputs[p] for p in program.params})

        outputs = jax.tree.map(expected, expected_weights, grads,
                               *(expected_state[n] for n in state_names))
        leaves = jax.tree.transpose(jax.tree.structure(params), None, outputs)
        expected_weights = jax.tree.map(lambda w, u: w - u, expected_weights, leaves[0])
        expected_state = dict(zip(state_names, leaves[1:]))
        assert jax.tree.structure(weights) == jax.tree.structure(params)
        for got, want in zip(jax.tree.leaves(weights), jax.tree.leaves(expected_weights)):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(jax.tree.leaves(weights)[0], params["a"])  # it did move


@pytest.mark.slow
def test_plot_writes_a_png_with_the_fitness_and_held_out_panels(run, tmp_path):
    target = tmp_path / "run.png"
    result = _disco("plot", str(run.run_dir), "-o", str(target), cwd=run.base, env=run.env)
    assert result.returncode == 0, result.stderr
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    with RunStore.open(run.run_dir) as store:
        winner = store.top(1, by="validation")[0][0]
        panels = 1 + len(store.validation_of(winner.id))  # fitness + one per held-out task
    assert (width, height) == (500 * panels, 400) and panels == 2


# -- a run killed with SIGKILL, or stopped with SIGTERM, then resumed ----------------------

@dataclass
class Interrupted:
    run_dir: Path
    log: Path
    returncode: int
    survivors: dict[int, str]
    checkpoints: list[str]  # what the interrupted run left
    resumed: Finished


@pytest.fixture(scope="module")
def interrupted(run) -> dict[signal.Signals, Interrupted]:
    """Two launches of the uninterrupted run's config, at once: one killed with SIGKILL,
    one stopped with SIGTERM, each right after its checkpoint of generation 1; then both
    resumed, at once. (Independent runs, each on a Ray of its own: one at a time, the test
    would mostly wait for Ray to start and stop.)"""
    hows = (signal.SIGKILL, signal.SIGTERM)
    procs, logs, signalled = {}, {}, set()
    try:
        for how in hows:
            run_dir = run.base / f"killed-{how.name}"
            logs[how] = run.base / f"killed-{how.name}.log"
            with open(logs[how], "w") as output:
                procs[how] = subprocess.Popen(
                    [DISCO, "launch", str(run.config), "--run-dir", str(run_dir)],
                    cwd=run.base, env=run.env, stdout=output, stderr=subprocess.STDOUT,
                    start_new_session=True)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while len(signalled) < len(hows):
            for how in set(hows) - signalled:
                checkpoint = run.base / f"killed-{how.name}" / "checkpoints" / \
                    "checkpoint-00000001.msgpack"
                if checkpoint.exists():
                    if how == signal.SIGKILL:  # the whole group, at once
                        os.killpg(procs[how].pid, signal.SIGKILL)
                    else:  # `kill PID`: disco alone, which stops Ray as it exits
                        procs[how].send_signal(how)
                    signalled.add(how)
                else:
                    assert procs[how].poll() is None, \
                        f"the run ended before generation 1:\n{logs[how].read_text()}"
            assert time.monotonic() < deadline, "no checkpoint of generation 1 in time"
            time.sleep(0.005)
    finally:
        for how, proc in procs.items():
            if how not in signalled:
                os.killpg(proc.pid, signal.SIGKILL)
        survivors = {}
        for how, proc in procs.items():
            proc.wait(timeout=120)
            survivors[how] = reap_session(proc.pid)
    left = {how: sorted(p.name for p in (run.base / f"killed-{how.name}" / "checkpoints")
                        .iterdir() if p.suffix == ".msgpack") for how in hows}
    with ThreadPoolExecutor(max_workers=len(hows)) as pool:
        resumed = dict(zip(hows, pool.map(lambda how: _run_in_session(
            [DISCO, "resume", str(run.base / f"killed-{how.name}")], cwd=run.base,
            env=run.env), hows)))
    return {how: Interrupted(
        run.base / f"killed-{how.name}", logs[how], procs[how].returncode, survivors[how],
        left[how], resumed[how]) for how in hows}


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_run_killed_after_generation_1_resumes_to_the_uninterrupted_archive(
        run, interrupted, how):
    this = interrupted[how]
    run_dir, left, resumed = this.run_dir, this.checkpoints, this.resumed
    assert this.returncode == {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143}[how]
    assert this.survivors == {}
    if how == signal.SIGTERM:  # a request to stop: how to go on, and no crash report
        output = this.log.read_text()
        assert f"interrupted; continue with: disco resume {run_dir}" in output, output
        assert "logging.cc" not in output and "Traceback" not in output, output
    assert f"checkpoint-{GENERATIONS - 1:08d}.msgpack" not in left, \
        "the kill came after the last generation: nothing left to resume"
    done = int(re.fullmatch(r"checkpoint-(\d+)\.msgpack", left[-1])[1])

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.survivors == {}
    assert resumed.stdout.splitlines()[0] == f"resuming {run_dir} after generation {done}"
    assert [int(m[1]) for m in _generation_lines(resumed.stdout)] == \
        list(range(done + 1, GENERATIONS))

    rows, straight = _rows(run_dir), _rows(run.run_dir)
    assert {name: len(table) for name, table in rows.items()} == \
        {name: len(table) for name, table in straight.items()}
    for name in straight:
        assert rows[name] == straight[name], f"the {name} rows differ"
    with RunStore.open(run_dir) as store, RunStore.open(run.run_dir) as reference:
        assert store.top(3, by="validation") == reference.top(3, by="validation")
        assert store.load_checkpoint() == reference.load_checkpoint()


# -- errors: one line, a non-zero exit, no traceback, no run directory ---------------------

@pytest.mark.parametrize("case", ["bad key", "missing config", "resume a non-run",
                                  pytest.param("launch into a run", marks=pytest.mark.slow),
                                  pytest.param("no such candidate", marks=pytest.mark.slow),
                                  "unknown family"])
def test_errors_are_one_line_and_create_no_run(case, tmp_path, request):
    env = _environment(tmp_path / "jax-cache")
    new_dir = tmp_path / "new-run"
    untouched = None  # a directory that must be left exactly as it was
    if case == "bad key":
        (tmp_path / "c.toml").write_text("[population]\nsizee = 3\n")
        args, message = ["launch", "c.toml", "--run-dir", str(new_dir)], "population.sizee"
    elif case == "missing config":
        args, message = ["launch", "absent.toml", "--run-dir", str(new_dir)], \
            "absent.toml: no such config file"
    elif case == "resume a non-run":
        untouched = tmp_path / "not-a-run"
        untouched.mkdir()
        (untouched / "notes.txt").write_text("hello")
        args, message = ["resume", str(untouched)], "is not a disco run directory"
    elif case == "launch into a run":
        existing = request.getfixturevalue("run")
        untouched = existing.run_dir
        args, message = ["launch", str(existing.config), "--run-dir", str(untouched)], \
            f"disco resume {untouched}"
    elif case == "no such candidate":
        untouched = request.getfixturevalue("run").run_dir
        args, message = ["inspect", f"{untouched}:999999"], "no such candidate"
    else:
        text = config_variant(CONFIG, {"tasks.train": [{"family": "quadric", "dim": 4,
                                                         "horizon": 1000}]})
        (tmp_path / "c.toml").write_text(text)
        args, message = ["launch", "c.toml", "--run-dir", str(new_dir)], \
            "tasks.train[0]: unknown task family 'quadric'"

    def snapshot(directory):
        return None if directory is None else {
            p.relative_to(directory): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file()
                                       else None) for p in sorted(directory.rglob("*"))}

    before = snapshot(untouched)
    result = _disco(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2
    # stdout may show the progress of a phase that ran first (loading JAX), nothing else
    assert all(line.startswith("loading JAX") for line in result.stdout.splitlines())
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("disco: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not new_dir.exists() and not (tmp_path / "runs").exists()
    assert snapshot(untouched) == before
