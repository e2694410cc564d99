"""Reading run folders back and summarizing them over seeds.

Generated tokens follow the core trainer's accounting (per step in metrics.jsonl):
- `tokens/fresh`: every chain sampled from the prompt alone, i.e. the trained fresh group, the
  parent (sampled, used to choose the reset, never trained) and the unused draws made while looking
  for a failure;
- `tokens/reset`: the continuations' new tokens only (the reset prefix is re-entered, not generated);
- `tokens/localization`: the tokens SRPO's localization answers generated (its prompt is not counted);
- `tokens/correction`: SCoRe's corrections and Critique-GRPO's refinements, kept or not;
- `tokens/tree`: SPO-Tree's segments, each counted once however many leaves share it.
`tokens/total` is their sum: what a method paid in sampling for its 8 trained rollouts per prompt.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from resetrl.groups import TOKEN_KINDS
from resetrl.metrics import read_jsonl

LOCALIZATION_KEYS = ("exact", "within_one", "clean_prefix")
# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (beyond: the normal's 1.96).
T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student's t; 0 for one value)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = T_975[n - 2] if n - 1 <= len(T_975) else 1.96
    return mean, t * std / math.sqrt(n)


@dataclass
class RunResult:
    """One run folder, reduced to what the comparison needs."""

    series: str
    method: str
    seed: int
    eval_steps: list[int]
    accuracy: list[float]
    tokens_at_eval: list[dict[str, float]]  # cumulative generated tokens by kind at each eval step
    localization: dict[str, float] = field(default_factory=dict)  # over all parents of the run
    parents: int = 0
    wall_seconds: float | None = None
    greedy: list[float] = field(default_factory=list)  # greedy pass@1 when eval/accuracy is sampled

    @property
    def final_accuracy(self) -> float:
        return self.accuracy[-1]

    @property
    def total_tokens(self) -> dict[str, float]:
        return self.tokens_at_eval[-1]


def read_run(run_dir: Path, series: str, method: str, seed: int) -> RunResult:
    rows = read_jsonl(run_dir / "metrics.jsonl")
    if not rows or "eval/accuracy" not in rows[0]:
        raise ValueError(f"{run_dir}: no metrics (did the run start?)")
    cumulative = {kind: 0.0 for kind in TOKEN_KINDS}
    steps, accuracy, tokens, greedy = [], [], [], []
    weighted = {key: 0.0 for key in LOCALIZATION_KEYS}
    parents = 0
    for row in rows:
        for kind in TOKEN_KINDS:
            cumulative[kind] += row.get(f"tokens/{kind}", 0.0)
        # localization/* is a mean over the step's parents; weight it by their number (reset groups).
        if "localization/exact" in row:
            count = int(row.get("groups/reset", 0))
            parents += count
            for key in LOCALIZATION_KEYS:
                weighted[key] += row[f"localization/{key}"] * count
        if "eval/accuracy" in row:
            steps.append(row["step"])
            accuracy.append(row["eval/accuracy"])
            if "eval/accuracy_greedy" in row:
                greedy.append(row["eval/accuracy_greedy"])
            tokens.append({**cumulative, "total": sum(cumulative.values())})
    localization = {key: weighted[key] / parents for key in LOCALIZATION_KEYS} if parents else {}
    wall = run_dir / "wall_seconds.txt"
    return RunResult(series, method, seed, steps, accuracy, tokens, localization, parents,
                     float(wall.read_text()) if wall.exists() else None, greedy)


def detectable_difference(differences: list[float], power_z: float = 0.8416) -> float | None:
    """Smallest true mean difference a paired two-sided 5% test over these seeds detects with 80%
    power: (t_0.975 + z_0.8) * sd / sqrt(n), with the observed sd of the paired differences."""
    n = len(differences)
    if n < 2:
        return None
    mean = sum(differences) / n
    std = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    t = T_975[n - 2] if n - 1 <= len(T_975) else 1.96
    return (t + power_z) * std / math.sqrt(n)


def reference_series(name: str, method: str, reference: str) -> str:
    """The series a series is paired with: the reference method in the same arm (`oracle+sgd` ->
    `grpo+sgd`; a series named after its method alone -> the reference)."""
    return reference + name[len(method):] if name.startswith(method) else reference


def tokens_to_reach(target: float, accuracy: list[float], tokens: list[float]) -> float | None:
    """Generated tokens at which a curve first reaches `target`, interpolated linearly between
    eval points; None when it never does."""
    for index, value in enumerate(accuracy):
        if value >= target:
            if index == 0:
                return tokens[0]
            previous, before = accuracy[index - 1], tokens[index - 1]
            share = (target - previous) / (value - previous) if value > previous else 1.0
            return before + share * (tokens[index] - before)
    return None


def summarize(results: list[RunResult], reference: str = "grpo") -> dict:
    """Per series: accuracy mean and CI at each eval step, tokens, tokens to reach the reference's
    final mean accuracy, paired differences to the reference (final and at each eval step, with the
    smallest detectable difference), localization. Each series is paired with the reference method
    of its own arm (`reference_series`); an arm that runs the reference method alone is paired with
    the reference itself."""
    series_names = list(dict.fromkeys(r.series for r in results))
    by_series = {name: sorted([r for r in results if r.series == name], key=lambda r: r.seed) for name in series_names}
    reference_runs = by_series.get(reference, [])
    target = mean_ci([r.final_accuracy for r in reference_runs])[0] if reference_runs else None
    summary: dict = {"reference": reference if reference_runs else None, "target_accuracy": target,
                     "reference_method": reference, "series": {}}
    for name, runs in by_series.items():
        own_reference = reference_series(name, runs[0].method, reference)
        arm = name[len(runs[0].method):]
        if own_reference == name and arm and not any(other != name and other.endswith(arm) for other in by_series):
            own_reference = reference  # an arm of the reference method alone (GRPO with groups of 4): a variant of it
        reference_runs = by_series.get(own_reference, [])
        target = mean_ci([r.final_accuracy for r in reference_runs])[0] if reference_runs else None
        steps = runs[0].eval_steps
        if any(r.eval_steps != steps for r in runs):
            raise ValueError(f"{name}: runs were evaluated at different steps; were they run with different configs?")
        curve = [mean_ci([r.accuracy[i] for r in runs]) for i in range(len(steps))]
        # (.get: a RunResult built by hand may leave out the kinds its methods never generate)
        tokens_curve = {kind: [mean_ci([r.tokens_at_eval[i].get(kind, 0.0) for r in runs])[0] for i in range(len(steps))]
                        for kind in (*TOKEN_KINDS, "total")}
        entry = {
            "method": runs[0].method,
            "seeds": [r.seed for r in runs],
            "eval_steps": steps,
            "accuracy_mean": [m for m, _ in curve],
            "accuracy_ci95": [h for _, h in curve],
            "accuracy_per_seed": {r.seed: r.accuracy for r in runs},
            "tokens_mean": tokens_curve,  # cumulative, at each eval step
            "final_accuracy": curve[-1][0],
            "final_accuracy_ci95": curve[-1][1],
            "gain": mean_ci([r.final_accuracy - r.accuracy[0] for r in runs]),
            "tokens_total": {kind: mean_ci([r.total_tokens.get(kind, 0.0) for r in runs]) for kind in (*TOKEN_KINDS, "total")},
            "wall_seconds": mean_ci([r.wall_seconds for r in runs if r.wall_seconds is not None]),
        }
        if all(len(r.greedy) == len(steps) for r in runs):
            entry["greedy_mean"] = [mean_ci([r.greedy[i] for r in runs])[0] for i in range(len(steps))]
            entry["greedy_final"] = mean_ci([r.greedy[-1] for r in runs])
        if target is not None:
            entry["reference"], entry["target_accuracy"] = own_reference, target
            entry["tokens_to_reference_final"] = tokens_to_reach(target, entry["accuracy_mean"], tokens_curve["total"])
            per_seed = [tokens_to_reach(target, r.accuracy, [t["total"] for t in r.tokens_at_eval]) for r in runs]
            entry["seeds_reaching_reference_final"] = sum(t is not None for t in per_seed)
            paired = {r.seed: r.final_accuracy for r in reference_runs}
            differences = [r.final_accuracy - paired[r.seed] for r in runs if r.seed in paired]
            entry["final_minus_reference"] = mean_ci(differences) if differences else None
            entry["detectable_difference"] = detectable_difference(differences)
            by_seed = {r.seed: r.accuracy for r in reference_runs}
            entry["minus_reference_by_step"] = [
                mean_ci([r.accuracy[i] - by_seed[r.seed][i] for r in runs if r.seed in by_seed])
                for i in range(len(steps))] if all(len(a) == len(steps) for a in by_seed.values()) else None
        if any(r.localization for r in runs):
            entry["localization"] = {key: mean_ci([r.localization[key] for r in runs if r.localization])
                                     for key in LOCALIZATION_KEYS}
            entry["parents"] = sum(r.parents for r in runs)
        summary["series"][name] = entry
    return summary


def load_results(folders: dict, runs: list) -> list[RunResult]:
    """RunResults for (spec -> folder) pairs produced by `grid.run_grid`."""
    return [read_run(folders[spec], spec.series, spec.method, spec.seed) for spec in runs]


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))
