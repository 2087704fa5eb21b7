"""The README's main command, run as a new user runs it, shows a discovery: its winner is
ahead of its SGD warm start on every held-out task, and the summary says by how much and
whether that clears the verdict's bar over families, and what it does not beat (tuned AdamW,
judged on fresh seeds), in numbers this test recomputes from the archive."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from scipy.stats import t as student_t

from disco_rules.discovery.store import RunStore
from tests.test_cli_runs import DISCO, _environment
from tests.test_transfer_command import family_form

QUICKSTART = Path(__file__).parent.parent / "examples" / "quickstart.toml"


@pytest.mark.slow
def test_the_quickstart_finds_a_rule_ahead_of_its_warm_start_on_held_out_tasks(tmp_path):
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
    gains = {task: winner[task] - warm[task] for task in winner}
    families = {task.split("(")[0] for task in gains}
    gain, se = family_form(gains)
    assert all(gains[task] > 0 for task in gains)  # ahead on every held-out task
    # beyond Student's t standard errors over families (4.30 over 3) it beats; else within noise
    needs = max(2.0, float(student_t.ppf(0.975, len(families) - 1)))
    shown = f"{gain:+.3f} ± {se:.3f}"
    if gain - needs * se > 0.001:
        assert f"#{chosen} beats its warm start #0 (sgd) by {shown}" in out
    else:
        assert f"#{chosen} is within noise of its warm start #0 (sgd) ({shown}, " in out
    # the verdict on tuned AdamW is judged on fresh seeds, not on those that chose it
    assert sorted(fresh) == sorted(winner) and fresh != winner
    margin, margin_se = family_form(fresh)
    if margin - needs * margin_se > 0.001:
        assert f"verdict: #{chosen} beats tuned AdamW by {margin:+.3f}" in out
    else:  # what it does not beat, said plainly
        assert (f"verdict: on fresh seeds the chosen #{chosen} does not beat tuned AdamW "
                "beyond noise") in out and "tuned AdamW stays the one to use" in out
