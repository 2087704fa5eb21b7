"""Distillation: a program search in the objective slot that fits a learned drift."""

from pathlib import Path

import numpy as np
import pytest

from disco_rules.discovery.cli import main
from disco_rules.discovery.distill import (DistillConfig, distill, drift_grid, relative_error,
                               warm_start_programs)
from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.parser import parse

DPO = parse((Path(__file__).parent.parent / "dsl" / "programs" / "dpo.py").read_text())


def scaled_dpo(r, a, p):
    """A drift none of the warm starts is: DPO at 0.4x, growing with progress."""
    return (0.4 + 0.4 * p) * np.asarray(evaluate(DPO, {"ratio": r, "advantage": a,
                                                       "progress": p})[0])


def test_distillation_fits_far_better_than_the_warm_starts():
    grid = drift_grid(temporally_aware=True)
    target = scaled_dpo(*grid)
    start = min(relative_error(p, grid, target) for p in warm_start_programs())
    result = distill(scaled_dpo, True, DistillConfig(evaluations=600, seed=1))
    assert result.error == pytest.approx(relative_error(result.program, grid, target))
    assert result.error < 0.5 * start, (result.error, start)
    assert list(result.history) == sorted(result.history, reverse=True)  # best so far


def test_the_grid_covers_progress_only_for_temporally_aware_drifts():
    ratio, advantage, progress = drift_grid(temporally_aware=True)
    assert set(np.round(progress, 2)) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert ratio.min() == pytest.approx(0.5) and ratio.max() == pytest.approx(2.0)
    assert set(drift_grid(temporally_aware=False)[2]) == {0.5}


def test_relative_error_is_zero_for_the_same_function_and_inf_for_a_nan_one():
    grid = drift_grid(False)
    target = np.asarray(evaluate(DPO, dict(zip(("ratio", "advantage", "progress"), grid)))[0],
                        np.float64)
    assert relative_error(DPO, grid, target) == 0.0
    nan_program = parse("def bad(ratio, advantage, progress):\n"
                        "    t = log(advantage)\n    return t\n")
    assert relative_error(nan_program, grid, target) == float("inf")


def test_distill_needs_a_drift_network(tmp_path, capsys):
    program = tmp_path / "p.py"
    program.write_text(str(DPO))
    assert main(["distill", str(program)]) == 2
    assert "distill takes a drift network candidate RUN:ID" in capsys.readouterr().err
