"""Winner selection prefers the simplest rule within one standard error of the best, and
`disco inspect RUN --pareto` lists the best validated program of each size."""

import json
import math

import numpy as np
import pytest

from disco_rules.discovery.cli import main
from disco_rules.discovery.pareto import validated_programs
from disco_rules.discovery.selection import (Validated, best_per_size, pareto_front,
                                             simplest_within_noise)
from disco_rules.discovery.store import CandidateRecord, RunStore, ValidationRecord
from disco_rules.dsl import library
from disco_rules.dsl.parser import parse
from disco_rules.dsl.simplify import simplify


def test_mean_and_standard_error_are_the_textbook_ones():
    row = Validated(1, 3, (0.1, 0.3, 0.2, 0.6))
    assert row.mean == pytest.approx(0.3)
    assert row.standard_error == pytest.approx(np.std([0.1, 0.3, 0.2, 0.6], ddof=1) / 2)
    assert Validated(2, 3, (0.5,)).standard_error == 0.0
    assert Validated(3, 3, (0.5, -math.inf)).mean == -math.inf
    assert Validated(4, 3, (0.5, math.nan)).mean == -math.inf
    assert Validated(5, 3, ()).mean == -math.inf


def test_the_simplest_rule_within_one_standard_error_of_the_best_wins():
    best = Validated(1, 12, (0.30, 0.10, 0.20))  # mean 0.2
    close = Validated(2, 5, (0.16, 0.15, 0.14))  # gaps 0.14, -0.05, 0.06: 0.05 <= SE 0.055
    far = Validated(3, 2, (0.10, 0.12, 0.11))  # gaps 0.20, -0.02, 0.09: 0.09 > SE 0.064
    assert simplest_within_noise([best, close, far]) == close
    assert simplest_within_noise([best, far]) == best
    # a precise best leaves little room: gaps 0.04, 0.05, 0.06 have an SE of 0.0058
    exact = Validated(4, 12, (0.2, 0.2, 0.2))
    assert simplest_within_noise([exact, close, far]) == exact


def test_the_noise_is_that_of_the_gap_so_shared_task_difficulty_is_not_noise():
    # three held-out tasks of very different difficulty; the simple rule trails the best by
    # exactly 0.1 on each: its gap has no spread, so it is beyond the noise, although the
    # best's own scores spread over 0.58 standard error (the unpaired rule would crown it)
    best = Validated(1, 9, (1.0, 0.0, -1.0))
    trailing = Validated(2, 1, (0.9, -0.1, -1.1))
    assert best.standard_error > 0.5
    assert simplest_within_noise([best, trailing]) == best
    # the same gap with a spread of 0.2 per task: within one standard error (0.115)
    noisy = Validated(3, 1, (1.1, -0.3, -1.1))
    gaps = np.subtract(best.scores, noisy.scores)
    assert gaps.mean() < gaps.std(ddof=1) / math.sqrt(3)
    assert simplest_within_noise([best, noisy]) == noisy
    # unaligned samples (a different count) fall back to the best's own standard error
    unaligned = Validated(4, 1, (-0.4, -0.2))  # mean -0.3 >= 0 - 0.577
    assert simplest_within_noise([best, unaligned]) == unaligned


def test_ties_in_size_go_to_the_higher_mean_then_the_lower_id():
    best = Validated(1, 10, (0.0, 0.4))  # mean 0.2, standard error 0.2
    a = Validated(7, 4, (0.1, 0.1))
    b = Validated(3, 4, (0.05, 0.05))
    c = Validated(2, 4, (0.1, 0.1))
    assert simplest_within_noise([best, a, b, c]) == c


def test_failed_rules_never_win_and_nothing_finite_gives_none():
    failed = Validated(1, 1, (-math.inf, 0.5))
    ok = Validated(2, 8, (-0.3, -0.1))
    assert simplest_within_noise([failed, ok]) == ok
    assert simplest_within_noise([failed]) is None
    assert simplest_within_noise([]) is None


def test_the_hall_of_fame_keeps_each_sizes_best_and_the_front_keeps_improvements():
    rows = [Validated(1, 3, (0.1,)), Validated(2, 3, (0.2,)), Validated(3, 5, (0.15,)),
            Validated(4, 8, (0.4,)), Validated(5, 8, (0.4,)), Validated(6, 2, (-math.inf,))]
    assert [(r.size, r.id) for r in best_per_size(rows)] == [(2, 6), (3, 2), (5, 3), (8, 4)]
    assert [r.id for r in pareto_front(rows)] == [2, 4]  # size 5 is worse than size 3


PROGRAMS = {name: (library.PROGRAMS / f"{name}.py").read_text()
            for name in ("sgd", "momentum", "adam", "lion")}
SIZES = {name: len(simplify(parse(text)).body) for name, text in PROGRAMS.items()}
VALIDATION = {"sgd": (-0.5, -0.7), "momentum": (0.05, -0.05), "adam": (0.1, 0.3),
              "lion": (0.25, 0.35)}  # held-out task scores, made up


@pytest.fixture
def run_dir(tmp_path):
    """An archive with four validated programs and one unvalidated."""
    store = RunStore.create(tmp_path / "run", "seed = 1\n")
    candidates = [CandidateRecord(id=i, generation=0, kind="programs", text=text,
                                  hash=name, fitness=0.0, status="ok")
                  for i, (name, text) in enumerate(PROGRAMS.items())]
    candidates.append(CandidateRecord(id=9, generation=0, kind="programs",
                                      text=PROGRAMS["sgd"], hash="x", fitness=1.0,
                                      status="ok"))
    validation = [ValidationRecord(candidate_id=i, task=f"t{t}", score=score)
                  for i, name in enumerate(PROGRAMS) for t, score in enumerate(VALIDATION[name])]
    store.add_generation(0, candidates, validation=validation)
    store.close()
    return tmp_path / "run"


def test_validated_programs_are_sized_by_their_simplified_program(run_dir):
    with RunStore.open(run_dir, write=False) as store:
        rows = validated_programs(store)
    assert {r.id: (r.size, r.scores) for r in rows} == {
        i: (SIZES[name], VALIDATION[name]) for i, name in enumerate(PROGRAMS)}


def test_inspect_pareto_lists_each_sizes_best_and_the_chosen_winner(run_dir, capsys):
    assert main(["inspect", str(run_dir), "--pareto", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = [Validated(i, SIZES[name], VALIDATION[name]) for i, name in enumerate(PROGRAMS)]
    expected = best_per_size(rows)
    assert [(r["size"], r["id"]) for r in report["sizes"]] == [(r.size, r.id) for r in expected]
    assert report["chosen"] == simplest_within_noise(rows).id
    lion = list(PROGRAMS).index("lion")
    by_id = {r["id"]: r for r in report["sizes"]}
    assert by_id[lion]["validation"] == pytest.approx(0.3)
    assert by_id[lion]["standard_error"] == pytest.approx(0.05)
    assert {r["id"] for r in report["sizes"] if r["pareto"]} == {r.id for r in pareto_front(rows)}
    assert all(parse(r["program"]) for r in report["sizes"])  # the simplified program's text

    assert main(["inspect", str(run_dir), "--pareto"]) == 0
    text = capsys.readouterr().out
    assert f"chosen #{report['chosen']}:" in text and "Pareto front" in text


def test_inspect_pareto_needs_a_run_with_validated_programs(tmp_path, capsys):
    RunStore.create(tmp_path / "empty", "seed = 1\n").close()
    assert main(["inspect", str(tmp_path / "empty"), "--pareto"]) != 0
    assert "no meta-validated program" in capsys.readouterr().err
