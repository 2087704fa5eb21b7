"""`disco score` scores programs on a run's held-out tasks exactly as the run does."""

import re
from pathlib import Path

from disco_rules.discovery.cli import main
from tests.test_search import make_search, programs

EXAMPLES = Path(__file__).parent.parent / "dsl" / "programs"


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
        *per_task, mean = numbers
        assert per_task == [round(v, 3) for v in expected[cid]]
        assert abs(mean - sum(expected[cid]) / len(expected[cid])) < 1e-3


def test_score_needs_a_run_with_baselines(tmp_path, capsys):
    code = main(["score", str(EXAMPLES / "sgd.py"), "--run", str(tmp_path)])
    assert code == 2
    assert "disco: error:" in capsys.readouterr().err
