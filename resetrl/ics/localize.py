"""Self-localization accuracy (Paper B's central measurement; method.md section 2): on the model's
own failed chains, where does it place its first error, against the task's true first error?

Both arms use the loop's own localizers: thought-structured chains are asked for a step number
(Thought-ICS's localizer, the trainer's prompt and parser); unstructured chains are asked for a quote,
which maps to the text segment that holds it (`resetrl.ics.unstructured`). Figures per arm:
exact, within one step, clean prefix (at or before the true error), the distribution of
(self - true) offsets, and the rates of a uniformly random guess for reference. "answered" counts only
usable answers; "all" also counts fallbacks at the step the loop would use (from scratch, e = 1).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from resetrl.ics.engine import Attempt, ChainEngine, ICSSettings
from resetrl.ics.loop import Located
from resetrl.ics.methods import ThoughtICS, TokenICS
from resetrl.ics.metrics import localization_scores
from resetrl.ics.unstructured import sample_unstructured
from resetrl.tasks.base import Problem

FALLBACKS = ("no_error->1", "unparsed->1", "quote_not_found->1", "empty->1")


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
        return self.status not in FALLBACKS


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
        located: list[Located] = localizer.locate(failed_problems, failed) if failed else []
        arm_cases = [LocalizationCase(p.id, arm, a.steps, a.first_error, where.step, where.status, where.text,
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
        scores = localization_scores([(c.self_step, c.true_step) for c in chosen])
        result.update({f"{arm}/{scope}/{key}": value for key, value in scores.items() if key != "n"})
    # A uniform guess over 1..N: exact 1/N, clean prefix true/N.
    lengths = [(max(1, len(c.steps)), c.true_step) for c in cases]
    result[f"{arm}/random/exact"] = _mean(1 / n for n, _ in lengths)
    result[f"{arm}/random/clean_prefix"] = _mean(min(true, n) / n for n, true in lengths)
    result[f"{arm}/offsets"] = dict(sorted(Counter(c.self_step - c.true_step for c in answered).items()))
    result[f"{arm}/mean_steps"] = _mean(len(c.steps) for c in cases)
    return result


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def case_record(case: LocalizationCase) -> dict:
    return {**asdict(case), "offset": case.self_step - case.true_step, "answered": case.answered}


def plot_offsets(summary: dict, path: Path, title: str = "") -> None:
    """Bar chart of the (self - true) offset distribution, structured vs unstructured chains."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = ("structured", "unstructured")
    offsets = {arm: {int(k): v for k, v in summary.get(f"{arm}/offsets", {}).items()} for arm in arms}
    keys = sorted(set().union(*offsets.values())) or [0]
    xs = list(range(min(keys), max(keys) + 1))
    figure, axis = plt.subplots(figsize=(6.4, 3.6))
    width = 0.4
    for shift, arm, color in ((-width / 2, "structured", "tab:blue"), (width / 2, "unstructured", "tab:orange")):
        total = max(1, sum(offsets[arm].values()))
        exact, clean = summary.get(f"{arm}/answered/exact"), summary.get(f"{arm}/answered/clean_prefix")
        label = (f"{arm} (n={sum(offsets[arm].values())}"
                 + (f", exact {exact:.0%}, clean prefix {clean:.0%}" if exact is not None else "") + ")")
        axis.bar([x + shift for x in xs], [offsets[arm].get(x, 0) / total for x in xs], width, label=label,
                 color=color)
    axis.axvline(0, color="gray", linewidth=0.8, linestyle=":")
    axis.set_xticks(xs)
    axis.set_xlabel("self-localized step - true first error (left of 0: clean prefix)")
    axis.set_ylabel("fraction of answered failures")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
