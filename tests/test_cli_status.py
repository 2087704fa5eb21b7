"""`disco status` reports a run's progress from its archive."""

import json
import os
import socket

import pytest

from disco_rules.discovery.cli import main
from tests.test_search import make_search, programs


@pytest.mark.slow  # two generations of a search
def test_status_counts_what_the_archive_holds(tmp_path, capsys):
    search, store, _ = make_search(tmp_path / "run", programs("sgd", "momentum"))
    reports = [search.step(), search.step()]
    count = store.count()
    store.close()
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["generations"] == 2 and status["target_generations"] == 4
    assert status["finished"] is False
    assert status["candidates"] == count == sum(r.candidates for r in reports)
    assert status["evaluated"] == sum(r.evaluated for r in reports)
    assert status["best_fitness"] == reports[-1].best
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "2 of 4 generations, stopped (continue with: disco resume" \
        in capsys.readouterr().out


def test_status_names_the_process_writing_a_live_run(tmp_path, capsys):
    search, store, _ = make_search(tmp_path / "run", programs("sgd", "momentum"))
    search.step()
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0  # while the store is open
    assert json.loads(capsys.readouterr().out)["writer"] == \
        f"pid {os.getpid()} on {socket.gethostname()}"
    store.close()
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["writer"] is None


@pytest.mark.slow  # a whole search, four generations
def test_a_run_past_its_last_generation_is_running_while_its_writer_chooses_the_winner(
        tmp_path, capsys):
    search, store, _ = make_search(tmp_path / "run", programs("sgd", "momentum"))
    for _ in range(4):  # all of its generations; the store is still open, as while the
        search.step()   # process confirms its winner on fresh seeds
    assert main(["status", str(tmp_path / "run"), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["generations"] == status["target_generations"] == 4
    assert status["finished"] is False and status["writer"] is not None
    assert main(["status", str(tmp_path / "run")]) == 0
    assert f"4 of 4 generations, running (pid {os.getpid()} on {socket.gethostname()}, " \
        "choosing its winner)" in capsys.readouterr().out
    store.close()
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "4 of 4 generations, finished" in capsys.readouterr().out


def test_status_of_a_directory_that_is_not_a_run_is_one_line(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("disco: error:") and err.count("\n") == 1
