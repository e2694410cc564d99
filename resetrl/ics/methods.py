"""Thought-ICS and its baselines (Paper B), one registry entry each with one signature:
`run(engine, settings, problems, initial) -> list[Trajectory]`.

- thought-ics: self-localize the first erroneous thought, keep thoughts 1..e-1, resample the rest.
- regen: the same loop, resampling the whole chain from scratch (no localizer call).
- token-ics: the same loop on unstructured chains; the localizer quotes the erroneous text and
  generation resumes before it (from scratch when the quote is not in the chain).
- self-refine: the model sees its previous chain and the verdict and writes a revised chain.
- majority: as many fresh chains as the loop's budget (max_iters + 1), majority vote on the answers.
- oracle-ics (analysis, not in Paper B's list): Thought-ICS with the true first error as localizer.

The localizers are the trainer's (`resetrl.resets.LOCALIZERS`: self, oracle, quote, regenerate), with
the same parser. L1 adds the correct answer to the prompt; L3 asks with the neutral prompt of Paper B's
code (or, `localize_prompt_l3: note`, the trainer's prompt with a hedging note) and allows "no error"
(`\\boxed{0}`), which ends the loop with exit "disagree". At L1/L2 the prompt says the answer is wrong, so "no error" and an
unparseable answer fall back to resampling from scratch (e = 1), as SRPO does, and are counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Callable

from resetrl.tasks.answers import vote_key
from resetrl.ics.engine import Attempt, ChainEngine, ICSSettings
from resetrl.ics.loop import Corrector, Iteration, Trajectory, correction_loop
from resetrl.ics.unstructured import resume_unstructured, sample_unstructured
from resetrl.ics.verification import make_verifier
from resetrl.prompts import refine_question
from resetrl.registry import Registry
from resetrl.resets import LOCALIZERS, LocateContext, ResetPoint
from resetrl.tasks.base import Problem

ICS_METHODS: Registry[Callable[..., list[Trajectory]]] = Registry("ICS method")


def initial_chains(engine: ChainEngine, settings: ICSSettings, problems: list[Problem]) -> list[Attempt]:
    """One thought chain per problem at the first-chain temperature (shared by the structured methods)."""
    prompts = [engine.prompt_ids(problem) for problem in problems]
    return [chains[0] for chains in engine.sample_chains(problems, prompts, 1, settings.sampling(settings.temperature))]


class LocalizingCorrector(Corrector):
    """A corrector whose `locate` is the registered localizer `localizer`, asking through the engine."""

    localizer = "regenerate"

    def __init__(self, engine: ChainEngine, settings: ICSSettings):
        self.engine, self.settings = engine, settings

        def ask(texts: list[str]) -> list[tuple[str, int]]:
            return engine.ask(texts, settings.ask_sampling(settings.localize_temperature),
                              settings.localize_max_tokens, "localize")

        self.context = LocateContext(ask, level=settings.level, l3_prompt=settings.localize_prompt_l3,
                                     out_of_range=settings.localize_out_of_range,
                                     max_tokens=settings.localize_max_tokens, prompt=settings.localize_prompt)
        self.located_by = LOCALIZERS.get(self.localizer)()
        self.located_by.check(engine.task)

    def locate(self, problems, attempts):
        return self.located_by.locate(problems, attempts, self.context)


class StructuredCorrector(LocalizingCorrector):
    def first(self, problems):
        return initial_chains(self.engine, self.settings, problems)


class ThoughtICS(StructuredCorrector):
    """Paper B's Thought-ICS: the model names the first erroneous thought of its own chain."""

    name = "thought-ics"
    localizer = "self"

    def resume(self, problems, attempts, located):
        return self.engine.resume_chains(problems, attempts, [where.step for where in located],
                                         self.settings.sampling(self.settings.resample_temperature))


class OracleLocalizedICS(ThoughtICS):
    """Analysis: Thought-ICS with the task's true first erroneous thought as the localizer (an upper
    bound on what better self-localization could give; e = 1 where the task cannot tell)."""

    name = "oracle-ics"
    localizer = "oracle"


class FullRegeneration(StructuredCorrector):
    """Baseline: the same loop and verifier, every correction resamples the whole chain."""

    name = "regen"
    localizer = "regenerate"

    def resume(self, problems, attempts, located):
        return self.engine.resume_chains(problems, attempts, [1] * len(attempts),
                                         self.settings.sampling(self.settings.resample_temperature))


class SelfRefine(StructuredCorrector):
    """Baseline (Self-Refine): the model revises its whole answer, seeing the previous chain; the
    revision is asked for through the run's own chain prompt, so it is a thought chain too."""

    name = "self-refine"

    def locate(self, problems, attempts):
        return [ResetPoint(1, "refine") for _ in attempts]

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


class TokenICS(LocalizingCorrector):
    """Baseline (Token-ICS): the loop on unstructured chains; the localizer quotes the first erroneous
    text; generation resumes right before the quote, or from scratch when the quote is not found."""

    name = "token-ics"
    localizer = "quote"

    def first(self, problems):
        chains = sample_unstructured(self.engine, problems, 1, self.settings.sampling(self.settings.temperature))
        return [attempts[0] for attempts in chains]

    def resume(self, problems, attempts, located):
        return resume_unstructured(self.engine, problems, attempts, [where.position or 0 for where in located],
                                   [where.step for where in located],
                                   self.settings.sampling(self.settings.resample_temperature))


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
