"""Thought-ICS and its baselines (Paper B), one registry entry each with one signature:
`run(engine, settings, problems, initial) -> list[Trajectory]`.

- thought-ics: self-localize the first erroneous thought, keep thoughts 1..e-1, resample the rest.
- regen: the same loop, resampling the whole chain from scratch (no localizer call).
- token-ics: the same loop on unstructured chains; the localizer quotes the erroneous text and
  generation resumes before it (from scratch when the quote is not in the chain).
- self-refine: the model sees its previous chain and the verdict and writes a revised chain.
- majority: as many fresh chains as the loop's budget (max_iters + 1), majority vote on the answers.
- oracle-ics (analysis, not in Paper B's list): Thought-ICS with the true first error as localizer.

The localizers reuse the trainer's localization prompt and parser (`resetrl.localization`). The level
adds one sentence to it: L1 shows the correct answer; L3 allows "no error" (`\\boxed{0}`), which ends
the loop with exit "disagree". At L1/L2 the prompt says the answer is wrong, so "no error" and an
unparseable answer fall back to resampling from scratch (e = 1), as SRPO does, and are counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Callable

from resetrl.tasks.answers import vote_key
from resetrl.ics.engine import Attempt, ChainEngine, ICSSettings
from resetrl.ics.loop import Corrector, Iteration, Located, Trajectory, correction_loop
from resetrl.ics.unstructured import find_quote, parse_quote, resume_unstructured, sample_unstructured, segment_at
from resetrl.ics.verification import make_verifier
from resetrl.localization import parse_localization
from resetrl.prompts import level_note, localization_prompt, quote_prompt, refine_question
from resetrl.registry import Registry
from resetrl.tasks.base import Problem

ICS_METHODS: Registry[Callable[..., list[Trajectory]]] = Registry("ICS method")


def thought_localization_prompt(problem: Problem, attempt: Attempt, level: str) -> str:
    return localization_prompt(problem.question, attempt.steps) + level_note(level, problem.answer, "0")


def located_from_parse(step: int, status: str, level: str, **details) -> Located:
    """Map a parsed localization to where the loop resumes (fallbacks named in the status)."""
    if status == "no_error":
        return Located(0, status, **details) if level == "L3" else Located(1, "no_error->1", **details)
    if status == "unparsed":
        return Located(1, "unparsed->1", **details)
    return Located(step, status, **details)


def initial_chains(engine: ChainEngine, settings: ICSSettings, problems: list[Problem]) -> list[Attempt]:
    """One thought chain per problem at the first-chain temperature (shared by the structured methods)."""
    prompts = [engine.prompt_ids(problem) for problem in problems]
    return [chains[0] for chains in engine.sample_chains(problems, prompts, 1, settings.sampling(settings.temperature))]


class StructuredCorrector(Corrector):
    def __init__(self, engine: ChainEngine, settings: ICSSettings):
        self.engine, self.settings = engine, settings

    def first(self, problems):
        return initial_chains(self.engine, self.settings, problems)


class ThoughtICS(StructuredCorrector):
    """Paper B's Thought-ICS: the model names the first erroneous thought of its own chain."""

    name = "thought-ics"

    def locate(self, problems, attempts):
        asked = [i for i, attempt in enumerate(attempts) if attempt.steps]
        texts = [thought_localization_prompt(problems[i], attempts[i], self.settings.level) for i in asked]
        answers = dict(zip(asked, self.engine.ask(texts, self.settings.localize_temperature,
                                                  self.settings.localize_max_tokens, "localize")))
        located = []
        for i, attempt in enumerate(attempts):
            if i not in answers:  # an empty chain: nothing to localize, start over
                located.append(Located(1, "empty->1"))
                continue
            text, tokens = answers[i]
            parsed = parse_localization(text, len(attempt.steps))
            located.append(located_from_parse(parsed.step, parsed.status, self.settings.level,
                                              text=text, tokens=tokens))
        return located

    def resume(self, problems, attempts, located):
        return self.engine.resume_chains(problems, attempts, [where.step for where in located],
                                         self.settings.sampling(self.settings.resample_temperature))


class OracleLocalizedICS(ThoughtICS):
    """Analysis: Thought-ICS with the task's true first erroneous thought as the localizer (an upper
    bound on what better self-localization could give; e = 1 where the task cannot tell)."""

    name = "oracle-ics"

    def locate(self, problems, attempts):
        return [Located(attempt.first_error, "oracle") if attempt.first_error else Located(1, "oracle:unknown->1")
                for attempt in attempts]


class FullRegeneration(StructuredCorrector):
    """Baseline: the same loop and verifier, every correction resamples the whole chain."""

    name = "regen"

    def locate(self, problems, attempts):
        return [Located(1, "regenerate") for _ in attempts]

    def resume(self, problems, attempts, located):
        return self.engine.resume_chains(problems, attempts, [1] * len(attempts),
                                         self.settings.sampling(self.settings.resample_temperature))


class SelfRefine(StructuredCorrector):
    """Baseline (Self-Refine): the model revises its whole answer, seeing the previous chain; the
    revision is asked for through the run's own chain prompt, so it is a thought chain too."""

    name = "self-refine"

    def locate(self, problems, attempts):
        return [Located(1, "refine") for _ in attempts]

    def resume(self, problems, attempts, located):
        prompts = [self.engine.prompt_ids(replace(problem, question=refine_question(problem.question, attempt.steps,
                                                                                    self.settings.level)))
                   for problem, attempt in zip(problems, attempts)]
        chains = self.engine.sample_chains(problems, prompts, 1,
                                           self.settings.sampling(self.settings.resample_temperature))
        revised = [attempts_of_problem[0] for attempts_of_problem in chains]
        for attempt in revised:
            attempt.resumed_from = 1
        return revised


class TokenICS(Corrector):
    """Baseline (Token-ICS): the loop on unstructured chains; the localizer quotes the first erroneous
    text; generation resumes right before the quote, or from scratch when the quote is not found."""

    name = "token-ics"

    def __init__(self, engine: ChainEngine, settings: ICSSettings):
        self.engine, self.settings = engine, settings

    def first(self, problems):
        chains = sample_unstructured(self.engine, problems, 1, self.settings.sampling(self.settings.temperature))
        return [attempts[0] for attempts in chains]

    def locate(self, problems, attempts):
        texts = [quote_prompt(p.question, a.text.strip()) + level_note(self.settings.level, p.answer, "NONE")
                 for p, a in zip(problems, attempts)]
        answers = self.engine.ask(texts, self.settings.localize_temperature, self.settings.localize_max_tokens,
                                  "localize")
        return [locate_quote(attempt, text, tokens, self.settings.level)
                for attempt, (text, tokens) in zip(attempts, answers)]

    def resume(self, problems, attempts, located):
        return resume_unstructured(self.engine, problems, attempts, [where.position or 0 for where in located],
                                   [where.step for where in located],
                                   self.settings.sampling(self.settings.resample_temperature))


def locate_quote(attempt: Attempt, answer: str, tokens: int, level: str) -> Located:
    """Read a quote answer: found -> resume before it (step = the segment holding it); not found,
    unparsed or (below L3) "no error" -> from scratch."""
    quote, status = parse_quote(answer)
    if quote is None:
        located = located_from_parse(0, status, level, text=answer, tokens=tokens)
        located.position = 0
        return located
    position = find_quote(attempt.text, quote)
    if position is None:
        return Located(1, "quote_not_found->1", answer, tokens, quote, 0)
    return Located(segment_at(attempt.text, position), f"quote:{status}", answer, tokens, quote, position)


def _loop(corrector_class: type) -> Callable[..., list[Trajectory]]:
    def run(engine: ChainEngine, settings: ICSSettings, problems: list[Problem],
            initial: list[Attempt] | None = None, progress: bool = True) -> list[Trajectory]:
        corrector = corrector_class(engine, settings)
        structured = isinstance(corrector, StructuredCorrector)
        return correction_loop(corrector, make_verifier(engine, settings), problems, settings.max_iters,
                               initial if structured else None, progress)

    run.__doc__ = corrector_class.__doc__
    return run


for _corrector in (ThoughtICS, OracleLocalizedICS, FullRegeneration, TokenICS, SelfRefine):
    ICS_METHODS.register(_corrector.name)(_loop(_corrector))


@ICS_METHODS.register("majority")
def majority_vote(engine: ChainEngine, settings: ICSSettings, problems: list[Problem],
                  initial: list[Attempt] | None = None, progress: bool = True) -> list[Trajectory]:
    """Baseline: `settings.majority_votes` thought chains per problem (the loop's budget; the first is
    the shared initial chain when given), the most frequent answer wins (ties: the earliest).
    Both variants return a chain with the winning answer; the exit is "vote"."""
    votes = settings.majority_votes
    prompts = [engine.prompt_ids(problem) for problem in problems]
    extra = votes - (1 if initial is not None else 0)
    drawn = engine.sample_chains(problems, prompts, extra, settings.sampling(settings.temperature)) if extra else [
        [] for _ in problems]
    trajectories = []
    for index, (problem, samples) in enumerate(zip(problems, drawn)):
        samples = ([initial[index]] if initial is not None else []) + samples
        keys = [vote_key(sample.answer) for sample in samples]
        counts = Counter(key for key in keys if key is not None)
        winner = samples[keys.index(counts.most_common(1)[0][0])] if counts else samples[0]
        trajectory = Trajectory(problem, "majority", [Iteration(sample) for sample in samples], exit="vote")
        trajectory.selected = {"S": winner, "A": winner}
        trajectories.append(trajectory)
    return trajectories


def run_method(name: str, engine: ChainEngine, settings: ICSSettings, problems: list[Problem],
               initial: list[Attempt] | None = None, progress: bool = True) -> list[Trajectory]:
    return ICS_METHODS.get(name)(engine, settings, problems, initial, progress)
