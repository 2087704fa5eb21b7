"""Figures of a run: fitness over evaluations and the winner's curves against the baseline
(loss against AdamW for programs, return against PPO for networks); learned drifts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from disco_rules.discovery.store import RunStore  # noqa: E402


def _wrapped(title: str, width: int) -> str:
    """`title` in lines of at most `width` characters, whole: never cut."""
    return textwrap.fill(title, width, break_on_hyphens=False)


def plot_run(store: RunStore, output: str | Path) -> None:
    """Best and median population fitness against evaluations (and an evolution strategy's
    mean), and the best validated candidate's held-out curves next to the baseline's."""
    events = store.events()
    by_generation: dict[int, dict[str, float]] = {}
    for event in events:
        by_generation.setdefault(event.generation, {})[event.name] = event.value
    generations = sorted(by_generation)
    evaluations = np.cumsum([by_generation[g].get("evaluated", 0.0) for g in generations])
    best = [by_generation[g].get("best", np.nan) for g in generations]
    median = [by_generation[g].get("median", np.nan) for g in generations]
    mean = [by_generation[g].get("mean", np.nan) for g in generations]

    winners = store.top(1, by="validation")
    curves = []
    rl = bool(winners) and winners[0][0].weights is not None
    if winners:
        winner = winners[0][0]
        heldout = {v.task for v in store.validation_of(winner.id)}
        for score in store.scores_of(winner.id):
            baseline = store.baseline(score.task)
            if score.task in heldout and score.curve and baseline and baseline.curve:
                curves.append((score.task, score.curve, baseline.curve))

    columns = 1 + len(curves)
    figure, axes = plt.subplots(1, columns, figsize=(5 * columns, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot(evaluations, best, label="best")
    ax.plot(evaluations, median, label="median")
    if np.isfinite(mean).any():
        ax.plot(evaluations, mean, label="strategy mean")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("fitness: return normalised by PPO's" if rl
                  else "fitness: log(AdamW loss / candidate loss)")
    ax.set_title("population fitness")
    ax.legend()
    for ax, (task, curve, baseline) in zip(axes[0][1:], curves):
        draw = ax.plot if rl else ax.semilogy
        draw(np.linspace(0, 1, len(curve)), curve, label=f"#{winners[0][0].id}")
        draw(np.linspace(0, 1, len(baseline)), baseline,
             label="PPO (tuned lr)" if rl else "AdamW (tuned lr)")
        ax.set_xlabel("fraction of training")
        ax.set_ylabel("mean episode return" if rl else "validation loss")
        ax.set_title(_wrapped(task, 45), fontsize=8)
        ax.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)


DRIFT_PROGRESS = (0.0, 0.5, 1.0)


def plot_drift(drift: tuple, title: str, output: str | Path) -> None:
    """Heatmaps of a drift over ratio x advantage, one per training progress in DRIFT_PROGRESS
    (one alone if the drift ignores progress), as the TA-LPO paper shows learned drifts.
    `drift`: (function of numpy (ratio, advantage, progress), whether it reads progress)."""
    function, temporal = drift
    ratio, advantage = np.meshgrid(np.linspace(0.5, 1.5, 101), np.linspace(-2.0, 2.0, 81))
    progresses = DRIFT_PROGRESS if temporal else (0.0,)
    values = [np.broadcast_to(function(ratio.astype(np.float32), advantage.astype(np.float32),
                                       np.float32(p)), ratio.shape) for p in progresses]
    top = max(float(np.nanmax(v)) for v in values) or 1.0
    figure, axes = plt.subplots(1, len(values), figsize=(4.5 * len(values) + 1, 4),
                                squeeze=False, layout="constrained")
    for ax, p, value in zip(axes[0], progresses, values):
        image = ax.pcolormesh(ratio, advantage, value, vmin=0.0, vmax=top, shading="auto")
        ax.axvline(1.0, color="white", linewidth=0.5)
        ax.set_xlabel("ratio r")
        ax.set_ylabel("advantage A")
        ax.set_title(f"progress {p:.1f}" if temporal else "drift (ignores progress)")
    figure.colorbar(image, ax=axes[0].tolist(), label="drift")
    figure.suptitle(_wrapped(title, 40 * len(values)), fontsize=9)
    figure.savefig(output, dpi=100)
    plt.close(figure)


def plot_levels(sampled: list, title: str, output: str | Path) -> None:
    """How the sampled levels' numeric parameters moved over a run: one panel per parameter
    that varies, each level a point at its generation, coloured by the regret it had."""
    names = sorted({name for row in sampled for name, value in row.params.items()
                    if isinstance(value, (int, float)) and not isinstance(value, bool)})
    names = [name for name in names if len({row.params.get(name) for row in sampled}) > 1] \
        or names[:1]
    regrets = np.array([row.regret for row in sampled])
    figure, axes = plt.subplots(1, max(len(names), 1), figsize=(4 * max(len(names), 1), 3.6),
                                squeeze=False, layout="constrained")
    image = None
    for ax, name in zip(axes[0], names):
        rows = [row for row in sampled if name in row.params]
        image = ax.scatter([row.generation for row in rows], [row.params[name] for row in rows],
                           c=[row.regret for row in rows], vmin=regrets.min(),
                           vmax=regrets.max(), marker="o", s=18)
        ax.set_xlabel("generation")
        ax.set_title(name)
    if image is not None:
        figure.colorbar(image, ax=axes[0].tolist(), label="regret")
    figure.suptitle(_wrapped(f"sampled levels: {title}", 35 * max(len(names), 1)), fontsize=9)
    figure.savefig(output, dpi=100)
    plt.close(figure)
