"""Why a comparison came out as it did: where the policy's chains fail, and how much of each
method's budget carries a learning signal, read back from the runs' rollouts.jsonl.

    python -m resetrl.compare.diagnose runs/compare-trap        # writes diagnose.md and diagnose.json
    resetrl eval --preset trap --out step0.json && python -m resetrl.compare.diagnose runs/compare-trap step0.json

Per series, over every step and seed (the step checker re-run on every trained chain):
- fresh chains (every chain sampled from the prompt alone, parents and unused draws included): accuracy; share of failures whose first error is the last thought (the trap of the
  `trap` preset); the rate at which a chain that reaches the last thought with a clean prefix gets it
  right (the *fix rate at the trap*);
- reset groups: continuation accuracy (the fix rate from the reset point), split by whether the reset
  step is the true first error; the share of reset groups with a mixed outcome (non-zero variance);
- held-out chains at the end, greedy and sampled (each run's eval.json; extra eval.json files as
  more columns, e.g. the model before RL): the share reaching the last thought with a clean prefix,
  and the share of those right at it; with `phrasings` (the phrased trap chain), the entropy of the
  connectives the sampled chains open their thoughts with, per position, averaged;
- all trained groups: the share with non-zero reward variance (the others carry no gradient), the
  trained sequences with a non-zero advantage per prompt, and which thoughts the update weighs: the
  share of sum |A| that falls on the last thought when each sequence spreads its weight evenly over
  its trained thoughts (seq-mean-token-mean, thoughts taken as equally long).
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

from resetrl.config import Config
from resetrl.evaluation import test_problems
from resetrl.methods import METHODS
from resetrl.metrics import read_jsonl
from resetrl.tasks import create_task
from resetrl.tasks.trap_chain import connective_of


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _config(run_dir: Path) -> Config:
    import yaml

    return Config.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))


def held_out_decomposition(config: Config, eval_path: Path) -> dict:
    """Held-out chains of an eval.json, split by the step checker: reaching the last thought clean,
    and right at it given a clean prefix; greedy chains, and the sampled ones where it holds them."""
    task = create_task(config.task.name, **config.task.options)
    problems = {p.id: p for p in test_problems(task, config)}
    records = json.loads(eval_path.read_text())["records"]
    last = max(len(p.meta.get("program", [])) for p in problems.values())

    def split(chains: list[tuple[str, list[str]]]) -> tuple[float | None, float | None]:
        first_errors = [task.first_error(problems[problem_id], thoughts) for problem_id, thoughts in chains]
        clean = [f in (0, last) for f in first_errors]
        return _mean(clean), _mean(f == 0 for f, c in zip(first_errors, clean) if c)

    greedy = split([(r["problem_id"], r["thoughts"]) for r in records])
    # eval.json files written before sampled chains were recorded have no sampled figure.
    sampled_chains = [t for r in records for t in r.get("sampled_thoughts", [])]
    sampled = split([(r["problem_id"], t) for r in records for t in r.get("sampled_thoughts", [])])
    figures = {"eval_reach_trap_clean": greedy[0], "eval_right_at_trap": greedy[1],
               "eval_sampled_reach_trap_clean": sampled[0], "eval_sampled_right_at_trap": sampled[1]}
    phrasings = config.task.options.get("phrasings", 0)
    if phrasings:  # the phrased trap chain: is the reward-irrelevant entropy there when sampled?
        entropy = connective_entropy(sampled_chains, last)
        figures["eval_sampled_connective_entropy"] = entropy
        figures["eval_sampled_connective_entropy_over_log_s"] = (
            entropy / math.log(phrasings) if entropy is not None and phrasings > 1 else None)
    return figures


def connective_entropy(chains: list[list[str]], positions: int) -> float | None:
    """Entropy (nats) of the connective a thought opens with, at each thought position 1..`positions`
    over the chains that reach it, averaged over positions: the phrasing entropy the model samples."""
    per_position = []
    for position in range(positions):
        counts = Counter(connective_of(chain[position]) for chain in chains if len(chain) > position)
        total = sum(counts.values())
        if total:
            per_position.append(-sum(n / total * math.log(n / total) for n in counts.values()))
    return _mean(per_position)


def diagnose_run(run_dir: Path) -> dict:
    config = _config(run_dir)
    task = create_task(config.task.name, **config.task.options)
    problems = {p.id: p for p in task.problems("train", config.task.train_size, config.task.seed)}
    rows = read_jsonl(run_dir / "rollouts.jsonl")
    for row in rows:  # (recorded by the scorer; a run from before that has it on parents only)
        if row.get("first_error") is None:
            row["first_error"] = task.first_error(problems[row["problem_id"]], row["thoughts"])
    trained = [r for r in rows if r["kind"] in ("fresh", "reset")]
    # Every chain sampled from the prompt alone (the parent and unused draws too: leaving out the
    # parent, a failure, would bias the reset methods' figures upwards).
    fresh = [r for r in rows if r["kind"] in ("fresh", "parent", "unused")]
    last = max((len(p.meta.get("program", [])) for p in problems.values()), default=0)
    # A fresh chain reaches the last thought clean when its first error is the last thought or none.
    at_trap = [r for r in fresh if r["first_error"] in (0, last)]
    failed = [r for r in fresh if r["reward"] < 1]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in trained:
        groups[(row["step"], row["group_id"])].append(row)
    reset_groups = [g for g in groups.values() if all(r["kind"] == "reset" for r in g)]
    parents = {(r["step"], r["problem_id"]): r for r in rows if r["kind"] == "parent"}
    exact, other = [], []
    for group in reset_groups:
        parent = parents.get((group[0]["step"], group[0]["problem_id"]))
        hit = parent is not None and parent.get("first_error") == group[0]["reset_step"]
        (exact if hit else other).extend(r["reward"] for r in group)
    mixed = [len({r["reward"] for r in g}) > 1 for g in groups.values()]
    metrics = [m for m in read_jsonl(run_dir / "metrics.jsonl") if "update/active_sequences" in m]
    prompts = config.train.prompts_per_step
    # Weight of the update on the last thought under seq-mean-token-mean: a sequence weighs |A|,
    # spread over its trained thoughts (taken as equally long).
    on_last, total = 0.0, 0.0
    # GRPO-mask trains each fresh chain from the decision thought on (its last thought if shorter).
    decision = getattr(task, "decision_step", None) if METHODS.get(config.method).train_from_decision else None
    for row in trained:
        skipped = row["reset_step"] - 1 if row["kind"] == "reset" and row["suffix_start"] else 0
        if decision and row["suffix_start"]:
            skipped = min(decision, len(row["thoughts"])) - 1
        n_trained = len(row["thoughts"]) - skipped
        if row["advantage"] and n_trained > 0:
            total += abs(row["advantage"])
            on_last += abs(row["advantage"]) / n_trained if len(row["thoughts"]) == last else 0.0
    steps = len({r["step"] for r in trained}) or 1
    return {
        "fresh_accuracy": _mean(r["reward"] for r in fresh),
        "failures_at_last_thought": _mean(r["first_error"] == last for r in failed),
        "fix_rate_at_trap": _mean(r["reward"] for r in at_trap),
        "reach_trap_clean": _mean(r["first_error"] in (0, last) for r in fresh),
        "reset_accuracy_at_first_error": _mean(exact),
        "reset_accuracy_elsewhere": _mean(other),
        "reset_groups_mixed": _mean(len({r["reward"] for r in g}) > 1 for g in reset_groups),
        "groups_mixed": _mean(mixed),
        "active_sequences_per_prompt": _mean(m["update/active_sequences"] / prompts for m in metrics),
        "grad_norm": _mean(m["update/grad_norm"] for m in metrics),
        "weight_on_last_thought": on_last / total if total else None,
        "last_thought_weight_per_prompt": on_last / (steps * prompts),
        **held_out_decomposition(config, run_dir / "eval.json"),
    }


LABELS = {
    "fresh_accuracy": "fresh accuracy",
    "reach_trap_clean": "fresh chains reaching the last thought clean",
    "fix_rate_at_trap": "of those, right at the last thought (fix rate at the trap)",
    "failures_at_last_thought": "failed fresh chains whose first error is the last thought",
    "reset_accuracy_at_first_error": "reset continuations right, reset at the true first error",
    "reset_accuracy_elsewhere": "reset continuations right, reset elsewhere",
    "reset_groups_mixed": "reset groups with a mixed outcome",
    "groups_mixed": "all trained groups with a mixed outcome",
    "active_sequences_per_prompt": "trained sequences with a non-zero advantage per prompt",
    "eval_reach_trap_clean": "held-out greedy chains reaching the last thought clean (end of training)",
    "eval_right_at_trap": "of those, right at the last thought",
    "eval_sampled_reach_trap_clean": "held-out sampled chains (eval.temperature) reaching the last thought clean",
    "eval_sampled_right_at_trap": "of those, right at the last thought",
    "eval_sampled_connective_entropy": "held-out sampled chains: entropy (nats) of a thought's connective, mean over positions (phrasings only)",
    "eval_sampled_connective_entropy_over_log_s": "the same over log S (the build's specification: at least 0.9)",
    "grad_norm": "gradient norm before clipping",
    "weight_on_last_thought": "share of the update's weight on the last thought (sum of abs(A) x its share of trained thoughts)",
    "last_thought_weight_per_prompt": "update weight on the last thought per prompt (sum of abs(A) / trained thoughts)",
}


def diagnose(compare_dir: Path, extra_evals: list[Path] = ()) -> dict:
    runs = sorted(p for p in (compare_dir / "runs").iterdir() if (p / "rollouts.jsonl").exists())
    by_series: dict[str, list[dict]] = defaultdict(list)
    for run_dir in runs:
        by_series[run_dir.name.rsplit("-seed", 1)[0]].append(diagnose_run(run_dir))
    table = {series: {key: _mean(v[key] for v in values if v.get(key) is not None) for key in LABELS}
             for series, values in by_series.items()}
    for path in extra_evals:  # e.g. the model before RL, evaluated greedily on the same problems
        table[path.name] = {key: None for key in LABELS} | held_out_decomposition(_config(runs[0]), path)
    names = list(table)
    lines = ["# Diagnosis: where chains fail and what carries signal (mean over seeds and steps)", "",
             "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, label in LABELS.items():
        cells = ["-" if table[n][key] is None else f"{table[n][key]:.3f}" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    markdown = "\n".join(lines) + "\n"
    (compare_dir / "diagnose.md").write_text(markdown)
    (compare_dir / "diagnose.json").write_text(json.dumps({"series": table, "runs": {k: len(v) for k, v in by_series.items()}}, indent=1))
    return {"table": table, "markdown": markdown}


if __name__ == "__main__":
    print(diagnose(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])["markdown"])
