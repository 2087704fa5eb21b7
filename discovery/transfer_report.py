"""The markdown report of `disco transfer`: per family, per kind of task and per task tables,
the calibration table, the curves' plot, and the line naming the commit and command."""

from __future__ import annotations

import math
import shlex
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from disco_rules.discovery.inner.schedules import suffix
from disco_rules.discovery.inner.train import CURVE_POINTS
from disco_rules.discovery.selection import standard_error
from disco_rules.discovery.transfer import VARIANTS, Grid, Transfer, Tuned
from disco_rules.discovery.verdict import NEGLIGIBLE, Verdict, with_error
from disco_rules.dsl.simplify import simplify


def mean_and_error(values: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error (std with ddof=1 over sqrt(n)); -inf/NaN if any is -inf."""
    values = np.asarray(values, np.float64).ravel()
    if not np.all(np.isfinite(values)):
        return (-math.inf if np.any(values == -np.inf) else math.nan), math.nan
    return float(values.mean()), standard_error(values)


def _cell(values: np.ndarray) -> str:
    """A table cell: the mean with its standard error where there are enough results to mean
    something (`verdict.with_error`), else the mean and how many results it is from."""
    mean, error = mean_and_error(values)
    if not math.isfinite(mean):
        return f"{mean}"
    return with_error(mean, error, np.asarray(values).size)


def _overall(verdict: Verdict) -> str:
    """A table cell: a verdict's mean over families with its standard error (or how many
    results it is from)."""
    if not math.isfinite(verdict.mean):
        return f"{verdict.mean}"
    return with_error(verdict.mean, verdict.se, verdict.count)


def summary_table(outcome: Transfer, names: Sequence[str]) -> str:
    """Markdown: per optimizer, the mean ± SE of its scores per family and over families (the
    verdict's), on how many families it is ahead (mean above `verdict.NEGLIGIBLE`), and its
    verdict."""
    columns = outcome.groups
    lines = ["| optimizer | " + " | ".join(columns)
             + " | overall | families ahead | verdict |", "|---" * (len(columns) + 4) + "|"]
    for name in names:
        pooled = outcome.scores(name)
        verdict = outcome.verdict(name)
        kind = "too few results" if verdict.too_few else verdict.kind
        lines.append(f"| {name} | " + " | ".join(_cell(pooled[g]) for g in columns)
                     + f" | {_overall(verdict)} | {verdict.families_ahead}/"
                       f"{verdict.families} | {kind} |")
    return "\n".join(lines)


def variant_table(outcome: Transfer, names: Sequence[str]) -> str:
    """Markdown: per optimizer, the mean ± SE of its scores on the held-out tasks and on each
    kind of variant, all families pooled: a lead that comes and goes with the horizon or the
    batch size shows here."""
    labels = list(dict.fromkeys(row.label for row in outcome.evaluated))
    lines = ["| optimizer | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name in names:
        pooled = outcome.by_label(name)
        lines.append(f"| {name} | " + " | ".join(_cell(pooled[label]) for label in labels)
                     + " |")
    return "\n".join(lines)


def at_reach(grid: Grid, lr: float) -> bool:
    """Whether `lr` is the farthest lr tuning over `grid` can reach, past either edge: an
    optimizer chosen there might do better still beyond it."""
    lrs = sorted(grid.lrs)
    if len(lrs) < 2:
        return math.isclose(lr, lrs[0], rel_tol=1e-5)
    top = lrs[-1] * (lrs[-1] / lrs[-2]) ** grid.past_edge
    bottom = lrs[0] / (lrs[1] / lrs[0]) ** grid.past_edge
    return any(math.isclose(lr, end, rel_tol=1e-5) for end in (top, bottom))


def _point_text(tuned: Tuned, grid: Grid) -> str:
    """A chosen point's lr, its schedule where it is not constant, and a † where the lr is as
    far as tuning could reach (`at_reach`): "lr 0.01 cosine", "lr 1†"."""
    reach = "†" if at_reach(grid, tuned.lr) else ""
    return f"lr {tuned.lr:.2g}{reach}{suffix(tuned.schedule.name)}"


def task_table(outcome: Transfer, names: Sequence[str]) -> str:
    """Markdown: per task, tuned AdamW's point and loss and each optimizer's mean ± SE over the
    scoring seeds with its chosen lr (and schedule, unless constant; † where the lr is as far
    as tuning could reach), and a footnote where any is."""
    lines = ["| task | variant | tuned AdamW | " + " | ".join(names) + " |",
             "|---" * (len(names) + 3) + "|"]
    for result, row in zip(outcome.results, outcome.evaluated):
        b = result.baseline
        loss = math.exp(b.score)
        cells = [f"{_cell(result.scores(n))} @ "
                 f"{_point_text(result.optimizers[n], outcome.grid)}" for n in names]
        lines.append(f"| `{result.task.key}` | {row.label} | {loss:.4g} "
                     f"({_point_text(b, outcome.grid)}, wd {b.weight_decay:g}) | "
                     + " | ".join(cells) + " |")
    if any("†" in line for line in lines[2:]):
        lines += ["", "† the farthest lr tuning reaches past the grid's edge: the optimizer "
                      "might do better still beyond it."]
    return "\n".join(lines)


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of two paired sequences: Pearson's correlation of their
    ranks, tied values sharing their mean rank; NaN below 3 pairs or when one is constant."""
    def ranks(values: Sequence[float]) -> np.ndarray:
        values = np.asarray(values, np.float64)
        order = np.argsort(values, kind="stable")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values), dtype=np.float64)
        for value in np.unique(values):  # ties: their mean rank
            ranked[values == value] = ranked[values == value].mean()
        return ranked

    if len(x) < 3:
        return math.nan
    a, b = ranks(x), ranks(y)
    if np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def calibration_table(outcome: Transfer, in_search: Mapping[str, float]) -> str:
    """Markdown: per optimizer of `in_search` (name -> its mean score on the run's held-out
    tasks as the search measured it), that score beside its transfer score (its verdict's
    mean ± SE over families), and Spearman's rank correlation of the two over the finite
    pairs: how far the search's own estimate orders optimizers as the transfer protocol
    does."""
    names = list(in_search)
    lines = ["| optimizer | in-search validation | transfer |", "|---|---|---|"]
    pairs = []
    for name in names:
        verdict = outcome.verdict(name)
        lines.append(f"| {name} | {in_search[name]:+.3f} | {_overall(verdict)} |")
        mean = verdict.mean
        if math.isfinite(in_search[name]) and math.isfinite(mean):
            pairs.append((in_search[name], mean))
    rho = rank_correlation(*zip(*pairs)) if pairs else math.nan
    lines += ["", f"Spearman's rank correlation over {len(pairs)} optimizers: "
              + ("undefined" if math.isnan(rho) else f"{rho:+.2f}")]
    return "\n".join(lines)


def report(outcome: Transfer, candidates: Sequence[str], title: str, provenance: str,
           in_search: Mapping[str, float] | None = None) -> str:
    """The markdown report: `title`, `provenance` (commit and command), the protocol, the
    tables of every optimizer the outcome scored (with `in_search` scores, the calibration
    table too), the `candidates`' simplified programs and, last, their verdict lines."""
    s, grid, programs = outcome.seeds, outcome.grid, dict(outcome.programs)
    total = len(outcome.evaluated) + len(outcome.left_out)
    texts = "\n\n".join(f"{name} (simplified):\n\n```python\n{simplify(programs[name])}```"
                        for name in candidates) or "None: only the references."
    left_out = ([f"Not evaluated (--tasks {len(outcome.evaluated)}): "
                 + ", ".join(f"`{row.task.key}` ({row.label})" for row in outcome.left_out)
                 + ".", ""] if outcome.left_out else [])
    return "\n".join([
        f"# {title}",
        "",
        provenance,
        "",
        f"Score: log(tuned AdamW loss / optimizer loss) per task and scoring seed, paired by "
        f"seed, {s} scoring seeds (keys `task_keys(task, {s}, {outcome.test_seed})`); per "
        f"family mean ± standard error over its tasks x seeds, overall the mean of the family "
        f"means ± its standard error over families (`verdict.judge`). Every optimizer is "
        f"tuned on {s} other seeds (keys "
        f"`task_keys(task, {s}, {outcome.run_seed})`): {grid.describe()}; chosen = lowest mean "
        f"over the tuning seeds of log final validation loss. Columns: the run's held-out "
        f"families, each its held-out tasks and their variants "
        f"({', '.join(label for label, _ in VARIANTS)}). Verdict: beats tuned AdamW when "
        f"overall mean - k SE > {NEGLIGIBLE:g}, k = max(2, Student's t at 97.5% with one "
        f"degree of freedom fewer than the families), and it is ahead on more than half of "
        f"the families, worse when mean + k SE < -{NEGLIGIBLE:g}, else within noise; ahead on "
        f"a family: its mean > {NEGLIGIBLE:g}.",
        "",
        *left_out,
        summary_table(outcome, outcome.names),
        "",
        *(["## By variant (every family's tasks of a kind pooled, mean ± SE over tasks x "
           "seeds)", "", variant_table(outcome, outcome.names), ""]
          if len({row.label for row in outcome.evaluated}) > 1 else []),
        "## Per task (score @ chosen lr)",
        "",
        task_table(outcome, outcome.names),
        "",
        *(["## Calibration: the search's estimate against transfer", "",
           calibration_table(outcome, in_search), ""] if in_search else []),
        "## Candidates",
        "",
        texts,
        "",
        "## Verdict",
        "",
        *([f"On the suite's first {len(outcome.evaluated)} of {total} tasks (--tasks "
           f"{len(outcome.evaluated)}): the others can change these verdicts.", ""]
          if outcome.left_out else []),
        *(outcome.verdict(name).text(name) for name in candidates),
        "",
    ])


def plot_curves(outcome: Transfer, name: str, output: Path) -> None:
    """Per family, the mean validation curves of optimizer `name` (solid) and tuned AdamW
    (dashed) on each of its tasks, against the fraction of training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = outcome.groups
    figure, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 4), squeeze=False)
    for ax, group in zip(axes[0], columns):
        tasks = [(result, row.label) for result, row in zip(outcome.results, outcome.evaluated)
                 if row.group == group]
        for k, (result, label) in enumerate(tasks):
            x = np.linspace(0, 1, CURVE_POINTS)
            colour = f"C{k}"
            ax.semilogy(x, result.optimizers[name].curve, color=colour, label=f"{name}: {label}")
            ax.semilogy(x, result.baseline.curve, color=colour, linestyle="--",
                        label=f"AdamW: {label}")
        ax.set_title(group)
        ax.set_xlabel("fraction of training")
        ax.set_ylabel("validation loss (mean over seeds)")
        ax.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)


def provenance(argv: Sequence[str], command: Sequence[str] = ("disco",)) -> str:
    """"commit `abc1234`; command: `disco transfer ...`" for a report of `command` + `argv`:
    the commit of this code's checkout (noting uncommitted changes to tracked files),
    "unknown" outside one."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True,
                              check=False)

    try:
        commit = git("rev-parse", "--short", "HEAD").stdout.strip()
        dirty = bool(commit) and git("diff", "--quiet", "HEAD").returncode == 1
    except OSError:  # no git
        commit, dirty = "", False
    return (f"commit `{commit or 'unknown'}`{' (with uncommitted changes)' if dirty else ''}; "
            f"command: `{shlex.join([*command, *argv])}`")
