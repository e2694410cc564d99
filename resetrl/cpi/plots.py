"""Figures of the CPI lab (matplotlib, Agg backend: files only, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from resetrl.cpi.fits import SAMPLED_FIELD, geometric_mean  # noqa: E402

COLORS = {"random": "tab:red", "oracle": "tab:blue", "noisy-oracle": "tab:green"}
LABELS = {
    "random": "random resets (CPI-RR)",
    "oracle": "oracle (CPI-CARO)",
    "noisy-oracle": "noisy oracle (SRPO)",
}


def _sampled(points: list[dict], quantity: str) -> np.ndarray:
    """Per point, the sampled value over seeds: geometric mean of rollouts, mean of improvement."""
    if quantity == "rollouts":
        return np.array([geometric_mean(pt[SAMPLED_FIELD[quantity]]) for pt in points])
    return np.array([np.mean(pt[SAMPLED_FIELD[quantity]]) for pt in points])


def _save(figure: plt.Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_measurement(results: dict, path: Path) -> None:
    """2 x 2 figure: samples and improvement against p (log-log, fitted slopes in the legend), and
    against the noisy oracle's accuracy q. Markers: sampled (geometric mean over seeds for rollouts,
    mean for improvement); lines: exact."""
    figure, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    q_accuracy = results["measure"]["noisy_accuracy"]
    for quantity, axis in (("rollouts", axes[0, 0]), ("improvement", axes[0, 1])):
        for reset in COLORS:
            points = [pt for pt in results["p_sweep"] if pt["reset"] == reset]
            p = np.array([pt["p"] for pt in points])
            exact = np.array([pt["exact"][quantity] for pt in points])
            sampled = _sampled(points, quantity)
            fit = results["slopes"][f"{quantity}/{reset}"]
            label = LABELS[reset] + (f", q={q_accuracy:g}" if reset == "noisy-oracle" else "")
            label += f": slope {fit['slope']:.2f} ± {fit['standard_error']:.2f}"
            axis.plot(p, exact, "-", color=COLORS[reset], alpha=0.5)
            axis.plot(p, sampled, "o", color=COLORS[reset], label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(p, [f"{value:g}" for value in p])
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xlabel("p = P(a chain reaches an improvable state)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8, loc="best")
    axes[0, 0].set_ylabel("reset rollouts to certify an improvement")
    axes[0, 0].set_title("samples per iteration (lines: exact)")
    axes[0, 1].set_ylabel("J(pi') - J(pi)")
    axes[0, 1].set_title("improvement per iteration (lines: exact)")

    q_points = results["q_sweep"]
    q = np.array([pt["q"] for pt in q_points])
    p_fixed = results["measure"]["q_sweep_p"]
    for quantity, axis, ylabel in (
        ("rollouts", axes[1, 0], "reset rollouts to certify (log)"),
        ("improvement", axes[1, 1], "J(pi') - J(pi) (linear: it is linear in q)"),
    ):
        exact = np.array([pt["exact"][quantity] for pt in q_points])
        sampled = _sampled(q_points, quantity)
        axis.plot(q, exact, "-", color=COLORS["noisy-oracle"], alpha=0.5, label="exact")
        average = "geometric mean" if quantity == "rollouts" else "mean"
        axis.plot(q, sampled, "o", color=COLORS["noisy-oracle"], label=f"sampled ({average} over seeds)")
        if quantity == "rollouts":
            axis.set_yscale("log")
        axis.set_xlabel("q = P(the oracle picks an improvable state)")
        axis.set_ylabel(ylabel)
        axis.set_title(f"noisy oracle at p = {p_fixed:g} (q=0: random, q=1: oracle)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    _save(figure, path)


def plot_runs(results: dict, path: Path) -> None:
    """J(pi) against cumulative reset rollouts, one line per reset distribution."""
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for reset, steps in results["runs"].items():
        rollouts = np.cumsum([0] + [step["rollouts"] for step in steps])
        objective = [steps[0]["objective"]] + [step["next_objective"] for step in steps]
        axis.plot(
            np.maximum(rollouts, 1), objective, "-", color=COLORS.get(reset), label=LABELS.get(reset, reset)
        )
    axis.axhline(results["optimal_objective"], color="gray", linestyle=":", label="optimal J")
    axis.set_xscale("log")
    axis.set_xlabel("reset rollouts (cumulative)")
    axis.set_ylabel("J(pi) = P(correct answer)")
    axis.set_title(f"CPI on the pivot chain, p = {results['p']:g}")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    _save(figure, path)
