"""Figures of a run: fitness over evaluations, and the winner's loss curves against AdamW."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from discovery.store import RunStore  # noqa: E402


def plot_run(store: RunStore, output: str | Path) -> None:
    """Best and median population fitness against evaluations, and the best validated
    program's held-out loss curves next to the AdamW baseline's."""
    events = store.events()
    by_generation: dict[int, dict[str, float]] = {}
    for event in events:
        by_generation.setdefault(event.generation, {})[event.name] = event.value
    generations = sorted(by_generation)
    evaluations = np.cumsum([by_generation[g].get("evaluated", 0.0) for g in generations])
    best = [by_generation[g].get("best", np.nan) for g in generations]
    median = [by_generation[g].get("median", np.nan) for g in generations]

    winners = store.top(1, by="validation")
    curves = []
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
    ax.set_xlabel("evaluations")
    ax.set_ylabel("fitness: log(AdamW loss / candidate loss)")
    ax.set_title("population fitness")
    ax.legend()
    for ax, (task, curve, baseline) in zip(axes[0][1:], curves):
        ax.semilogy(np.linspace(0, 1, len(curve)), curve, label=f"#{winners[0][0].id}")
        ax.semilogy(np.linspace(0, 1, len(baseline)), baseline, label="AdamW (tuned lr)")
        ax.set_xlabel("fraction of training")
        ax.set_ylabel("validation loss")
        ax.set_title(task if len(task) < 40 else task[:37] + "...", fontsize=8)
        ax.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
