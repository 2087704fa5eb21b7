"""`disco score` scores programs on a run's held-out tasks exactly as the run does."""

import math
import re
from pathlib import Path

import pytest

from disco_rules.discovery.cli import main
from tests.test_search import make_search, programs

EXAMPLES = Path(__file__).parent.parent / "dsl" / "programs"


@pytest.mark.slow  # a search generation, then `disco score` trains both programs again
def test_score_reproduces_the_runs_own_meta_validation(tmp_path, capsys):
    search, store, _ = make_search(tmp_path / "run", programs("sgd", "momentum"))
    search.step()  # generation 0 meta-validates the warm starts
    expected = {}
    for cid in (0, 1):
        scores = sorted(store.validation_of(cid), key=lambda v: v.task)
        expected[cid] = [v.score for v in scores]
    store.close()
    code = main(["score", str(EXAMPLES / "sgd.py"), f"{tmp_path / 'run'}:1",
                 "--run", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    rows = out.strip().splitlines()[-2:]  # one table row per program, in order
    assert len(rows) == 2
    for cid, row in zip((0, 1), rows):
        numbers = [float(v) for v in re.findall(r"[+-]\d+\.\d+", row)]
        *per_task, mean = numbers  # one seed: no standard errors
        assert "±" not in row
        assert per_task == [round(v, 3) for v in expected[cid]]
        assert abs(mean - sum(expected[cid]) / len(expected[cid])) < 1e-3


@pytest.mark.slow  # a search generation, then `disco score` trains on 3 seeds
def test_score_gives_standard_errors_over_seeds(tmp_path, capsys):
    search, store, _ = make_search(tmp_path / "run", programs("sgd", "momentum"))
    search.step()
    store.close()
    code = main(["score", str(EXAMPLES / "sgd.py"), str(EXAMPLES / "momentum.py"),
                 "--run", str(tmp_path / "run"), "--seeds", "3"])
    out = capsys.readouterr().out
    assert code == 0
    for row in out.strip().splitlines()[-2:]:
        cells = [(float(v), float(se))
                 for v, se in re.findall(r"([+-]\d+\.\d+) ± (\d+\.\d+)", row)]
        assert len(cells) >= 2, out  # each task and the mean
        *per_task, (mean, mean_se) = cells
        ses = [se for _, se in per_task]
        assert all(se > 0 for se in ses)  # three seeds of a noisy task never agree exactly
        assert abs(mean - sum(v for v, _ in per_task) / len(per_task)) < 2e-3
        assert abs(mean_se - math.sqrt(sum(se ** 2 for se in ses)) / len(ses)) < 2e-3


def test_score_needs_a_run_with_baselines(tmp_path, capsys):
    code = main(["score", str(EXAMPLES / "sgd.py"), "--run", str(tmp_path)])
    assert code == 2
    assert "disco: error:" in capsys.readouterr().err
