"""Measuring the micro model's two skills the way training uses them.

- Solving: greedy pass@1 on the test split (`resetrl.evaluation.evaluate`, the trainer's step-0 eval).
- Localizing: chains sampled at the rollout temperature on test problems; the failed ones are handed
  to SRPO's own localizer (`resets.SelfLocalizer`: chat template, localization prompt, temperature
  0.3, `\\boxed{k}` parsing, fallback to e = 1), and the chosen step is compared with the step
  checker's first error, as the trainer logs it (exact, within one, clean prefix = at or before).
  The same figures for a uniformly random step (RRPO's choice) are given as the chance level.
"""

from __future__ import annotations

import random
from collections import Counter

from resetrl.chains import ChainJob, sample_chains
from resetrl.evaluation import evaluate
from resetrl.localization import localization_scores
from resetrl.resets import LOCALIZERS, clamp_step
from resetrl.rollout import locate_context
from resetrl.runtime import Runtime
from resetrl.scoring import Scorer


def measure_skills(runtime: Runtime, problems, samples_per_problem: int = 4, seed: int = 0) -> dict:
    """Greedy accuracy, sampled accuracy, and self-localization accuracy on own failed chains."""
    config = runtime.config
    greedy, _ = evaluate(runtime, problems)
    scorer = Scorer(runtime.tokenizer, runtime.task)
    jobs = [ChainJob(p, runtime.prompt_ids(p), samples_per_problem) for p in problems]
    sampled, parents = [], []
    for samples in sample_chains(runtime.backend, scorer, jobs, runtime.sampling, runtime.limits):
        for sample in samples:
            sampled.append(sample.reward)
            if sample.reward < 1.0 and sample.thoughts and sample.first_error:  # (the scorer's)
                parents.append(sample)
    by_id = {p.id: p for p in problems}
    choices = LOCALIZERS.get("self")().locate([by_id[p.problem_id] for p in parents], parents,
                                              locate_context(runtime, random.Random(seed))) if parents else []
    # Clamped like the rollout does: the reset step must be a thought of the parent.
    steps = [clamp_step(c.step, len(p.spans)) for p, c in zip(parents, choices)]
    first_errors = [p.first_error for p in parents]
    scores = localization_scores(steps, first_errors, [len(p.spans) for p in parents])
    rate = {key: 0.0 if value is None else value for key, value in scores.items()}  # 0 when no chain failed
    return {
        "accuracy": greedy["eval/accuracy"],
        "answered": greedy["eval/answered"],
        "sampled_accuracy": _mean(sampled),
        "test_problems": len(problems),
        "failed_chains": len(parents),
        "localization": {
            "exact": rate["exact"], "within_one": rate["within_one"], "clean_prefix": rate["clean_prefix"],
            "parsed": dict(Counter(c.source.split(":", 1)[-1] for c in choices)),
            "mean_tokens": _mean([c.tokens for c in choices]),
        },
        "chance_localization": {key: rate[f"chance/{key}"] for key in ("exact", "within_one", "clean_prefix")},
        "first_error_distribution": dict(sorted(Counter(first_errors).items())),
    }


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0
