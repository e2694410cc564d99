"""Localizers (docs/method.md section 4, item 3; section 5): which thought e of a failed chain to resample
from. One registry for training's reset strategies and Thought-ICS's correctors.

Every localizer returns one `ResetPoint` per chain; its `source` records how e was chosen, every
fallback included, so metrics can count them. The reset prefix is thoughts 1..e-1
(`reset_prefix_end`).

- random (RRPO): e uniform over 1..N.
- oracle (analysis; oracle-ics): the task's true first erroneous thought.
- self (SRPO; Thought-ICS): the policy names the first erroneous thought of its own chain.
- quote (Token-ICS): the policy quotes the first erroneous text of a free-text chain.
- regenerate (ICS baseline): always from scratch, no call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from resetrl.errors import ResetRLError
from resetrl.generation.base import GenerationBackend, SamplingParams
from resetrl.localization import find_quote, parse_localization, parse_quote, segment_at
from resetrl.prompts import chat_prompt_ids, level_note, quote_prompt, self_localization_prompt
from resetrl.registry import Registry
from resetrl.scoring import Sample
from resetrl.tasks.base import Problem, Task

@dataclass
class ResetPoint:
    """Where a chain is resampled from, as a localizer chose it (training's reset step, Thought-ICS's
    resume point). step: 1-indexed thought (1 = from scratch), 0 = the localizer found no error
    (Thought-ICS at L3: ends the loop). source: how it was chosen, every fallback named, e.g.
    "random", "oracle", "oracle:unknown->1", "self:boxed", "self:no_error->1" (training),
    "boxed", "unparsed->1", "quote:boxed", "quote_not_found->1", "regenerate" (Thought-ICS)."""

    step: int
    source: str
    text: str | None = None  # the localizer's answer, when there was a call
    tokens: int = 0  # its length in tokens
    quote: str | None = None  # quote localizer: the quoted text
    position: int | None = None  # quote localizer: the character position generation resumes from

    def record(self) -> dict:
        # "status": the key Thought-ICS trajectory files have always used for the source
        return {"step": self.step, "status": self.source, "text": self.text, "tokens": self.tokens,
                **({"quote": self.quote, "position": self.position} if self.quote is not None else {})}


def clamp_step(step: int, n_steps: int) -> int:
    """A reset step made a thought of the chain: 1..N (1 for a chain without thoughts)."""
    return min(max(step, 1), max(n_steps, 1))


def reset_prefix_end(spans: list[tuple[int, int]], reset_step: int) -> int:
    """Token end of thoughts 1..e-1 (0 when e = 1), e clamped to the chain: the reset prefix."""
    step = clamp_step(reset_step, len(spans))
    return spans[step - 2][1] if step >= 2 else 0


Ask = Callable[[list[str]], list[tuple[str, int]]]  # one chat turn per text -> (answer, its tokens)


@dataclass
class LocateContext:
    """What a localizer may use: `ask` (the policy, one chat turn per text, batched), `rng` (random)
    and the Thought-ICS `level`. level None is training, whose records SRPO's runs keep: sources
    "self:<how>", every failed chain asked (an empty one too), "no error" always e = 1."""

    ask: Ask
    rng: random.Random | None = None
    level: str | None = None  # L1 (the localizer sees the answer), L2, L3 ("no error" ends the loop)
    out_of_range: str = "prose"  # a boxed number outside 1..N: "prose" (reference) or "clamp"
    max_tokens: int | None = None  # the answer's token budget: an unparsed answer that filled it was cut
    prompt: str = "reference"  # localization prompt variant (prompts.LOCALIZATION_PROMPTS)
    l3_prompt: str = "reference"  # L3 `self` prompt: "reference" (neutral) or "note" (prompts.self_localization_prompt)


def chat_asker(backend: GenerationBackend, tokenizer, temperature: float, max_new_tokens: int,
               top_p: float = 1.0, top_k: int = 0) -> Ask:
    """`ask` over a generation backend: chat template, top-p 1 and no top-k unless given (training
    passes the rollout's top-p, Thought-ICS its own), answers decoded without special tokens."""

    def ask(texts: list[str]) -> list[tuple[str, int]]:
        if not texts:
            return []
        prompts = [chat_prompt_ids(tokenizer, text) for text in texts]
        outputs = backend.generate_text(prompts, SamplingParams(temperature, top_p, top_k), max_new_tokens)
        return [(tokenizer.decode(ids, skip_special_tokens=True), len(ids)) for ids in outputs]

    return ask


class Localizer:
    """`locate(problems, chains, context)`: one ResetPoint per failed chain (`chains[i]` a chain of
    `problems[i]`: a training Sample or a Thought-ICS Attempt)."""

    def check(self, task: Task) -> None:
        """Fail before a run starts when `task` cannot give what this localizer needs."""

    def locate(self, problems: list[Problem], chains: list[Sample], context: LocateContext) -> list[ResetPoint]:
        raise NotImplementedError


LOCALIZERS: Registry[type[Localizer]] = Registry("localizer")


@LOCALIZERS.register("random")
class RandomLocalizer(Localizer):
    """RRPO: e uniform over 1..N."""

    def locate(self, problems, chains, context):
        return [ResetPoint(context.rng.randint(1, max(1, len(chain.thoughts))), "random") for chain in chains]


@LOCALIZERS.register("oracle")
class OracleLocalizer(Localizer):
    """Analysis: the task's true first erroneous thought; e = 1 (counted) where it cannot tell."""

    def check(self, task):
        if type(task).first_error is Task.first_error:
            raise ResetRLError(f"oracle resets need a task that knows the true first error; "
                               f"{task.name!r} does not (arith_chain does)")

    def locate(self, problems, chains, context):
        return [ResetPoint(chain.first_error, "oracle") if chain.first_error else ResetPoint(1, "oracle:unknown->1")
                for chain in chains]


def point_from_parse(step: int, status: str, level: str | None, prefix: str = "", **details) -> ResetPoint:
    """Map a parsed localizer answer to where resampling starts: "no error" ends the loop at L3 (step
    0) and is e = 1 elsewhere, as is an unparseable answer (both named in the source)."""
    if status == "no_error":
        return ResetPoint(0, status, **details) if level == "L3" else ResetPoint(1, f"{prefix}no_error->1", **details)
    if status in ("unparsed", "truncated"):
        return ResetPoint(1, f"{prefix}{status}->1", **details)
    return ResetPoint(step, f"{prefix}{status}", **details)


@LOCALIZERS.register("self")
class SelfLocalizer(Localizer):
    """SRPO and Thought-ICS: the policy, asked in one chat turn (`self_localization_prompt`: the
    localization prompt plus the level's note, or at L3 the neutral prompt; temperature 0.3 by default), names the first erroneous thought of its own failed
    chain. "No error" (below L3), an unparseable answer or a failed call fall back to e = 1."""

    def locate(self, problems, chains, context):
        training = context.level is None
        prefix = "self:" if training else ""
        asked = [i for i, chain in enumerate(chains) if training or chain.thoughts]
        texts = [self_localization_prompt(problems[i].question, chains[i].thoughts, context.level,
                                          problems[i].answer, context.l3_prompt, context.prompt) for i in asked]
        try:
            answers = dict(zip(asked, context.ask(texts)))
        except Exception as error:  # a failed call must not kill the step; it is counted instead
            print(f"resetrl: localization call failed ({error}); resetting at e = 1")
            return [ResetPoint(1, f"{prefix}call_failed->1") for _ in chains]
        points = []
        for i, chain in enumerate(chains):
            if i not in answers:  # an empty chain: nothing to localize, start over
                points.append(ResetPoint(1, "empty->1"))
                continue
            text, tokens = answers[i]
            parsed = parse_localization(text, len(chain.thoughts), context.out_of_range)
            status = parsed.status
            if status == "unparsed" and context.max_tokens and tokens >= context.max_tokens:
                status = "truncated"  # cut at the token budget before its box: counted apart
            points.append(point_from_parse(parsed.step, status, context.level, prefix, text=text, tokens=tokens))
        return points


@LOCALIZERS.register("quote")
class QuoteLocalizer(Localizer):
    """Token-ICS: the policy quotes the first erroneous text of its free-text chain (`quote_prompt`);
    generation resumes right before the quote (step = the segment holding it), from scratch when the
    quote is not in the chain, the answer is unparsed or (below L3) says "no error"."""

    def locate(self, problems, chains, context):
        texts = [quote_prompt(problem.question, chain.text.strip()) + level_note(context.level, problem.answer, "NONE")
                 for problem, chain in zip(problems, chains)]
        return [locate_quote(chain, text, tokens, context.level)
                for chain, (text, tokens) in zip(chains, context.ask(texts))]


def locate_quote(chain, answer: str, tokens: int, level: str | None) -> ResetPoint:
    """Read a quote answer: found -> resume before it (step = the segment holding it); not found,
    unparsed or (below L3) "no error" -> from scratch."""
    quote, status = parse_quote(answer)
    if quote is None:
        point = point_from_parse(0, status, level, text=answer, tokens=tokens)
        point.position = 0
        return point
    position = find_quote(chain.text, quote)
    if position is None:
        return ResetPoint(1, "quote_not_found->1", answer, tokens, quote, 0)
    return ResetPoint(segment_at(chain.text, position), f"quote:{status}", answer, tokens, quote, position)


@LOCALIZERS.register("regenerate")
class Regenerate(Localizer):
    """Baseline: every correction starts over from scratch (no localizer call)."""

    def locate(self, problems, chains, context):
        return [ResetPoint(1, "regenerate") for _ in chains]
