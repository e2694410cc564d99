"""Reset strategies (method.md section 3, item 3): which thought e of a failed parent to resample from.

Every strategy returns one ResetChoice per parent; `source` records how e was chosen, including
every fallback, so metrics can count them. The reset prefix is thoughts 1..e-1."""

from __future__ import annotations

import random
from dataclasses import dataclass

from resetrl.generation.base import GenerationBackend, SamplingParams
from resetrl.groups import Sample
from resetrl.localization import parse_localization
from resetrl.prompts import chat_prompt_ids, localization_prompt
from resetrl.registry import Registry
from resetrl.tasks.base import Problem, Task


@dataclass
class ResetChoice:
    step: int  # 1-indexed thought to resample, clamped to 1..N by the caller
    source: str  # "random", "oracle", "oracle:unknown->1", "self:boxed", "self:no_error->1", ...
    localization_tokens: int = 0
    localization_text: str | None = None


@dataclass
class ResetContext:
    backend: GenerationBackend
    tokenizer: object
    task: Task
    problems: dict[str, Problem]
    rng: random.Random
    localize_temperature: float = 0.3
    localize_max_tokens: int = 256


RESET_STRATEGIES: Registry[type] = Registry("reset strategy")


class ResetStrategy:
    def choose(self, parents: list[Sample], context: ResetContext) -> list[ResetChoice]:
        raise NotImplementedError


@RESET_STRATEGIES.register("none")
class NoReset(ResetStrategy):
    """GRPO: no resets (its layout has no parents, so this is never asked for a choice)."""

    def choose(self, parents, context):
        if parents:
            raise ValueError("the 'none' reset strategy was given parents; use a layout without parents")
        return []


@RESET_STRATEGIES.register("random")
class RandomReset(ResetStrategy):
    """RRPO: e uniform over 1..N."""

    def choose(self, parents, context):
        return [ResetChoice(context.rng.randint(1, max(1, len(p.thoughts))), "random") for p in parents]


@RESET_STRATEGIES.register("oracle")
class OracleReset(ResetStrategy):
    """Analysis: the task's true first erroneous thought; e = 1 (counted) where it cannot tell."""

    def choose(self, parents, context):
        choices = []
        for parent in parents:
            if parent.first_error:
                choices.append(ResetChoice(parent.first_error, "oracle"))
            else:
                choices.append(ResetChoice(1, "oracle:unknown->1"))
        return choices


@RESET_STRATEGIES.register("self")
class SelfLocalizedReset(ResetStrategy):
    """SRPO: the policy, asked in one chat turn at temperature 0.3, names the first erroneous thought
    of its own failed chain. "No error", an unparseable answer or a failed call fall back to e = 1."""

    def choose(self, parents, context):
        if not parents:
            return []
        prompts = [
            chat_prompt_ids(context.tokenizer,
                            localization_prompt(context.problems[p.problem_id].question, p.thoughts))
            for p in parents
        ]
        try:
            outputs = context.backend.generate_text(
                prompts, SamplingParams(temperature=context.localize_temperature, top_p=1.0),
                context.localize_max_tokens)
        except Exception as error:  # a failed call must not kill the step; it is counted instead
            print(f"resetrl: localization call failed ({error}); resetting at e = 1")
            return [ResetChoice(1, "self:call_failed->1") for _ in parents]
        choices = []
        for parent, ids in zip(parents, outputs):
            text = context.tokenizer.decode(ids, skip_special_tokens=True)
            parsed = parse_localization(text, len(parent.thoughts))
            if parsed.status in ("no_error", "unparsed"):
                source, step = f"self:{parsed.status}->1", 1
            else:
                source, step = f"self:{parsed.status}", parsed.step
            choices.append(ResetChoice(step, source, localization_tokens=len(ids), localization_text=text))
        return choices


METHOD_RESETS = {"grpo": "none", "rrpo": "random", "srpo": "self", "oracle": "oracle"}
