"""The CPI lab's reports: Markdown tables of a measurement, of full runs and of one problem's exact
quantities, and the files they are written to."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from resetrl.cpi.config import CPIProblemConfig
from resetrl.cpi.fits import geometric_mean
from resetrl.cpi.grid import RESETS, ExactPoint


def measure_report(results: dict) -> str:
    """The measurement as Markdown tables: per p, the slopes, the q sweep."""
    problem, measure = results["problem"], results["measure"]
    lines = [
        "# CPI with resets: samples to certify and improvement per iteration",
        "",
        f"Pivot chain H = {problem['horizon']}, |Y| = {problem['num_actions']}, "
        f"P(reward | sound) = {problem['success_sound']}, P(reward | derailed) = {problem['success_error']}, "
        f"tau = {problem['tau']}; confidence {results['certify']['confidence']}, margin {results['certify']['margin']}; "
        f"{measure['seeds']} seeds; noisy oracle q = {measure['noisy_accuracy']}. "
        "Sampled values are geometric means over seeds (improvement: arithmetic mean); [exact] is the "
        "dynamic-programming value. Runtime "
        f"{results['runtime_seconds']:.1f} s.",
        "",
        "## Samples needed to certify, per iteration",
        "",
        "| p | reset on improvable (random) | random | oracle | noisy oracle | random / oracle | ratio x p^2 |",
        "|---|---|---|---|---|---|---|",
    ]
    points = {(pt["reset"], pt["p"]): pt for pt in results["p_sweep"]}
    for p in measure["p_grid"]:
        rr, caro, noisy = (points[(reset, p)] for reset in RESETS)
        ratio = geometric_mean(rr["rollouts"]) / geometric_mean(caro["rollouts"])
        cells = [
            f"{geometric_mean(pt['rollouts']):.3g} [{pt['exact']['rollouts']:.3g}]"
            for pt in (rr, caro, noisy)
        ]
        lines.append(
            f"| {p:g} | {rr['exact']['improvable_mass']:.4g} | "
            + " | ".join(cells)
            + f" | {ratio:.3g} | {ratio * p * p:.3g} |"
        )
    lines += [
        "",
        "## Improvement J(pi') - J(pi) per iteration",
        "",
        "| p | random | oracle | noisy oracle |",
        "|---|---|---|---|",
    ]
    for p in measure["p_grid"]:
        cells = [
            f"{np.mean(points[(reset, p)]['improvements']):.3g} [{points[(reset, p)]['exact']['improvement']:.3g}]"
            for reset in RESETS
        ]
        lines.append(f"| {p:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Fitted log-log slopes against p",
        "",
        "| quantity | reset | slope +- s.e. | 95% interval | exact | Paper A |",
        "|---|---|---|---|---|---|",
    ]
    for name, fit in results["slopes"].items():
        quantity, reset = name.split("/")
        theory = "-" if fit["theory"] is None else f"{fit['theory']:g}"
        lines.append(
            f"| {quantity} | {reset} | {fit['slope']:.3f} +- {fit['standard_error']:.3f} | "
            f"[{fit['interval'][0]:.3f}, {fit['interval'][1]:.3f}] | {fit['exact_slope']:.3f} | {theory} |"
        )
    ablation = results["ablation_keep_ties"]
    lines += [
        "",
        f"Ablation (exact): random resets with a learner that leaves states with no positive advantage "
        f"unchanged need rollouts with slope {ablation['exact_rollouts_slope']:.3f} in p.",
        "",
        f"## Noisy oracle (SRPO's stand-in) at p = {measure['q_sweep_p']:g}",
        "",
        "| q | reset on improvable | samples to certify | improvement |",
        "|---|---|---|---|",
    ]
    for pt in results["q_sweep"]:
        lines.append(
            f"| {pt['q']:g} | {pt['exact']['improvable_mass']:.4g} | {geometric_mean(pt['rollouts']):.3g} "
            f"[{pt['exact']['rollouts']:.3g}] | {np.mean(pt['improvements']):.3g} [{pt['exact']['improvement']:.3g}] |"
        )
    if results["uncertified_streams"]:
        lines += ["", f"{results['uncertified_streams']} streams hit max_rollouts without certifying."]
    return "\n".join(lines) + "\n"


def run_report(results: dict) -> str:
    """Markdown summary of `run_comparison`: where each run got, at what cost, and why it stopped."""
    lines = [
        f"# CPI runs on the pivot chain, p = {results['p']:g}",
        "",
        f"Greedy policy estimated from {results['proposal_rollouts']} reset rollouts per iteration; "
        f"noisy oracle q = {results['oracle_accuracy']:g}; optimal J = {results['optimal_objective']:.4f}.",
        "",
        "| reset | iterations | J start | J end | reset rollouts | rollouts / iteration | stopped |",
        "|---|---|---|---|---|---|---|",
    ]
    for reset, steps in results["runs"].items():
        total = sum(step["rollouts"] for step in steps)
        stopped = steps[-1]["stopped"] or "iteration budget"
        lines.append(
            f"| {reset} | {len(steps)} | {steps[0]['objective']:.4f} | {steps[-1]['next_objective']:.4f} | "
            f"{total:.3g} | {total / len(steps):.3g} | {stopped} |"
        )
    return "\n".join(lines) + "\n"


def exact_report(problem: CPIProblemConfig, p: float, oracle_accuracy: float, rows: dict[str, ExactPoint]) -> str:
    """The exact quantities of one problem, one row per reset distribution."""
    lines = [
        f"pivot chain H={problem.horizon} |Y|={problem.num_actions} p={p:g} tau={problem.tau:g} "
        f"(noisy oracle q={oracle_accuracy:g}), first CPI iteration from the uniform policy",
        "",
        "| reset | reach p | reset on improvable | A_mu(pi_hat) | var(x) | rollouts to certify | improvement |",
        "|---|---|---|---|---|---|---|",
    ]
    for reset, point in rows.items():
        rollouts = "inf" if math.isinf(point.rollouts) else f"{point.rollouts:.4g}"
        lines.append(
            f"| {reset} | {point.reach:.4g} | {point.improvable_mass:.4g} | {point.advantage:.4g} | "
            f"{point.variance:.4g} | {rollouts} | {point.improvement:.4g} |"
        )
    return "\n".join(lines) + "\n"


def json_safe(value):
    """Strict JSON: infinite or NaN numbers (an uncertifiable point) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def write_results(out: Path, name: str, results: dict, report: str) -> None:
    """out/name.json (strict JSON) and out/name.md."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(json_safe(results), indent=1, allow_nan=False) + "\n")
    (out / f"{name}.md").write_text(report)
