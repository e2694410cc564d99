"""Figures of `resetrl ics` and `resetrl localize` (matplotlib, Agg backend: files only)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def plot_offsets(summary: dict, path: Path, title: str = "") -> None:
    """(self - true) offset distributions, structured vs unstructured chains: valid answers only
    (left), and every failure at the step the loop resamples from (right: clamped and fallbacks too)."""
    arms = (("structured", "tab:blue"), ("unstructured", "tab:orange"))
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for axis, scope, key in ((axes[0], "answered", "offsets"), (axes[1], "all", "offsets_all")):
        offsets = {arm: {int(k): v for k, v in summary.get(f"{arm}/{key}", {}).items()} for arm, _ in arms}
        keys = sorted(set().union(*offsets.values())) or [0]
        xs = list(range(min(keys), max(keys) + 1))
        width = 0.4
        for shift, (arm, color) in zip((-width / 2, width / 2), arms):
            total = sum(offsets[arm].values())
            exact, clean = summary.get(f"{arm}/{scope}/exact"), summary.get(f"{arm}/{scope}/clean_prefix")
            label = f"{arm} (n={total}" + (f", exact {exact:.0%}, clean prefix {clean:.0%})" if exact is not None else ")")
            axis.bar([x + shift for x in xs], [offsets[arm].get(x, 0) / max(total, 1) for x in xs], width,
                     label=label, color=color)
        axis.axvline(0, color="gray", linewidth=0.8, linestyle=":")
        axis.set_xticks(xs)
        axis.set_xlabel("self-localized step - true first error (<= 0: clean prefix)")
        axis.set_title("valid answers" if scope == "answered" else "as the loop resamples (clamped, fallbacks at 1)",
                       fontsize=9)
        axis.legend(fontsize=7)
    axes[0].set_ylabel("fraction of failures")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_comparison(summaries: dict[str, dict], path: Path, title: str = "") -> None:
    """Accuracy per method: at iteration 0, and after correction for variants S and A."""
    methods = list(summaries)
    figure, axis = plt.subplots(figsize=(max(4.8, 1.3 * len(methods) + 1.5), 3.4))
    width = 0.26
    for shift, key, label, color in ((-width, "accuracy/initial", "iteration 0", "tab:gray"),
                                     (0.0, "accuracy/S", "final, S", "tab:blue"),
                                     (width, "accuracy/A", "final, A", "tab:green")):
        values = [100 * (summaries[m].get(key) or 0.0) for m in methods]
        bars = axis.bar([i + shift for i in range(len(methods))], values, width, label=label, color=color)
        axis.bar_label(bars, fmt="%.0f", fontsize=7)
    axis.set_xticks(range(len(methods)), methods, fontsize=8)
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 105)
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
