"""Measuring the micro model's two skills the way training uses them.

- Solving: greedy pass@1 on the test split (`resetrl.evaluation.evaluate`, the trainer's step-0 eval).
- Localizing: chains sampled at the rollout temperature on test problems; the failed ones are handed
  to SRPO's own reset strategy (`SelfLocalizedReset`: chat template, localization prompt, temperature
  0.3, `\\boxed{k}` parsing, fallback to e = 1), and the chosen step is compared with the step
  checker's first error, as the trainer logs it (exact, within one, clean prefix = at or before).
  The same figures for a uniformly random step (RRPO's choice) are given as the chance level.
"""

from __future__ import annotations

import random
from collections import Counter

from resetrl.chains import ChainJob, Scorer, sample_chains
from resetrl.evaluation import evaluate
from resetrl.resets import ResetContext, SelfLocalizedReset
from resetrl.runtime import Runtime


def chance_localization(first_errors: list[int], lengths: list[int]) -> dict[str, float]:
    """Expected exact / within-one / clean-prefix rates of a reset step uniform over 1..N."""
    exact, within_one, clean = [], [], []
    for first_error, n in zip(first_errors, lengths):
        exact.append(1 / n)
        within_one.append(sum(abs(step - first_error) <= 1 for step in range(1, n + 1)) / n)
        clean.append(min(first_error, n) / n)
    return {"exact": _mean(exact), "within_one": _mean(within_one), "clean_prefix": _mean(clean)}


def measure_skills(runtime: Runtime, problems, samples_per_problem: int = 4, seed: int = 0) -> dict:
    """Greedy accuracy, sampled accuracy, and self-localization accuracy on own failed chains."""
    config = runtime.config
    greedy, _ = evaluate(runtime, problems)
    scorer = Scorer(runtime.tokenizer, runtime.task)
    jobs = [ChainJob(p, runtime.prompt_ids(p), samples_per_problem) for p in problems]
    sampled, parents = [], []
    for problem, samples in zip(problems, sample_chains(runtime.backend, scorer, jobs, runtime.sampling, runtime.limits)):
        for sample in samples:
            sampled.append(sample.reward)
            if sample.reward < 1.0 and sample.thoughts:
                sample.first_error = runtime.task.first_error(problem, sample.thoughts)
                if sample.first_error:
                    parents.append(sample)
    context = ResetContext(runtime.backend, runtime.tokenizer, runtime.task, {p.id: p for p in problems},
                           random.Random(seed), config.rollout.localize_temperature, config.rollout.localize_max_tokens)
    choices = SelfLocalizedReset().choose(parents, context)
    # Clamped like the rollout does: the reset step must be a thought of the parent.
    steps = [min(max(c.step, 1), max(len(p.spans), 1)) for p, c in zip(parents, choices)]
    first_errors = [p.first_error for p in parents]
    lengths = [max(1, len(p.spans)) for p in parents]
    return {
        "accuracy": greedy["eval/accuracy"],
        "answered": greedy["eval/answered"],
        "sampled_accuracy": _mean(sampled),
        "test_problems": len(problems),
        "failed_chains": len(parents),
        "localization": {
            "exact": _mean([s == f for s, f in zip(steps, first_errors)]),
            "within_one": _mean([abs(s - f) <= 1 for s, f in zip(steps, first_errors)]),
            "clean_prefix": _mean([s <= f for s, f in zip(steps, first_errors)]),
            "parsed": dict(Counter(c.source.split(":", 1)[-1] for c in choices)),
            "mean_tokens": _mean([c.localization_tokens for c in choices]),
        },
        "chance_localization": chance_localization(first_errors, lengths),
        "first_error_distribution": dict(sorted(Counter(first_errors).items())),
    }


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0
