"""Hostile or broken input to `disco` is one error line on stderr, exit code 2, no traceback,
and a launch that fails leaves no run directory: huge or deeply nested programs, NUL bytes,
damaged archives and checkpoints, out-of-range numbers, impossible paths.

Each case runs the real console script in a fresh process; none starts Ray (every one fails
before it would).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from disco_rules.discovery.store import CandidateRecord, RunStore
from tests.configs import config_variant
from tests.test_cli_runs import DISCO, _environment
from tests.test_plugin_tasks import plugin_config
from tests.test_plugin_tasks import MODULE as PLUGIN_MODULE

QUICKSTART = Path(__file__).parent.parent / "examples" / "quickstart.toml"
SIGNATURE = "def p(w, g, lr, step, progress):\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run directory with one program candidate (#1) and a checkpoint, made without Ray."""
    run_dir = tmp_path_factory.mktemp("bad") / "run"
    with RunStore.create(run_dir, QUICKSTART.read_text()) as store:
        store.add_generation(0, [CandidateRecord(
            id=1, generation=0, kind="programs", hash="h1", fitness=0.1, status="ok",
            text="def p(w, g, lr):\n    update = lr * g\n    return update\n")],
            events={"best": 0.1, "median": 0.1})
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
    elif how == "garbled text":  # bytes inside rows: a candidate's text, a counter's name
        archive.write_bytes(data.replace(b"update = lr", b"\xff\xfedate = lr")
                            .replace(b"median", b"\xffedian"))
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
    "a candidate's text that is not UTF-8": (["inspect", "{garbled text}:1"],
                                             "is damaged (text that is not UTF-8"),
    "a counter's name that is not UTF-8": (["status", "{garbled text}"],
                                           "is damaged (text that is not UTF-8"),
    "a run where a candidate is wanted": (["export", "{run}", "--format", "numpy"],
                                          ":ID, e.g. its best, "),
    "--seeds beyond the limit": (["score", "{run}:1", "--run", "{run}", "--seeds", "10000000"],
                                 "--seeds: at most 1000"),
    # configs and run directories
    "a config of only comments": (["launch", "{tmp}/empty.toml", "--run-dir", "{tmp}/new"],
                                  "empty.toml: the file is empty (or only comments); start "
                                  "from examples/quickstart.toml"),
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
    (tmp / "empty.toml").write_text("# a search, some day\n\n")
    (tmp / "seed.toml").write_text(_with_line(base, "seed", "99999999999999999999"))
    (tmp / "nan.toml").write_text(_with_line(base, "lr_grid", "[nan, 0.03]"))
    (tmp / "huge.toml").write_text(_with_line(base, "size", "1000000"))
    memory = _with_line(_with_line(base, "seeds", "1000"), "max_statements", "1000")
    memory = _with_line(memory, "lr_grid", str([0.001 * i for i in range(1, 65)]))
    (tmp / "memory.toml").write_text(_with_line(
        memory, "train", '[{ family = "mlp_regression", width = 128, depth = 4, in_dim = 64 }]'))


def _with_line(text: str, key: str, value: str) -> str:
    """`text` with the first line assigning `key` (a value on one line, or a list that closes
    on a line of its own) set to `value`; fails if no line assigns it, so a variant of a
    shipped config can never silently be the config itself."""
    match = re.search(rf"^{key} = ", text, re.MULTILINE)
    assert match, f"no line assigns {key}"
    rest = text[match.start():]
    end = (rest.index("\n]\n") + 2 if rest.startswith(f"{key} = [\n") else rest.index("\n"))
    return text[:match.start()] + f"{key} = {value}" + rest[end:]


@dataclass
class Case:
    folder: Path  # the command's working folder, with its inputs
    before: list[str]  # what the folder held before the command ran
    result: Future  # of the command's subprocess.CompletedProcess


@pytest.fixture(scope="module")
def cases(run, tmp_path_factory, request) -> Iterator[dict[str, Case]]:
    """The cases of CASES that this session runs, each in a folder of its own, their commands
    run at once (on as many processes as this machine has cores): each runs a fresh
    interpreter, and the test process would only wait for them one by one."""
    selected = {item.callspec.params["case"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_bad_input_is_one_error_line_"
                "with_exit_code_2" and item.module is request.module}
    prepared = {}
    for case, (arguments, _) in CASES.items():
        if case not in selected:
            continue
        folder = tmp_path_factory.mktemp("case")
        _write_inputs(folder)
        places = {"tmp": folder, "run": run}
        for how in ("truncated", "garbled header", "garbled pages", "corrupt checkpoints",
                    "binary config", "garbled text"):
            if "{" + how + "}" in " ".join(arguments):
                places[how] = _damaged_copy(run, folder, how)
        prepared[case] = (folder, [arg.format(**places) for arg in arguments],
                          sorted(p.name for p in folder.iterdir()))
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        yield {case: Case(folder, before, pool.submit(
            subprocess.run, [DISCO, *args], cwd=folder, capture_output=True, text=True,
            env=_environment(run.parent / "jax-cache"), timeout=120))
            for case, (folder, args, before) in prepared.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_error_line_with_exit_code_2(case, cases):
    tmp_path, before = cases[case].folder, cases[case].before
    result = cases[case].result.result()
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
    bigger = parse_config(config_variant(QUICKSTART.read_text(), {"tasks.seeds": 20}))
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


# -- cases that need more than a command line ------------------------------------------------

def _disco(*args: object, cwd: Path, cache: Path, before: Sequence[object] = ()
           ) -> subprocess.CompletedProcess:
    """`disco ARGS` run in `cwd`, through the command `before` (which ends by running it)."""
    return subprocess.run([*map(str, before), DISCO, *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=_environment(cache), timeout=300)


def _one_error(result: subprocess.CompletedProcess, message: str) -> None:
    """What every case keeps to: exit code 2, one line on stderr, and it says `message`."""
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("disco: error: ") and message in result.stderr


def _own_mounts(script: str, *args: object) -> list[str]:
    """The command that runs sh `script` (with `args`) as root of new user and mount
    namespaces, where it may mount a small tmpfs or a read-only bind without privileges
    (and whatever the user may write elsewhere); skips the test where the system does not
    allow such namespaces."""
    if shutil.which("unshare") is None or \
            subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs user and mount namespaces (unshare -Urm)")
    return ["unshare", "-Urm", "sh", "-c", script, "sh", *map(str, args)]


def test_a_read_only_run_is_refused_for_writing_and_read_as_it_is(run, tmp_path):
    _write_inputs(tmp_path)
    copy = tmp_path / "read-only"
    shutil.copytree(run, copy)
    read_only = _own_mounts('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && '
                            'shift && exec "$@"', copy)
    cache = run.parent / "jax-cache"
    with ThreadPoolExecutor(max_workers=3) as pool:  # each in namespaces of its own, at once
        resumed, launched, status = pool.map(
            lambda args: _disco(*args, cwd=tmp_path, cache=cache, before=read_only),
            [("resume", copy), ("launch", "ok.toml", "--run-dir", copy / "new"),
             ("status", copy)])
    _one_error(resumed,
               f"{copy}: cannot write the run directory (Read-only file system): make it")
    _one_error(launched,
               f"{copy / 'new'}: cannot create the run directory (Read-only file system)")
    assert status.returncode == 0 and f"run {copy}: 1 of 15 generations" in status.stdout


FULL_DISK = """
mount -t tmpfs -o size=1m tmpfs "$1" && cp -r "$2" "$1/run" || exit 99
dd if=/dev/zero of="$1/fill" bs=4k 2>/dev/null
"$4" resume "$1/run" --generations 40 2>"$3/resume.err"; echo $? >"$3/resume.rc"
"$4" export "$1/run:1" --format numpy -o "$1/out.py" 2>"$3/export.err"; echo $? >"$3/export.rc"
ls -A "$1" >"$3/listing"
rm "$1/fill"
exec "$4" status "$1/run"
"""  # $1: a folder to mount a 1 MiB disk on, $2: a run, $3: logs, $4: disco


def test_a_full_disk_is_one_line_and_the_run_goes_on_once_there_is_space(run, tmp_path):
    disk, logs = tmp_path / "disk", tmp_path / "logs"
    disk.mkdir()
    logs.mkdir()
    after = subprocess.run(_own_mounts(FULL_DISK, disk, run, logs, DISCO), capture_output=True,
                           text=True, env=_environment(run.parent / "jax-cache"), timeout=300)
    assert after.returncode == 0, after.stderr  # status, once space was freed: all is there
    assert f"run {disk}/run: 1 of 15 generations" in after.stdout

    def ran(name: str) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(name, int((logs / f"{name}.rc").read_text()), "",
                                           (logs / f"{name}.err").read_text())

    _one_error(ran("resume"), f"{disk}/run: the disk is full")
    assert f"then continue the run with `disco resume {disk}/run`" in ran("resume").stderr
    _one_error(ran("export"), "out.py: No space left on device: free some disk space")
    assert (logs / "listing").read_text().split() == ["fill", "run"]  # no half-written file


def test_a_plugin_that_calls_sys_exit_at_import_is_reported_as_such(run, tmp_path):
    (tmp_path / "exits_at_import.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "exits.toml").write_text(
        plugin_config("exits_at_import:tasks"))
    _one_error(_disco("launch", "exits.toml", "--run-dir", "new", cwd=tmp_path,
                      cache=run.parent / "jax-cache"),
               "task family 'exits_at_import:tasks': importing exits_at_import called "
               "sys.exit(3)")
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_plugin_whose_baseline_is_not_finite_leaves_no_run_directory(run, tmp_path):
    (tmp_path / "nan_tasks.py").write_text(PLUGIN_MODULE.replace(
        'return jnp.mean((x @ params["w"] - y) ** 2)',
        'return jnp.mean((x @ params["w"] - y) ** 2) * jnp.nan'))
    (tmp_path / "nan.toml").write_text(
        plugin_config("nan_tasks:least_squares"))
    result = _disco("launch", "nan.toml", "--run-dir", "new", cwd=tmp_path,
                    cache=run.parent / "jax-cache")
    ray_logs = re.compile(r"\d{4}-\d\d-\d\d [\d:,]+\s+INFO ")  # Ray's (issue 20, item 4)
    errors = [line for line in result.stderr.splitlines() if not ray_logs.match(line)]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert re.match(r"disco: error: .*the baseline on nan_tasks:least_squares\(dim=\d,"
                    r"horizon=10\) .*(non-finite|not finite)", errors[0]), errors[0]
    assert not (tmp_path / "new").exists()  # made for generation 0, removed when it failed


@pytest.mark.slow  # a `disco launch` that waits for Ray's client to give up on the address
@pytest.mark.parametrize("address, message", [
    ("ray://127.0.0.1:1", "cannot reach the Ray cluster at ray://127.0.0.1:1 (Connection "
                          "refused): check that it runs"),
    ("127.0.0.1", "127.0.0.1: not a Ray cluster address (ray://HOST:PORT, HOST:PORT or auto)"),
])
def test_a_cluster_that_does_not_answer_fails_in_seconds_before_any_run_dir(
        run, tmp_path, address, message):
    _write_inputs(tmp_path)
    before = sorted(tmp_path.iterdir())
    # the message is the probe's (cluster/address.py), said before Ray's client would retry
    # for 44 s, or the parser's: no timing threshold needed
    _one_error(_disco("launch", "ok.toml", "--run-dir", "new", "--address", address,
                      cwd=tmp_path, cache=run.parent / "jax-cache"), message)
    assert sorted(tmp_path.iterdir()) == before  # the run directory, hidden or not: none


def test_a_transfer_to_an_address_that_is_not_one_fails_on_one_line(run, tmp_path):
    _write_inputs(tmp_path)
    _one_error(_disco("transfer", "ok.toml", QUICKSTART.parents[1] / "dsl" / "programs" / "sgd.py",
                      "--address", "127.0.0.1", cwd=tmp_path, cache=run.parent / "jax-cache"),
               "127.0.0.1: not a Ray cluster address (ray://HOST:PORT, HOST:PORT or auto)")


def test_a_second_launch_into_a_live_run_names_its_writer(run, tmp_path):
    _write_inputs(tmp_path)
    shutil.copytree(run, tmp_path / "live")
    with RunStore.open(tmp_path / "live", write=True):
        _one_error(_disco("launch", "ok.toml", "--run-dir", "live", cwd=tmp_path,
                          cache=run.parent / "jax-cache"),
                   f"live already holds a run, which pid {os.getpid()} on ")


def test_a_top_beyond_sqlites_integers_lists_every_candidate(run, tmp_path):
    result = _disco("inspect", run, "--top", 10 ** 30, cwd=tmp_path,
                    cache=run.parent / "jax-cache")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].split()[:2] == ["1", "0"]  # candidate #1, gen 0
