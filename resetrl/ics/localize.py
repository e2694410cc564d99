"""Self-localization accuracy (Paper B's central measurement; docs/method.md section 3): on the model's
own failed chains, where does it place its first error, against the task's true first error?

Both arms use the loop's own localizers: thought-structured chains are asked for a step number
(Thought-ICS's localizer, the trainer's prompt and parser); unstructured chains are asked for a quote,
which maps to the text segment that holds it (`resetrl.ics.unstructured`). Figures per arm:
exact, within one step, clean prefix (at or before the true error), the distribution of
(self - true) offsets, and the rates of a uniformly random guess for reference.

"answered" counts only valid answers: a boxed step number in 1..N or a "Step k" mention, or a quote
found in the chain. "all" counts every failure at the step the loop would use: an out-of-range boxed
number clamped to 1..N, and the fallbacks (no error, unparsed, quote not found) at e = 1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from resetrl.ics.engine import Attempt, ChainEngine, ICSSettings
from resetrl.ics.methods import ThoughtICS, TokenICS
from resetrl.ics.unstructured import sample_unstructured
from resetrl.localization import localization_scores
from resetrl.resets import ResetPoint
from resetrl.tasks.base import Problem

ANSWERED = ("boxed", "step_mention", "quote:boxed", "quote:quoted")


@dataclass
class LocalizationCase:
    problem_id: str
    format: str  # "structured" | "unstructured"
    steps: list[str]
    true_step: int
    self_step: int  # the step the loop would resample from (fallbacks included)
    status: str
    answer_text: str | None
    quote: str | None = None

    @property
    def answered(self) -> bool:
        return self.status in ANSWERED


def failed_chains(problems: list[Problem], chains: list[list[Attempt]]) -> tuple[list[Problem], list[Attempt]]:
    """The wrong chains whose true first error the task knows."""
    kept = [(p, a) for p, attempts in zip(problems, chains) for a in attempts if not a.correct and a.first_error]
    return [p for p, _ in kept], [a for _, a in kept]


def measure_localization(engine: ChainEngine, settings: ICSSettings, problems: list[Problem],
                         samples: int = 1) -> tuple[dict, list[LocalizationCase]]:
    """Sample `samples` chains per problem in each format, localize every failure, score the steps."""
    sampling = settings.sampling(settings.temperature)
    prompts = [engine.prompt_ids(problem) for problem in problems]
    arms = {
        "structured": (engine.sample_chains(problems, prompts, samples, sampling), ThoughtICS(engine, settings)),
        "unstructured": (sample_unstructured(engine, problems, samples, sampling), TokenICS(engine, settings)),
    }
    summary: dict = {"problems": len(problems), "samples_per_problem": samples, "level": settings.level}
    cases: list[LocalizationCase] = []
    for arm, (chains, localizer) in arms.items():
        summary[f"{arm}/chains"] = sum(len(c) for c in chains)
        summary[f"{arm}/accuracy"] = sum(a.correct for c in chains for a in c) / max(1, sum(len(c) for c in chains))
        failed_problems, failed = failed_chains(problems, chains)
        located: list[ResetPoint] = localizer.locate(failed_problems, failed) if failed else []
        arm_cases = [LocalizationCase(p.id, arm, a.steps, a.first_error, where.step, where.source, where.text,
                                      where.quote) for p, a, where in zip(failed_problems, failed, located)]
        cases += arm_cases
        summary.update(arm_summary(arm, arm_cases))
    return summary, cases


def arm_summary(arm: str, cases: list[LocalizationCase]) -> dict:
    answered = [c for c in cases if c.answered]
    result: dict = {f"{arm}/failed": len(cases), f"{arm}/answered": len(answered)}
    for status, count in sorted(Counter(c.status for c in cases).items()):
        result[f"{arm}/status/{status}"] = count
    for scope, chosen in (("answered", answered), ("all", cases)):
        scores = localization_scores([c.self_step for c in chosen], [c.true_step for c in chosen])
        result.update({f"{arm}/{scope}/{key}": value for key, value in scores.items() if key != "n"})
    # A uniform guess over 1..N: exact 1/N, clean prefix true/N.
    chance = localization_scores([c.self_step for c in cases], [c.true_step for c in cases], [len(c.steps) for c in cases])
    result[f"{arm}/random/exact"] = chance["chance/exact"]
    result[f"{arm}/random/clean_prefix"] = chance["chance/clean_prefix"]
    result[f"{arm}/offsets"] = dict(sorted(Counter(c.self_step - c.true_step for c in answered).items()))
    result[f"{arm}/offsets_all"] = dict(sorted(Counter(c.self_step - c.true_step for c in cases).items()))
    result[f"{arm}/mean_steps"] = _mean(len(c.steps) for c in cases)
    return result


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def case_record(case: LocalizationCase) -> dict:
    return {**asdict(case), "offset": case.self_step - case.true_step, "answered": case.answered}
