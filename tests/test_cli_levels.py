"""`disco inspect RUN --levels` and `disco plot RUN --levels`: the scheduler's buffer and the
levels sampled over a run, read from its newest checkpoint and its archive; bad requests
are one error line and a non-zero exit."""

import json

import pytest

from disco_rules.discovery.cli import main
from disco_rules.discovery.levels import buffer_rows
from disco_rules.discovery.store import RunStore
from tests.test_search import make_search, programs
from tests.test_search_levels import SCHEDULED


@pytest.fixture(scope="module")
def scheduled_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("levels") / "run"
    search, store, _ = make_search(run_dir, programs("sgd", "momentum"), config_text=SCHEDULED)
    search.run(3)
    store.close()
    return run_dir


@pytest.fixture
def plain_run(tmp_path):
    """A run without a scheduler (and without any generation)."""
    RunStore.create(tmp_path / "plain", "seed = 1\n").close()
    return tmp_path / "plain"


def newest_buffer(run_dir):
    with RunStore.open(run_dir) as store:
        return buffer_rows(store.load_checkpoint()[1]["levels"])


@pytest.mark.slow  # `scheduled_run` is a whole 3-generation search
def test_inspect_levels_lists_the_buffer_highest_regret_first(scheduled_run, capsys):
    assert main(["inspect", str(scheduled_run), "--levels"]) == 0
    out = capsys.readouterr().out.splitlines()
    # dim and horizon fixed, the floats drawn: one compiled shape
    assert out[0] == "regret levels, 2 per generation, from quadratic: at most 1 compiled shape"
    assert "after generation 2" in out[1]
    lines = [line for line in out if "quadratic(" in line]
    buffer = newest_buffer(scheduled_run)
    assert [line.split()[-1] for line in lines] == [row["level"] for row in buffer]
    assert [float(line.split()[0]) for line in lines] == \
        pytest.approx([row["regret"] for row in buffer], abs=1e-3)
    assert [int(line.split()[1]) for line in lines] == [row["times_sampled"] for row in buffer]
    with RunStore.open(scheduled_run) as store:
        distinct = len({row.task for row in store.sampled_levels()})
    assert f"{distinct} distinct levels sampled" in out[-1]


@pytest.mark.slow
def test_inspect_levels_json_has_each_levels_parameters(scheduled_run, capsys):
    assert main(["inspect", str(scheduled_run), "--levels", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["generation"] == 2
    assert data["buffer"] == newest_buffer(scheduled_run)
    assert all(row["params"]["dim"] == 4 for row in data["buffer"])


@pytest.mark.slow
def test_plot_levels_writes_a_png(scheduled_run, tmp_path):
    output = tmp_path / "levels.png"
    assert main(["plot", str(scheduled_run), "--levels", "-o", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["inspect", "{plain}", "--levels"], "no level buffer"),
    (["plot", "{plain}", "--levels", "-o", "{tmp}/x.png"], "no sampled levels"),
    (["inspect", "{plain}:0", "--levels"], "--levels reads a run directory"),
    (["plot", "{plain}", "--levels", "--drift", "-o", "{tmp}/x.png"], "either --levels or"),
])
def test_a_bad_levels_request_is_one_error_line(argv, message, plain_run, tmp_path, capsys):
    argv = [a.format(plain=plain_run, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()
