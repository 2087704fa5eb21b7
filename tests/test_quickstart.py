"""The README's main command, run as a new user runs it, shows a discovery: its winner beats
its SGD warm start on the held-out tasks by more than two standard errors, and the summary
says so, and what it does not beat (tuned AdamW, judged on fresh seeds), in numbers this test
recomputes from the archive."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from disco_rules.discovery.store import RunStore
from tests.test_cli_runs import DISCO, _environment

QUICKSTART = Path(__file__).parent.parent / "examples" / "quickstart.toml"


def _mean_and_se(values: list[float]) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))


@pytest.mark.slow
def test_the_quickstart_finds_a_rule_that_beats_its_warm_start_on_held_out_tasks(tmp_path):
    result = subprocess.run([DISCO, "launch", str(QUICKSTART), "--run-dir",
                             str(tmp_path / "run")], cwd=tmp_path, capture_output=True,
                            text=True, env=_environment(tmp_path / "jax-cache"), timeout=900)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    chosen = int(re.search(r"^chosen: #(\d+),", out, re.MULTILINE).group(1))
    assert chosen != 0  # not its own warm start
    with RunStore.open(tmp_path / "run") as store:
        assert store.lineage(chosen)[-1].id == 0  # it grew from the SGD warm start
        winner = {v.task: v.score for v in store.validation_of(chosen)}
        warm = {v.task: v.score for v in store.validation_of(0)}
        fresh = {row.task: row.score for row in store.confirmation_of(chosen)}
    assert sorted(winner) == sorted(warm) and len(winner) >= 4
    gain, se = _mean_and_se([winner[task] - warm[task] for task in winner])
    assert gain - 2 * se > 0  # beyond two standard errors, paired task by task
    assert f"#{chosen} beats its warm start #0 (sgd) by {gain:+.3f} ± {se:.3f}" in out
    # the verdict on tuned AdamW is judged on fresh seeds, not on those that chose it
    assert sorted(fresh) == sorted(winner) and fresh != winner
    margin, margin_se = _mean_and_se(list(fresh.values()))
    if margin - 2 * margin_se > 0.001:
        assert f"verdict: #{chosen} beats tuned AdamW by {margin:+.3f}" in out
    else:  # what it does not beat, said plainly
        assert (f"verdict: on fresh seeds the chosen #{chosen} does not beat tuned AdamW "
                "beyond noise") in out and "tuned AdamW stays the one to use" in out
