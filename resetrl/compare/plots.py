"""Plots of a comparison: accuracy against generated tokens and against steps (mean line, 95% CI
band over seeds), and the localization sweep (final accuracy against localization accuracy)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"grpo": "tab:gray", "rrpo": "tab:blue", "srpo": "tab:red", "oracle": "tab:green"}


LINESTYLES = ["-", "--", ":", "-."]


def _color(name: str, index: int) -> str:
    return COLORS.get(name.split("+", 1)[0], f"C{index % 10}")


def _linestyle(name: str, arms: list[str]) -> str:
    """One line style per arm (the part of a series name after `+`)."""
    arm = name.split("+", 1)[1] if "+" in name else ""
    return LINESTYLES[arms.index(arm) % len(LINESTYLES)] if arm in arms else "-"


def plot_curves(summary: dict, path: Path, title: str = "") -> Path:
    figure, (by_tokens, by_steps) = plt.subplots(1, 2, figsize=(11, 4.2))
    arms = list(dict.fromkeys(name.split("+", 1)[1] if "+" in name else "" for name in summary["series"]))
    for index, (name, entry) in enumerate(summary["series"].items()):
        mean, half = entry["accuracy_mean"], entry["accuracy_ci95"]
        low = [m - h for m, h in zip(mean, half)]
        high = [m + h for m, h in zip(mean, half)]
        color = _color(name, index)
        tokens = [t / 1000 for t in entry["tokens_mean"]["total"]]
        for axis, x in ((by_tokens, tokens), (by_steps, entry["eval_steps"])):
            axis.plot(x, mean, marker="o", markersize=3, color=color, label=name, linestyle=_linestyle(name, arms))
            axis.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
    if summary.get("target_accuracy") is not None and len(arms) == 1:
        for axis in (by_tokens, by_steps):
            axis.axhline(summary["target_accuracy"], color="black", linestyle=":", linewidth=0.8,
                         label=f"{summary['reference']} final")
    by_tokens.set_xlabel("generated tokens per run (thousands; fresh + reset + localization)")
    by_steps.set_xlabel("RL step")
    for axis in (by_tokens, by_steps):
        axis.set_ylabel("held-out accuracy (eval/accuracy)")
        axis.grid(alpha=0.3)
    by_steps.legend(fontsize=8)
    figure.suptitle(title or "accuracy (mean and 95% CI over seeds)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_sweep(points: list[dict], path: Path, title: str = "") -> Path:
    """points: {label, kind ('srpo' | 'rrpo' | 'oracle'), localization, localization_ci,
    accuracy, accuracy_ci}; RRPO and oracle are the two ends (random and true first error)."""
    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    srpo = sorted([p for p in points if p["kind"] == "srpo"], key=lambda p: p["localization"])
    if srpo:
        axis.errorbar([p["localization"] for p in srpo], [p["accuracy"] for p in srpo],
                      xerr=[p["localization_ci"] for p in srpo], yerr=[p["accuracy_ci"] for p in srpo],
                      color=COLORS["srpo"], marker="o", capsize=3, label="srpo (micro models, noise levels)")
        for p in srpo:
            axis.annotate(p["label"], (p["localization"], p["accuracy"]), textcoords="offset points",
                          xytext=(4, 4), fontsize=7)
    for kind in ("rrpo", "oracle", "grpo"):
        for p in (p for p in points if p["kind"] == kind):
            if kind == "grpo":
                axis.axhspan(p["accuracy"] - p["accuracy_ci"], p["accuracy"] + p["accuracy_ci"],
                             color=COLORS["grpo"], alpha=0.15)
                axis.axhline(p["accuracy"], color=COLORS["grpo"], linestyle="--", label="grpo (no reset)")
                continue
            axis.errorbar([p["localization"]], [p["accuracy"]], xerr=[p["localization_ci"]], yerr=[p["accuracy_ci"]],
                          color=COLORS[kind], marker="s", markersize=7, capsize=3, linestyle="none",
                          label=f"{kind} ({'random step' if kind == 'rrpo' else 'true first error'})")
    axis.set_xlabel("reset step = checker's first error (exact rate, measured during training)")
    axis.set_ylabel("final held-out accuracy")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(title or "SRPO against localization accuracy (mean, 95% CI over seeds)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
