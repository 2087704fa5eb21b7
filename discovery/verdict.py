"""One verdict on a candidate against the tuned baseline, from paired scores: does it beat
tuned AdamW beyond noise, is it within noise of it, or is it worse?

A score is a candidate's margin over the baseline on one result (a task, or a task x seed):
on optimizer tasks log(tuned AdamW loss / candidate loss), 0 = as good; on RL tasks the
normalised return, 1 = the tuned baseline, which `judge` compares against `reference=1`.
Scores come grouped by task family. With m the mean margin over every result (all families
pooled), SE its standard error (`selection.standard_error`: sample std / sqrt(n)) and
NEGLIGIBLE = 0.001 (a 0.1% lower loss):

- "beats":        m - 2*SE > NEGLIGIBLE   (needs n >= 2; the 2-SE rule, about 97.5% one-sided)
- "worse":        m + 2*SE < -NEGLIGIBLE, or some result is not finite (-inf: the candidate
                  failed; NaN or +inf: a run that could not be scored): a verdict never
                  claims a margin it could not measure
- "within noise": otherwise, including m - 2*SE == NEGLIGIBLE or m + 2*SE == -NEGLIGIBLE
                  exactly, and every case with fewer than two results (SE undefined: "too
                  few results to tell")

NEGLIGIBLE keeps float rounding from deciding: the `adam` program and optax's AdamW at weight
decay 0 differ by ~1e-7 per seed with an SE ten times smaller, which the bare rule calls a win.

A family is "ahead" when the mean margin over its results is > NEGLIGIBLE and none failed. The
`disco transfer` report, `disco inspect RUN --pareto` and the launch summary print these
lines (`Verdict.text`, `winner_text`). Pure numpy: the CLI reads it without JAX.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Mapping, Sequence

import numpy as np

from disco_rules.discovery.selection import MIN_SAMPLES_FOR_SE, standard_error

NEGLIGIBLE = 1e-3  # a margin this small is no margin (log loss ratio: a 0.1% lower loss)


class Kind(StrEnum):
    """What a verdict says; its value is the word printed and written to JSON."""

    BEATS = "beats"
    WITHIN_NOISE = "within noise"
    WORSE = "worse"


@dataclass(frozen=True)
class Verdict:
    """A candidate against the baseline: the mean margin over all results (-inf if one
    failed) and its standard error (NaN below two results or with a failure), how many
    families it is ahead on, and its kind; `count` results, `failed` of them not finite."""

    mean: float
    se: float
    families_ahead: int
    families: int
    kind: Kind
    count: int = 0
    failed: int = 0

    @property
    def too_few(self) -> bool:
        """Fewer than two results and none failed: the SE is undefined, nothing to tell."""
        return self.count < 2 and self.failed == 0

    def numbers(self) -> str:
        """The margin and its spread, e.g. "+0.210 ± 0.060; ahead on 2 of 3 held-out
        families"."""
        if self.failed:
            margin = f"no finite score on {self.failed} of {self.count} results"
        elif self.count == 0:
            margin = "no results"
        else:
            margin = with_error(self.mean, self.se, self.count)
        return f"{margin}; ahead on {self.families_ahead} of {self.families} held-out families"

    def text(self, name: str, baseline: str = "tuned AdamW") -> str:
        """One line, e.g. "#960 beats tuned AdamW by +0.210 ± 0.060 (ahead on 2 of 3 held-out
        families)" / "#960 is within noise of tuned AdamW (+0.010 ± 0.050; ahead on ...)" /
        "#960 is worse than tuned AdamW (-0.300 ± 0.050; ...)"."""
        if self.kind is Kind.BEATS:
            return (f"{name} beats {baseline} by {with_error(self.mean, self.se, self.count)} "
                    f"(ahead on {self.families_ahead} of {self.families} held-out families)")
        if self.kind is Kind.WORSE:
            return f"{name} is worse than {baseline} ({self.numbers()})"
        if self.too_few:
            return f"too few results to tell whether {name} beats {baseline} ({self.numbers()})"
        return f"{name} is within noise of {baseline} ({self.numbers()})"


def with_error(mean: float, se: float, count: int) -> str:
    """A mean of `count` results with its standard error, "+0.210 ± 0.060", where there are
    MIN_SAMPLES_FOR_SE results or more; else how many it is from, "+0.210 from 2 results"."""
    if count >= MIN_SAMPLES_FOR_SE and math.isfinite(se):
        return f"{mean:+.3f} ± {se:.3f}"
    return f"{mean:+.3f} from {count} result{'' if count == 1 else 's'}"


def judge(scores: Mapping[str, Sequence[float] | np.ndarray], reference: float = 0.0,
          negligible: float = NEGLIGIBLE) -> Verdict:
    """The verdict of per-family scores (family -> its results' scores), each compared with
    `reference` (0 for log loss ratios, 1 for returns normalised by the baseline's); the rule
    is the module's docstring, with NEGLIGIBLE = `negligible`."""
    margins = {family: np.asarray(values, np.float64).ravel() - reference
               for family, values in scores.items()}
    pooled = np.concatenate(list(margins.values())) if margins else np.zeros(0)
    failed = int(np.sum(~np.isfinite(pooled)))
    ahead = sum(bool(v.size) and bool(np.all(np.isfinite(v))) and float(v.mean()) > negligible
                for v in margins.values())
    if failed:
        return Verdict(-math.inf, math.nan, ahead, len(margins), Kind.WORSE, pooled.size,
                       failed)
    mean = float(pooled.mean()) if pooled.size else math.nan
    se = standard_error(pooled)
    if math.isnan(se):
        kind = Kind.WITHIN_NOISE
    elif mean - 2 * se > negligible:
        kind = Kind.BEATS
    elif mean + 2 * se < -negligible:
        kind = Kind.WORSE
    else:
        kind = Kind.WITHIN_NOISE
    return Verdict(mean, se, ahead, len(margins), kind, pooled.size, 0)


def family_of(task_key: str) -> str:
    """The family of a task key, e.g. "quadratic" for "quadratic(dim=4,horizon=12)"."""
    return task_key.split("(", 1)[0]


def by_family(scores: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Per-task scores (task key -> score) grouped by family, in order of first appearance."""
    grouped: dict[str, list[float]] = {}
    for task, score in scores.items():
        grouped.setdefault(family_of(task), []).append(score)
    return {family: np.asarray(values, np.float64) for family, values in grouped.items()}


def against(name: str, scores: Mapping[str, float], other: str,
            other_scores: Mapping[str, float]) -> str:
    """One line on `name` against `other` from their scores on the same tasks (task -> score),
    paired task by task, e.g. "#12 beats its warm start #0 (sgd) by +0.240 ± 0.080 (ahead on
    3 of 4 held-out families)"."""
    gaps = {task: score - other_scores[task] for task, score in scores.items()
            if task in other_scores}
    return judge(by_family(gaps)).text(name, other)


def confirmed_text(name: str, verdict: Verdict, baseline: str = "tuned AdamW") -> str:
    """What to say of a run's chosen winner `name` from its `verdict` on fresh seeds
    (discovery/confirmation.py): its verdict line when it beats the baseline there; otherwise,
    plainly, that it does not and the baseline stays the one to use."""
    if verdict.kind is Kind.BEATS:
        return verdict.text(name, baseline) + " on fresh seeds"
    return (f"on fresh seeds the chosen {name} does not beat {baseline} beyond noise "
            f"({_how(verdict)}): {baseline} stays the one to use")


def _how(verdict: Verdict) -> str:
    """A verdict that is not "beats" in words with its numbers, e.g. "within noise: +0.010 ±
    0.050; ahead on 1 of 3 held-out families"."""
    return ("too few results to tell" if verdict.too_few else verdict.kind) + ": " \
        + verdict.numbers()


def winner_text(name: str, verdict: Verdict, baseline: str = "tuned AdamW",
                beating: Sequence[tuple[str, Verdict]] = ()) -> str:
    """What to say of a run's chosen winner `name`: its verdict line when it beats the
    baseline; otherwise, plainly, that no candidate does and the baseline stays the one to use
    (or, when `beating` lists other candidates that do, that the chosen one does not, and the
    best of those)."""
    if verdict.kind is Kind.BEATS:
        return verdict.text(name, baseline)
    how = _how(verdict)
    if not beating:
        return (f"no candidate beats {baseline} beyond noise on the held-out tasks: "
                f"{baseline} stays the one to use; the closest is {name} ({how})")
    other, its = beating[0]
    return (f"the chosen {name} does not beat {baseline} beyond noise on the held-out tasks "
            f"({how}); {len(beating)} other candidate(s) do, the best {its.text(other, baseline)}")
