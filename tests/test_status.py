"""A candidate's status: one enum stored as its old strings, and one helper that turns
per-task scores into fitness and status for programs and networks alike."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from disco_rules.discovery.config import FITNESS_CAP, parse_config
from disco_rules.discovery.scoring import WORST, TaskScore, outcome, status_of
from disco_rules.discovery.search.networks import NetworkPopulation
from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store import CandidateRecord, RunStore, ScoreRecord

OLD_RUN = Path(__file__).parent / "data" / "runs-0.1" / "programs"


def ok(value: float) -> TaskScore:
    return TaskScore(value, None, ScoreRecord(candidate_id=-1, task=f"t{value}", score=value))


def failed(reason: str) -> TaskScore:
    return TaskScore(WORST, reason, ScoreRecord(candidate_id=-1, task=reason, score=WORST))


def test_every_task_ok_gives_the_mean_score_and_ok():
    assert outcome([ok(1.0), ok(2.0), ok(-0.5)], FITNESS_CAP) == (2.5 / 3, CandidateStatus.OK,
                                                                 None)


def test_the_fitness_cap_bounds_what_one_task_adds_and_leaves_losses_whole():
    # one near-zero loss (+5) cannot buy fitness over a rule ahead on every other task
    lopsided, broad = [ok(5.0), ok(-0.2), ok(-0.2)], [ok(0.3), ok(0.3), ok(0.3)]
    assert outcome(lopsided, FITNESS_CAP).fitness > outcome(broad, FITNESS_CAP).fitness
    assert outcome(lopsided, 0.5).fitness == pytest.approx((0.5 - 0.4) / 3)
    assert outcome(lopsided, 0.5).fitness < outcome(broad, 0.5).fitness == pytest.approx(0.3)


@pytest.mark.parametrize("reason, status", [
    ("nan", CandidateStatus.NAN),
    ("diverged", CandidateStatus.DIVERGED),
    ("failed: ValueError: bad shape", CandidateStatus.FAILED),
    ("timeout: no result within 3 s, the configured deadline", CandidateStatus.TIMEOUT),
    ("the baseline loss nan is not a positive number", CandidateStatus.FAILED),
])
def test_one_failed_task_makes_the_candidate_worst_with_its_status(reason, status):
    assert status_of(reason) is status
    fitness, got, why = outcome([ok(1.0), failed(reason), ok(2.0)], FITNESS_CAP)
    assert fitness == -math.inf and got is status and why == reason


def test_the_first_failed_task_names_the_status():
    assert outcome([ok(1.0), failed("timeout: 3 s"), failed("diverged")], FITNESS_CAP).status \
        is CandidateStatus.TIMEOUT
    assert outcome([failed("diverged"), failed("nan")], FITNESS_CAP) == \
        (WORST, CandidateStatus.DIVERGED, "diverged")


def test_failures_are_what_a_generation_counts_as_failed():
    assert {s for s in CandidateStatus if s.is_failure} == {
        CandidateStatus.NAN, CandidateStatus.DIVERGED, CandidateStatus.FAILED,
        CandidateStatus.TIMEOUT}


NETWORK_CONFIG = """\
seed = 1
generations = 1

[population]
kind = "lpo"
size = 4
hidden = 4

[tasks]
seeds = 1
lr_grid = [2.5e-3]
train = [{ family = "cartpole", total_timesteps = 1024 },
         { family = "cartpole", total_timesteps = 1024, length = 0.8 }]
heldout = [{ family = "cartpole", total_timesteps = 1024, length = 0.6 }]
"""


def test_a_network_whose_rule_diverges_on_a_task_is_archived_as_diverged():
    """The network population archives a rule through the same helper as programs: a
    diverged task is status diverged (not "failed"), and the rule leads nothing."""
    population = NetworkPopulation(parse_config(NETWORK_CONFIG), pool=None)
    proposal = population.ask(0, 0)
    table = [[ok(0.5), ok(0.7)], [ok(0.2), failed("diverged")],
             [failed("timeout: 3 s"), ok(0.1)], [ok(0.3), ok(0.1)], [failed("nan"), ok(0.0)]]
    told = population.tell(proposal, table, 0, [])
    statuses = [c.status for c in told.candidates]
    assert statuses == [CandidateStatus.OK, CandidateStatus.DIVERGED, CandidateStatus.TIMEOUT,
                        CandidateStatus.OK, CandidateStatus.NAN]
    assert told.candidates[1].reason == "diverged" and told.candidates[1].fitness == WORST
    assert told.candidates[0].reason == "the strategy's mean"
    assert sorted(cid for _, cid in told.leaders) == [0, 3]


def test_a_status_is_stored_as_its_old_string_and_reads_back_as_the_enum(tmp_path):
    with RunStore.create(tmp_path / "run", "seed = 0\n") as store:
        record = CandidateRecord(id=0, generation=0, kind="programs", text="x", hash="h",
                                 fitness=WORST, status=CandidateStatus.DIVERGED,
                                 reason="diverged")
        store.add_generation(0, [record], [])
        assert store.query("SELECT status, typeof(status) FROM candidates") == \
            [("diverged", "text")]
        assert store.candidate(0).status is CandidateStatus.DIVERGED


def test_an_old_archive_reads_its_string_statuses_as_the_enum(tmp_path):
    shutil.copytree(OLD_RUN, tmp_path / "run")
    with RunStore.open(tmp_path / "run", write=False) as store:
        raw = dict(store.query("SELECT id, status FROM candidates"))
        assert raw and all(type(value) is str for value in raw.values())
        for cid, value in raw.items():
            status = store.candidate(cid).status
            assert isinstance(status, CandidateStatus) and status == value
        cached = {cid for cid, value in raw.items() if value == "cached"}
        assert cached.isdisjoint(store.known_hashes(CandidateStatus.CACHED).values())
