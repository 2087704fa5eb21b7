"""Winner selection takes the rule most surely ahead of the baseline (the highest mean - 2 SE
over the held-out tasks), and `disco inspect RUN --pareto` lists the best validated program
of each size and the chosen one."""

import json
import math

import numpy as np
import pytest

from disco_rules.discovery.cli import main
from disco_rules.discovery.pareto import validated_programs
from disco_rules.discovery.selection import Validated, best_per_size, pareto_front, surest
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


def test_the_rule_most_surely_ahead_wins_over_a_larger_noisier_mean():
    # Cautious AdamW against a short rule in the flagship: ahead on every task by about 0.1,
    # against a larger mean that swings from -0.36 to +0.45 from task to task
    steady = Validated(3, 21, (0.17, 0.15, 0.11, 0.13, 0.03, 0.01))
    swinging = Validated(15, 7, (0.45, -0.36, 0.26, 0.10, 0.03, 0.20))
    assert swinging.mean > steady.mean
    for row in (steady, swinging):
        values = np.asarray(row.scores)
        assert row.lower_bound == pytest.approx(
            values.mean() - 2 * values.std(ddof=1) / math.sqrt(values.size))
    assert steady.lower_bound > 0 > swinging.lower_bound
    assert surest([swinging, steady]) == steady == surest([steady, swinging])
    # with one sample there is no standard error: the bound is the mean
    assert Validated(1, 3, (0.2,)).lower_bound == 0.2
    assert surest([Validated(1, 3, (0.2,)), Validated(2, 3, (0.1,))]).id == 1


def test_ties_in_the_bound_go_to_the_smaller_rule_then_the_lower_id():
    a = Validated(7, 4, (0.1, 0.2))
    b = Validated(3, 9, (0.1, 0.2))
    c = Validated(5, 4, (0.2, 0.1))
    assert a.lower_bound == b.lower_bound == c.lower_bound
    assert surest([a, b, c]) == c
    assert surest([b, a]) == a


def test_failed_rules_never_win_and_nothing_finite_gives_none():
    failed = Validated(1, 1, (-math.inf, 0.5))
    ok = Validated(2, 8, (-0.3, -0.1))
    assert surest([failed, ok]) == ok
    assert surest([failed]) is None
    assert surest([]) is None


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
    assert report["chosen"] == surest(rows).id
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


def test_inspect_pareto_lists_the_chosen_winner_where_it_is_not_its_sizes_best(tmp_path,
                                                                               capsys):
    # #10 (Lion's text, so Lion's size) has the higher mean and a swing of 0.62: its size's
    # best by mean, while Lion is the most surely ahead and chosen
    store = RunStore.create(tmp_path / "run", "seed = 1\n")
    store.add_generation(0, [
        CandidateRecord(id=i, generation=0, kind="programs", text=PROGRAMS["lion"],
                        hash=f"h{i}", fitness=0.0, status="ok") for i in (3, 10)],
        validation=[ValidationRecord(candidate_id=i, task=f"t{t}", score=score)
                    for i, scores in ((3, VALIDATION["lion"]), (10, (0.62, 0.0)))
                    for t, score in enumerate(scores)])
    store.close()
    assert main(["inspect", str(tmp_path / "run"), "--pareto", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["chosen"] == 3
    assert [(r["id"], r["chosen"]) for r in report["sizes"]] == [(10, False), (3, True)]
    assert report["sizes"][1]["lower_bound"] == pytest.approx(0.3 - 2 * 0.05)
    assert main(["inspect", str(tmp_path / "run"), "--pareto"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if line[:1] in (">", " ") and line.split()[-1:] != []]
    assert [">", str(SIZES["lion"]), "3"] in [row[:3] for row in rows]
