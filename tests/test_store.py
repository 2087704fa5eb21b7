"""The run directory: a run is never overwritten, the archive keeps every evaluation exactly
once and a generation whole or not at all, and checkpoints survive corruption and crashes."""

import math
import os
import warnings

import numpy as np
import pytest

from disco_rules.discovery.store import (
    BaselineRecord,
    CandidateRecord,
    CheckpointError,
    CheckpointWarning,
    DuplicateRecordError,
    EventRecord,
    RunStore,
    SCHEMA_VERSION,
    SampledLevelRecord,
    ScoreRecord,
    StoreError,
    ValidationRecord,
)

CONFIG = '[search]\nseed = 0\npopulation = 8\n'


def cand(id, generation=0, parent_id=None, fitness=0.0, hash=None, fingerprint=None,
         status="ok", reason=None):
    return CandidateRecord(
        id=id, generation=generation, parent_id=parent_id, kind="programs",
        text=f"def p{id}(w, g, lr):\n    return g * lr\n", hash=hash or f"h{id}",
        fingerprint=fingerprint, fitness=fitness, status=status, reason=reason,
    )


@pytest.fixture
def run(tmp_path):
    with RunStore.create(tmp_path / "run", CONFIG) as store:
        yield store


# -- the run directory ---------------------------------------------------------------------


def test_create_writes_the_config_and_open_reads_it_back(tmp_path):
    RunStore.create(tmp_path / "run", CONFIG).close()
    with RunStore.open(tmp_path / "run") as store:
        assert store.config_text == CONFIG
        assert store.count() == 0
        assert store.last_generation() is None


def test_create_refuses_an_existing_run_and_points_to_resume(tmp_path):
    RunStore.create(tmp_path / "run", CONFIG).close()
    with pytest.raises(StoreError, match="already holds a run.*disco resume.*--run-dir"):
        RunStore.create(tmp_path / "run", "[other]\n")
    assert (tmp_path / "run" / "config.toml").read_text() == CONFIG


def test_create_refuses_a_non_empty_directory_but_accepts_an_empty_one(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not an empty directory"):
        RunStore.create(tmp_path / "busy", CONFIG)
    (tmp_path / "empty").mkdir()
    RunStore.create(tmp_path / "empty", CONFIG).close()


def test_open_refuses_what_is_not_a_run_directory(tmp_path):
    with pytest.raises(StoreError, match="not a disco run directory"):
        RunStore.open(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.toml").write_text(CONFIG)
    with pytest.raises(StoreError, match="no archive.sqlite"):
        RunStore.open(tmp_path / "half")


def test_the_archive_uses_wal_and_foreign_keys(run):
    assert run.query("PRAGMA journal_mode") == [("wal",)]
    assert run.query("PRAGMA foreign_keys") == [(1,)]


def test_query_answers_read_only_sql_and_refuses_a_change(tmp_path):
    with RunStore.create(tmp_path / "run", CONFIG) as writer:
        writer.add_generation(0, [cand(1), cand(2, parent_id=1)])
        assert writer.query("SELECT id FROM candidates WHERE parent_id = ?", (1,)) == [(2,)]
        for sql in ("DELETE FROM candidates", "INSERT INTO events VALUES (0, 'x', 1.0)",
                    "PRAGMA user_version = 1", "PRAGMA foreign_keys = OFF",
                    "DROP TABLE levels", "ATTACH DATABASE ':memory:' AS other"):
            with pytest.raises(StoreError, match="only reads the archive"):
                writer.query(sql)
        writer.rollback_after(-1)  # the store's own writes go on
        assert writer.count() == 0 and writer.query("PRAGMA foreign_keys") == [(1,)]
    with RunStore.open(tmp_path / "run", write=False) as reader:
        assert reader.query("SELECT COUNT(*) FROM candidates") == [(0,)]
        assert reader.query("PRAGMA user_version") == [(SCHEMA_VERSION,)]


# -- round trips ---------------------------------------------------------------------------


def test_candidates_round_trip_including_infinite_and_nan_fitness(run):
    rows = [
        cand(1, fitness=0.25, fingerprint="f1"),
        cand(2, fitness=-math.inf, status="diverged", reason="loss became inf at step 12"),
        cand(3, fitness=math.nan, status="nan", reason="NaN update"),
        cand(4, fitness=math.inf),
    ]
    run.add_generation(0, rows)
    assert run.candidate(1) == rows[0]
    assert run.candidate(2) == rows[1]
    assert run.candidate(4) == rows[3]
    back = run.candidate(3)
    assert math.isnan(back.fitness)
    assert (back.status, back.reason, back.text) == ("nan", "NaN update", rows[2].text)
    assert run.count() == 4
    with pytest.raises(KeyError):
        run.candidate(99)


def test_scores_validation_events_and_baselines_round_trip(run):
    curve = np.array([3.0, 2.5, 0.1, np.nan, np.inf], dtype=np.float64)
    score = ScoreRecord(candidate_id=1, task="mlp/mnist", score=-0.5, loss=0.5, lr=3e-4,
                        curve=curve)
    nan_score = ScoreRecord(candidate_id=1, task="cartpole", score=math.nan)
    run.add_generation(
        0, [cand(1)], [score, nan_score],
        validation=[ValidationRecord(candidate_id=1, task="mlp/fashion", score=-0.7)],
        events={"evaluations": 2, "best": -math.inf, "median": math.nan},
    )
    (back_nan, back) = run.scores_of(1)  # ordered by task name
    assert (back.task, back.score, back.loss, back.lr) == ("mlp/mnist", -0.5, 0.5, 3e-4)
    np.testing.assert_array_equal(back.curve, curve.astype(np.float32))  # NaN equals NaN here
    assert back_nan.task == "cartpole" and math.isnan(back_nan.score)
    assert math.isnan(back_nan.loss) and back_nan.curve is None
    assert run.validation_of(1) == [ValidationRecord(candidate_id=1, task="mlp/fashion",
                                                     score=-0.7)]
    events = run.events()
    assert [(e.generation, e.name) for e in events] == [(0, "best"), (0, "evaluations"),
                                                        (0, "median")]
    assert events[0].value == -math.inf and events[1].value == 2.0
    assert math.isnan(events[2].value)
    assert run.events("evaluations") == [EventRecord(generation=0, name="evaluations", value=2)]

    baseline = BaselineRecord(task="mlp/mnist", score=-0.4, loss=0.4, lr=1e-3,
                              curve=[1.0, 0.5, 0.4])
    run.add_baseline(baseline)
    assert run.baseline("mlp/mnist") == baseline
    assert run.baselines() == [baseline]
    assert run.baseline("unknown") is None


def test_curves_are_stored_as_float32_and_must_be_one_dimensional():
    record = ScoreRecord(candidate_id=1, task="t", score=0.0, curve=[0.1])
    assert record.curve == (float(np.float32(0.1)),)
    with pytest.raises(ValueError, match="1-D"):
        ScoreRecord(candidate_id=1, task="t", score=0.0, curve=np.zeros((2, 3)))


def test_the_archive_survives_reopening(tmp_path):
    with RunStore.create(tmp_path / "run", CONFIG) as store:
        store.add_generation(0, [cand(1, fitness=-math.inf)],
                             [ScoreRecord(candidate_id=1, task="t", score=1.0)])
    with RunStore.open(tmp_path / "run") as store:
        assert store.candidate(1).fitness == -math.inf
        assert store.scores_of(1)[0].score == 1.0
        assert store.last_generation() == 0


# -- an evaluation is archived once, a generation whole ------------------------------------


def test_an_evaluation_recorded_twice_is_an_error_and_writes_nothing(run):
    score = ScoreRecord(candidate_id=1, task="t", score=1.0)
    with pytest.raises(DuplicateRecordError, match="candidate 1 on task 't'"):
        run.add_generation(0, [cand(1)], [score, score])
    assert run.count() == 0
    run.add_generation(0, [cand(1)], [score])
    # the same evaluation again, from a later generation
    with pytest.raises(DuplicateRecordError, match="candidate 1 on task 't'"):
        run.add_generation(1, [cand(2, generation=1)], [score])
    assert run.count() == 1 and run.last_generation() == 0


def test_a_candidate_id_or_baseline_recorded_twice_is_an_error(run):
    run.add_generation(0, [cand(1)])
    with pytest.raises(DuplicateRecordError, match="candidate 1 is already archived"):
        run.add_generation(1, [cand(2, generation=1), cand(1, generation=1)])
    run.add_baseline(BaselineRecord(task="t", score=1.0))
    with pytest.raises(DuplicateRecordError, match="baseline of task 't'"):
        run.add_baseline(BaselineRecord(task="t", score=2.0))
    assert run.baseline("t").score == 1.0


def test_a_generation_lands_whole_or_not_at_all(run):
    run.add_generation(0, [cand(1)], [ScoreRecord(candidate_id=1, task="t", score=1.0)])
    # levels are written last: this one fails after the rest of generation 1 was inserted
    unstorable = SampledLevelRecord(generation=1, position=0, task="t", family="quadratic",
                                    params={"dim": object()}, regret=0.5, replayed=False)
    with pytest.raises(TypeError, match="not JSON serializable"):
        run.add_generation(
            1, [cand(2, generation=1, parent_id=1), cand(3, generation=1, parent_id=1)],
            [ScoreRecord(candidate_id=2, task="t", score=2.0),
             ScoreRecord(candidate_id=3, task="t", score=3.0)],
            events={"evaluations": 2}, levels=[unstorable],
        )
    assert run.count() == 1
    assert run.scores_of(2) == [] and run.events() == [] and run.sampled_levels() == []
    assert run.last_generation() == 0
    run.add_generation(1, [cand(2, generation=1, parent_id=1)])  # the rerun is accepted
    assert run.count() == 2


def test_rows_must_refer_to_archived_candidates(run):
    with pytest.raises(StoreError, match="parent of candidate 2 refers to candidate 7"):
        run.add_generation(0, [cand(2, parent_id=7)])
    with pytest.raises(StoreError, match="refers to candidate 9"):
        run.add_generation(0, [cand(1)], [ScoreRecord(candidate_id=9, task="t", score=0.0)])
    with pytest.raises(ValueError, match="generation 3, not 0"):
        run.add_generation(0, [cand(1, generation=3)])
    assert run.count() == 0


def test_generations_are_appended_in_order(run):
    run.add_generation(0, [cand(1)])
    run.add_generation(1, [cand(2, generation=1)])
    with pytest.raises(StoreError, match=r"rollback_after\(0\)"):
        run.add_generation(1, [cand(3, generation=1)])


def test_rollback_after_deletes_later_generations_so_they_can_be_rewritten(run):
    run.add_generation(0, [cand(1)], [ScoreRecord(candidate_id=1, task="t", score=0.0)],
                       events={"evaluations": 1})
    run.add_baseline(BaselineRecord(task="t", score=1.0), generation=0)

    def generation_1_and_2():
        run.add_generation(
            1, [cand(2, generation=1, parent_id=1)],
            [ScoreRecord(candidate_id=2, task="t", score=1.0),
             ScoreRecord(candidate_id=1, task="u", score=5.0)],  # an old candidate, new task
            validation=[ValidationRecord(candidate_id=1, task="v", score=0.5)],
            events={"evaluations": 2},
        )
        run.add_baseline(BaselineRecord(task="u", score=4.0), generation=1)
        run.add_generation(2, [cand(3, generation=2, parent_id=2)],
                           [ScoreRecord(candidate_id=3, task="t", score=2.0)],
                           events={"evaluations": 1})

    generation_1_and_2()
    before = (run.count(), run.scores_of(1), run.scores_of(2), run.validation_of(1),
              run.events(), run.baselines(), run.lineage(3))
    assert run.rollback_after(0) == 2
    assert run.count() == 1 and run.last_generation() == 0
    assert [s.task for s in run.scores_of(1)] == ["t"]
    assert run.validation_of(1) == [] and run.baseline("u") is None
    assert run.baseline("t") is not None
    assert [e.generation for e in run.events()] == [0]
    generation_1_and_2()  # the rerun writes exactly the same rows
    after = (run.count(), run.scores_of(1), run.scores_of(2), run.validation_of(1),
             run.events(), run.baselines(), run.lineage(3))
    assert after == before


# -- queries -------------------------------------------------------------------------------


def test_lineage_follows_parents_to_the_root(run):
    run.add_generation(0, [cand(1), cand(2)])
    run.add_generation(1, [cand(3, generation=1, parent_id=2)])
    run.add_generation(2, [cand(5, generation=2, parent_id=4), cand(4, generation=2, parent_id=3)])
    assert [c.id for c in run.lineage(5)] == [5, 4, 3, 2]
    assert [c.id for c in run.lineage(1)] == [1]


def test_top_ranks_by_fitness_best_first_one_row_per_program(run):
    run.add_generation(0, [
        cand(1, fitness=0.5), cand(2, fitness=math.nan), cand(3, fitness=-math.inf),
        cand(4, fitness=0.9), cand(5, fitness=0.5), cand(6, fitness=0.7, hash="h4"),
    ])
    ranked = run.top(10)
    assert [c.id for c, _ in ranked] == [4, 1, 5, 3, 2]  # ties by id, NaN last
    assert [v for _, v in ranked][:4] == [0.9, 0.5, 0.5, -math.inf]
    assert [c.id for c, _ in run.top(2)] == [4, 1]
    assert run.top(0) == []
    with pytest.raises(ValueError):
        run.top(3, by="speed")


def test_top_by_validation_uses_the_mean_validation_score(run):
    run.add_generation(0, [cand(1, fitness=0.9), cand(2, fitness=0.1), cand(3, fitness=0.5),
                           cand(4, fitness=0.8)], validation=[
        ValidationRecord(candidate_id=1, task="a", score=0.0),
        ValidationRecord(candidate_id=1, task="b", score=0.2),
        ValidationRecord(candidate_id=2, task="a", score=0.4),
        ValidationRecord(candidate_id=2, task="b", score=0.6),
        ValidationRecord(candidate_id=3, task="a", score=9.0),
        ValidationRecord(candidate_id=3, task="b", score=math.nan),
    ])
    ranked = run.top(5, by="validation")
    assert [c.id for c, _ in ranked] == [2, 1, 3]  # 4 was never validated; NaN is last
    assert ranked[0][1] == pytest.approx(0.5) and ranked[1][1] == pytest.approx(0.1)
    assert math.isnan(ranked[2][1])


def test_the_dedupe_cache_can_be_rebuilt_from_the_archive(run):
    run.add_generation(0, [cand(1, hash="a", fingerprint="x"), cand(2, hash="b", fingerprint="x")])
    run.add_generation(1, [cand(3, generation=1, hash="a", fingerprint="x", status="cached")])
    assert run.known_hashes() == {"a": 1, "b": 2}
    assert run.known_fingerprints() == {"x": 1}
    assert run.lookup(hash="b").id == 2
    assert run.lookup(hash="zzz", fingerprint="x").id == 1
    assert run.lookup(hash="zzz") is None
    with pytest.raises(ValueError):
        run.lookup()


def test_the_dedupe_cache_can_skip_candidates_that_were_not_evaluated(run):
    run.add_generation(0, [cand(1, hash="a", fingerprint="x"),
                           cand(2, hash="b", fingerprint="x", status="cached")])
    run.add_generation(1, [cand(3, generation=1, hash="b", fingerprint="y")])
    assert run.known_hashes() == {"a": 1, "b": 2}
    assert run.known_hashes(exclude_status="cached") == {"a": 1, "b": 3}
    assert run.known_fingerprints(exclude_status="cached") == {"x": 1, "y": 3}


# -- checkpoints ---------------------------------------------------------------------------


STATE = {
    "population": {"programs": ["def p(g):\n    return g\n"], "ages": [3, 1, 2]},
    "scheduler": {"levels": [{"task": "mlp", "width": 32, "lr": 1e-3}], "regret": [0.5]},
    "rng": b"\x00\x01\xff" * 4,
    "flags": [True, False, None],
    "fitness": [-math.inf, 1.5],
    "per_generation": {3: "three"},
    "mean": np.arange(6, dtype=np.float32).reshape(2, 3),
    "key": np.array([0, 42], dtype=np.uint32),
    "scalar": np.float64(0.25),
}


def test_a_checkpoint_round_trips_nested_state(run):
    assert run.load_checkpoint() is None
    run.save_checkpoint(4, STATE)
    generation, state = run.load_checkpoint()
    assert generation == 4
    plain = {k: v for k, v in STATE.items() if k not in ("mean", "key")}
    assert {k: v for k, v in state.items() if k not in ("mean", "key")} == plain
    for name in ("mean", "key"):
        assert state[name].dtype == STATE[name].dtype
        np.testing.assert_array_equal(state[name], STATE[name])
    assert type(state["scalar"]) is float


def test_a_checkpoint_keeps_the_shape_of_zero_dimensional_arrays(run):
    """An evolution strategy's state holds 0-d arrays (step size, counter): shape matters."""
    run.save_checkpoint(0, {"leaves": [np.asarray(2.5, np.float32), np.zeros((2, 3), np.int32)]})
    leaves = run.load_checkpoint()[1]["leaves"]
    assert [leaf.shape for leaf in leaves] == [(), (2, 3)]
    assert leaves[0].dtype == np.float32 and float(leaves[0]) == 2.5


def test_network_weights_round_trip_as_float32(run):
    weights = np.linspace(-1, 1, 7, dtype=np.float64)
    run.add_generation(0, [cand(1), CandidateRecord(
        id=2, generation=0, kind="lpo", text='{"network": "lpo", "hidden": 2}', hash="w2",
        fitness=0.5, status="ok", weights=weights)])
    back = run.candidate(2).weights
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, weights.astype(np.float32))
    assert run.candidate(1).weights is None


def test_state_that_is_not_plain_data_is_refused(run):
    with pytest.raises(TypeError, match="only dicts"):
        run.save_checkpoint(0, {"oops": object()})
    with pytest.raises(TypeError, match="dtype object"):
        run.save_checkpoint(0, {"oops": np.array([object()])})
    assert list(run.checkpoint_dir.iterdir()) == []


def test_only_the_newest_checkpoints_are_kept(run):
    for generation in range(6):
        run.save_checkpoint(generation, {"g": generation}, keep=3)
    names = sorted(p.name for p in run.checkpoint_dir.iterdir())
    assert names == [f"checkpoint-0000000{g}.msgpack" for g in (3, 4, 5)]
    # saving an earlier generation (after a resume) discards the rolled-back future
    run.save_checkpoint(4, {"g": "again"})
    assert run.load_checkpoint() == (4, {"g": "again"})
    assert not (run.checkpoint_dir / "checkpoint-00000005.msgpack").exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(run, damage):
    run.save_checkpoint(1, {"g": 1})
    newest = run.save_checkpoint(2, {"g": 2, "blob": b"x" * 100})
    data = bytearray(newest.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) - 7]
    else:
        data = bytearray()
    newest.write_bytes(bytes(data))
    with pytest.warns(CheckpointWarning, match="checkpoint-00000002.msgpack"):
        assert run.load_checkpoint() == (1, {"g": 1})


def test_a_checkpoint_renamed_to_another_generation_is_not_trusted(run):
    run.save_checkpoint(1, {"g": 1})
    path = run.save_checkpoint(2, {"g": 2})
    path.rename(run.checkpoint_dir / "checkpoint-00000009.msgpack")
    with pytest.warns(CheckpointWarning, match="holds generation 2, not 9"):
        assert run.load_checkpoint() == (1, {"g": 1})


def test_all_checkpoints_corrupt_is_an_error(run):
    for generation in (1, 2):
        path = run.save_checkpoint(generation, {"g": generation})
        path.write_bytes(path.read_bytes()[:10])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CheckpointWarning)
        with pytest.raises(CheckpointError, match="no intact checkpoint.*00000002.*00000001"):
            run.load_checkpoint()


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_partial_file(run, monkeypatch):
    run.save_checkpoint(1, {"g": 1})
    before = sorted(p.name for p in run.checkpoint_dir.iterdir())

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        run.save_checkpoint(2, {"g": 2, "big": b"y" * 10_000})
    monkeypatch.undo()
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == before
    assert run.load_checkpoint() == (1, {"g": 1})


def test_leftover_temporary_files_are_ignored_and_cleaned(run):
    run.save_checkpoint(1, {"g": 1})
    leftover = run.checkpoint_dir / ".checkpoint-00000002.msgpack.abc123.tmp"
    leftover.write_bytes(b"half a checkp")
    assert run.load_checkpoint() == (1, {"g": 1})
    run.save_checkpoint(2, {"g": 2})
    assert not leftover.exists()
