"""The run directory against its storage: a full disk and a garbled row are one-line errors
that lose nothing committed; a run appears only when its launch says so, and a launch that
fails before its first generation leaves nothing; a run remembers where its task modules are.
"""

import errno
import os
import sqlite3

import numpy as np
import pytest

from disco_rules.discovery.store import (ArchiveDamagedError, CandidateRecord, RunLock,
                                         RunLockedError, RunStore, StorageError, StoreError)

CONFIG = "seed = 0\n"


def candidate(id: int, generation: int, weights: int = 0) -> CandidateRecord:
    return CandidateRecord(id=id, generation=generation, kind="programs", text="def p(w, g, lr):\n"
                           "    return g\n", hash=f"h{id}", fitness=0.5, status="ok",
                           weights=np.ones(weights, np.float32) if weights else None)


def test_a_full_disk_is_a_storage_error_that_loses_nothing_committed(tmp_path, monkeypatch):
    opened = []  # the connections the store opens: its own is the last
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kwargs: opened.append(
        connect(*args, **kwargs)) or opened[-1])
    with RunStore.create(tmp_path / "run", CONFIG) as store:
        monkeypatch.undo()
        store.add_generation(0, [candidate(1, 0)])
        store.save_checkpoint(0, {"g": 0})
        pages = store.query("PRAGMA page_count")[0][0]
        opened[-1].execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL
        with pytest.raises(StorageError, match=r"run: the disk is full \(database or disk is "
                                               r"full\): free some space.*`disco resume "):
            store.add_generation(1, [candidate(2, 1, weights=100_000)])
        assert store.last_generation() == 0 and store.count() == 1  # rolled back whole
        opened[-1].execute("PRAGMA max_page_count = 1073741823")
        store.add_generation(1, [candidate(2, 1, weights=100_000)])  # space again: it goes on
        assert store.count() == 2


def test_a_checkpoint_that_finds_no_space_is_a_storage_error_and_leaves_the_older_one(
        tmp_path, monkeypatch):
    with RunStore.create(tmp_path / "run", CONFIG) as store:
        store.save_checkpoint(0, {"g": 0})

        def no_space(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", no_space)
        with pytest.raises(StorageError, match="the disk is full .No space left on device"):
            store.save_checkpoint(1, {"g": 1})
        monkeypatch.undo()
        assert [p.name for p in store.checkpoint_dir.iterdir()] == ["checkpoint-00000000.msgpack"]
        assert store.load_checkpoint() == (0, {"g": 0})


def test_text_that_is_not_utf8_in_a_row_says_the_archive_is_damaged(tmp_path):
    RunStore.create(tmp_path / "run", CONFIG).close()
    with sqlite3.connect(tmp_path / "run" / "archive.sqlite") as db:  # garbled in the row
        db.execute("INSERT INTO events VALUES (0, CAST(x'ff6d656469616e' AS TEXT), 1.0)")
    with RunStore.open(tmp_path / "run", write=False) as store:
        with pytest.raises(ArchiveDamagedError, match=r"archive.sqlite is damaged \(text that "
                                                      r"is not UTF-8: b'\\xffmedian'\)"):
            store.events()


def test_a_staged_run_appears_only_when_placed_and_leaves_nothing_otherwise(tmp_path):
    with pytest.raises(ConnectionError):
        with RunStore.staged(tmp_path / "runs" / "a", CONFIG):
            assert not (tmp_path / "runs" / "a").exists()  # built hidden, beside it
            raise ConnectionError("the cluster did not answer")
    assert list(tmp_path.iterdir()) == []  # not even the runs/ folder it made
    with RunStore.staged(tmp_path / "runs" / "a", CONFIG) as place:
        with place() as store:
            assert store.writable and store.config_text == CONFIG
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["a"]


def test_discard_removes_a_run_without_checkpoints_only(tmp_path):
    store = RunStore.create(tmp_path / "new", CONFIG)
    store.add_generation(0, [candidate(1, 0)])  # a generation without its checkpoint
    assert not store.checkpointed
    store.discard()
    assert not (tmp_path / "new").exists()
    with RunStore.create(tmp_path / "begun", CONFIG) as store:
        store.save_checkpoint(0, {})
        with pytest.raises(StoreError, match="has checkpoints: it is kept"):
            store.discard()
    assert (tmp_path / "begun" / "archive.sqlite").exists()


def test_a_launch_into_a_live_run_names_its_writer(tmp_path):
    with RunStore.create(tmp_path / "run", CONFIG):
        writer = RunLock.holder(tmp_path / "run")
        with pytest.raises(RunLockedError, match=f"already holds a run, which {writer} is "
                                                 "writing: choose another --run-dir"):
            RunStore.create(tmp_path / "run", CONFIG)
    assert writer.startswith(f"pid {os.getpid()} on ")


def test_the_task_module_folders_are_read_back_and_a_damaged_file_is_named(tmp_path):
    folders = '{"my_tasks": "/home/me/project"}'
    with RunStore.create(tmp_path / "run", CONFIG, {"task_modules.json": folders}) as store:
        assert store.task_module_folders() == {"my_tasks": "/home/me/project"}
    with RunStore.create(tmp_path / "old", CONFIG) as store:
        assert store.task_module_folders() == {}  # runs of earlier versions record none
    (tmp_path / "old" / "task_modules.json").write_text("[1, 2]")
    with RunStore.open(tmp_path / "old", write=False) as store:
        with pytest.raises(StoreError, match="task_modules.json is damaged"):
            store.task_module_folders()


def test_top_asks_for_every_row_however_many_are_asked_for(tmp_path):
    with RunStore.create(tmp_path / "run", CONFIG) as store:
        store.add_generation(0, [candidate(1, 0)])
        assert [record.id for record, _ in store.top(10 ** 30)] == [1]
