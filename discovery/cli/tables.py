"""How numbers are printed: fitness and scores, tables of scores per task, JSON floats."""

from __future__ import annotations

import math
from typing import Any, Sequence

_CELL = 16  # width of a "+0.123 ± 0.045" column


def format_fitness(value: float) -> str:
    """A fitness or score with its sign and three decimals; -inf and nan as words."""
    return "-inf" if value == -math.inf else ("nan" if math.isnan(value) else f"{value:+.3f}")


def score_header(tasks: int) -> str:
    """The columns of `score_cells`: T1 .. Tn, then mean."""
    return "".join(f"{'T' + str(i + 1):>{_CELL}}" for i in range(tasks)) + f"{'mean':>{_CELL}}"


def score_cells(row: Sequence[Any]) -> str:
    """A candidate's per-task scores (TaskScores) and their mean, each "mean ± SE" over seeds;
    the mean's SE is sqrt(sum of the tasks' squared SEs) / tasks (seeds independent)."""
    def cell(value: float, se: float) -> str:
        text = format_fitness(value)
        return text if math.isnan(se) or not math.isfinite(value) else f"{text} ± {se:.3f}"

    mean = sum(score.value for score in row) / len(row)
    mean_se = math.sqrt(sum(score.se ** 2 for score in row)) / len(row)
    return "".join(f"{cell(score.value, score.se):>{_CELL}}" for score in row) \
        + f"{cell(mean, mean_se):>{_CELL}}"


def baseline_note(baseline: Any) -> str:
    """What score 0 is on a task: its tuned baseline, e.g. "  (0 = adamw(lr=0.01, wd=0.01),
    8 seeds)"; "" where the archive does not name it (RL tasks)."""
    if not baseline.name:
        return ""
    seeds = "" if baseline.seeds is None else f", {baseline.seeds} seeds"
    return f"  (0 = {baseline.name}{seeds})"


def json_float(value: Any) -> str:
    """`json.dumps`'s default for what JSON cannot hold (non-finite floats): its text."""
    return str(value)
