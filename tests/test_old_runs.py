"""Runs written by disco 0.1 (archive schema 3, the two drivers' checkpoints) still open,
inspect, export and resume. The fixtures in tests/data/runs-0.1 were written by commit
00c2b97 with the configs they hold (`python -m discovery.cli launch CONFIG`)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import disco_rules
from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.evaluator import Evaluator

DATA = Path(__file__).parent / "data" / "runs-0.1"
DISCO = Path(sys.executable).parent / "disco"


def copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(DATA / name, target)
    return target


def rows(run_dir: Path, generations: int) -> list[tuple]:
    with sqlite3.connect(run_dir / "archive.sqlite") as db:
        return db.execute("SELECT id, generation, text, hash, fitness, status FROM candidates "
                          "WHERE generation < ? ORDER BY id", (generations,)).fetchall()


@pytest.mark.parametrize("name, fmt", [("programs", "optax"), ("lpo", "jax")])
def test_an_old_run_opens_and_its_winner_exports(tmp_path, name, fmt):
    run = disco_rules.open_run(copy(name, tmp_path))
    status = run.status()
    assert status.generations == 2 and status.finished and status.candidates > 0
    best = run.top(1)[0]
    assert best.validation_score is not None
    assert best.kind == name  # schema 5's "program" is migrated to the population kind's name
    source = best.export(fmt)
    compile(source, "export", "exec")
    assert "disco_rules" not in source


@pytest.mark.parametrize("name", ["programs", "lpo"])
def test_the_cli_inspects_and_exports_an_old_run(tmp_path, name):
    run_dir = copy(name, tmp_path)
    inspected = subprocess.run([str(DISCO), "inspect", str(run_dir)], capture_output=True,
                               text=True)
    assert inspected.returncode == 0, inspected.stderr
    best = disco_rules.open_run(run_dir).top(1)[0]
    exported = subprocess.run([str(DISCO), "export", f"{run_dir}:{best.id}", "--format", "jax"],
                              capture_output=True, text=True)
    assert exported.returncode == 0 and "def " in exported.stdout, exported.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("programs", 12), ("lpo", 8)])
def test_an_old_run_resumes_for_more_generations_keeping_its_past(tmp_path, name, size):
    run_dir = copy(name, tmp_path)
    before = rows(run_dir, 2)
    run = disco_rules.resume(run_dir, generations=3, pool=LocalPool(lambda: Evaluator(size)))
    assert run.status().generations == 3
    assert rows(run_dir, 2) == before
    assert len(rows(run_dir, 3)) > len(before)
