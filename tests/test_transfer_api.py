"""`disco_rules.transfer`, the Python API under `disco transfer`: a run, its directory or its
config give one transfer; finished tunings are kept in the cache file and never trained
again; what it cannot be asked is a `TransferError` before anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import disco_rules
from disco_rules.discovery import transfer
from disco_rules.discovery.store import CandidateRecord, RunStore
from disco_rules.dsl import library

CONFIG = """\
generations = 2
seed = 3
[population]
size = 4
[tasks]
train = [{ family = "quadratic", dim = 4, horizon = 10 }]
heldout = [{ family = "quadratic", dim = 6, horizon = 20, condition_number = 10.0 }]
[cluster]
compilation_cache = false
"""
ONE_POINT = transfer.Grid((1e-2,), (0.0,), (transfer.CONSTANT,), past_edge=0)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    with RunStore.create(run_dir, CONFIG) as store:
        store.add_generation(0, [CandidateRecord(
            id=1, generation=0, kind="programs", text="def sgd(w, g, lr):\n    update = lr * g"
            "\n    return update\n", hash="h1", fitness=0.1, status="ok")])
    return run_dir


@pytest.mark.slow  # trains five optimizers on two small tasks
def test_a_run_its_directory_and_its_config_give_one_transfer_and_the_cache_keeps_it(
        run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(transfer, "GRID", ONE_POINT)
    run = disco_rules.open_run(run_dir)
    programs = {"mine": run.candidate(1).program}
    cache = tmp_path / "cache.json"
    first = disco_rules.transfer(run_dir, programs, seeds=2, tasks=2, cache=cache)
    assert first.names == ["mine", *transfer.REFERENCES]
    assert [row.label for row in first.evaluated] == ["held-out", "0.25x horizon"]
    assert first.run_seed == 4 and first.test_seed == 5  # the config's seed + 1, then + 1
    written = json.loads(cache.read_text())
    assert len(written) == 2 * 2 * 5  # tuned and scored, AdamW and four optimizers, 2 tasks
    # the program is SGD, as the shipped reference "momentum" is not: its own numbers
    assert not np.array_equal(first.results[0].scores("mine"),
                              first.results[0].scores("momentum"))
    for name in ("tune_adamw", "tune_programs"):  # everything is in the cache now
        monkeypatch.setattr(transfer, name, lambda *args: pytest.fail("trained again"))
    for source in (run, CONFIG):
        again = disco_rules.transfer(source, programs, seeds=2, tasks=2, cache=cache)
        for a, b in zip(first.results, again.results):
            np.testing.assert_array_equal(a.baseline.losses, b.baseline.losses)
            np.testing.assert_array_equal(a.scores("mine"), b.scores("mine"))
        assert again.verdict("mine") == first.verdict("mine")
    assert json.loads(cache.read_text()) == written
    assert capsys.readouterr().out == ""  # progress is off where stdout is no terminal


@pytest.mark.parametrize("programs, message", [
    ({"drift": "def d(ratio, advantage):\n    x = ratio * advantage\n    return x\n"},
     "drift: transfer scores optimizer programs"),
    ({"adam": None}, "adam: the name of a reference optimizer"),
])
def test_programs_a_transfer_cannot_score_are_named(programs, message):
    from disco_rules.dsl.parser import parse

    named = {name: library.program("sgd") if text is None else parse(text)
             for name, text in programs.items()}
    with pytest.raises(disco_rules.TransferError, match=message):
        disco_rules.transfer(CONFIG, named)


@pytest.mark.parametrize("counts, message", [
    (dict(seeds=0), "seeds: expected a positive integer, got 0"),
    (dict(tasks=2.5), "tasks: expected a positive integer, got 2.5"),
])
def test_counts_must_be_positive_integers(counts, message):
    with pytest.raises(disco_rules.TransferError, match=message):
        disco_rules.transfer(CONFIG, {"sgd2": library.program("sgd")}, **counts)


def test_a_file_that_is_not_a_cache_is_refused_before_anything_trains(tmp_path):
    for text, why in [("{not json", "Expecting"), ("[1, 2]", "not a JSON object")]:
        bad = tmp_path / "cache.json"
        bad.write_text(text)
        with pytest.raises(disco_rules.TransferError,
                           match=f"{bad}: not a cache of disco transfer .*{why}"):
            disco_rules.transfer(CONFIG, {"sgd2": library.program("sgd")}, cache=bad)
        assert bad.read_text() == text  # left as it was


def test_rl_held_out_tasks_are_refused():
    config = (Path(__file__).resolve().parents[1] / "examples" / "lpo_cartpole.toml")
    with pytest.raises(disco_rules.TransferError, match="is an RL task"):
        disco_rules.transfer(config, {"sgd2": library.program("sgd")})
