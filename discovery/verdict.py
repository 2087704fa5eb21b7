"""One verdict on a candidate against the tuned baseline, from paired scores: does it beat
tuned AdamW beyond noise, is it within noise of it, or is it worse?

A score is a candidate's margin over the baseline on one result (a task, or a task x seed):
on optimizer tasks log(tuned AdamW loss / candidate loss), 0 = as good; on RL tasks the
normalised return, 1 = the tuned baseline, which `judge` compares against `reference=1`.
Scores come grouped by task family, and the family is the unit a verdict speaks for: a
user's problem is a new family, not a new seed of a held-out task. So m is the mean over
families of each family's mean margin, and SE its standard error over families (sample std
of the family means / sqrt(F)), never below what the results' own noise gives the same mean
(sqrt(sum over families of var_f / n_f) / F): three families that happen to agree do not
make a margin surer than their seeds do. One family: the SE of its results. A margin must
clear k = max(2, t) standard errors, t Student's 97.5% quantile at F - 1 degrees of freedom
(one family: n - 1): 4.30 SE over 3 families, 2.36 over 8, 2 from 62 on. Over few families
their SE is itself a guess; a run's winner that cleared 2 SE on 3 held-out families was
within noise on problems outside the repository (docs/results.md). With NEGLIGIBLE = 0.001
(a 0.1% lower loss):

- "beats":        m - k*SE > NEGLIGIBLE and ahead on more than half of the families (a
                  margin carried by a minority of families is not one a user's problem can
                  expect)
- "worse":        m + k*SE < -NEGLIGIBLE, or some result is not finite (-inf: the candidate
                  failed; NaN or +inf: a run that could not be scored): a verdict never
                  claims a margin it could not measure
- "within noise": otherwise, and every case with fewer than two results (SE undefined: "too
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
from scipy.special import stdtrit

from disco_rules.discovery.selection import MIN_SAMPLES_FOR_SE, standard_error

NEGLIGIBLE = 1e-3  # a margin this small is no margin (log loss ratio: a 0.1% lower loss)
CONFIDENCE = 0.975  # one-sided: a margin this sure is not noise


class Kind(StrEnum):
    """What a verdict says; its value is the word printed and written to JSON."""

    BEATS = "beats"
    WITHIN_NOISE = "within noise"
    WORSE = "worse"


@dataclass(frozen=True)
class Verdict:
    """A candidate against the baseline: the mean over families of its mean margin (-inf if
    a result failed) and its standard error (NaN below two results or with a failure), how
    many families it is ahead on, and its kind; `count` results, `failed` of them not
    finite."""

    mean: float
    se: float
    families_ahead: int
    families: int
    kind: Kind
    count: int = 0
    failed: int = 0
    needs: float = 2.0  # how many standard errors a margin must clear

    @property
    def too_few(self) -> bool:
        """Fewer than two results and none failed: the SE is undefined, nothing to tell."""
        return self.count < 2 and self.failed == 0

    def numbers(self) -> str:
        """The margin and its spread, e.g. "+0.210 ± 0.060, 4.30 SE needed from 3 families;
        ahead on 2 of 3 held-out families" (the SE a margin needed, where it is within noise
        and needed more than 2)."""
        if self.failed:
            margin = f"no finite score on {self.failed} of {self.count} results"
        elif self.count == 0:
            margin = "no results"
        else:
            margin = with_error(self.mean, self.se, self.count)
            if self.kind is Kind.WITHIN_NOISE and self.needs > 2 and math.isfinite(self.se):
                source = (f"{self.families} families" if self.families > 1
                          else f"{self.count} results")
                margin += f", {self.needs:.2f} SE needed from {source}"
        return f"{margin}; ahead on {self.families_ahead} of {self.families} held-out families"

    def text(self, name: str, baseline: str = "tuned AdamW") -> str:
        """One line, e.g. "#960 beats tuned AdamW by +0.210 ± 0.030 (ahead on 3 of 3 held-out
        families)" / "#960 is within noise of tuned AdamW (+0.010 ± 0.050, 4.30 SE needed from
        3 families; ahead on ...)" /
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
    margins = [np.asarray(values, np.float64).ravel() - reference
               for values in scores.values()]
    margins = [values for values in margins if values.size]
    count = sum(values.size for values in margins)
    failed = sum(int(np.sum(~np.isfinite(values))) for values in margins)
    ahead = sum(bool(np.all(np.isfinite(v))) and float(v.mean()) > negligible for v in margins)
    families = len(scores)
    if failed:
        return Verdict(-math.inf, math.nan, ahead, families, Kind.WORSE, count, failed)
    if not margins:
        return Verdict(math.nan, math.nan, 0, families, Kind.WITHIN_NOISE)
    means = np.array([values.mean() for values in margins])
    mean = float(means.mean())
    se = family_standard_error(margins)
    needs = needed(len(margins) - 1 if len(margins) > 1 else count - 1)
    if math.isnan(se):
        kind = Kind.WITHIN_NOISE
    elif mean - needs * se > negligible and 2 * ahead > len(margins):
        kind = Kind.BEATS
    elif mean + needs * se < -negligible:
        kind = Kind.WORSE
    else:
        kind = Kind.WITHIN_NOISE
    return Verdict(mean, se, ahead, families, kind, count, 0, needs)


def needed(degrees: int) -> float:
    """How many standard errors a margin with `degrees` degrees of freedom must clear: Student's
    t at CONFIDENCE, never below 2 (the rule's bound for many samples); inf below one."""
    if degrees < 1:
        return math.inf
    return max(2.0, float(stdtrit(degrees, CONFIDENCE)))


def family_standard_error(margins: Sequence[np.ndarray]) -> float:
    """The standard error of the mean of the family means of `margins` (one array per family):
    their spread over families, or the results' own noise where that is larger; NaN with
    fewer than two results."""
    noise = [values.var(ddof=1) / values.size for values in margins if values.size > 1]
    within = math.sqrt(sum(noise)) / len(margins) if noise else math.nan
    if len(margins) < 2:
        return within
    between = standard_error([values.mean() for values in margins])
    return between if math.isnan(within) else max(between, within)


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
