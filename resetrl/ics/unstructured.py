"""Unstructured chain of thought for the Token-ICS baseline (Paper B): free text, no thought
delimiters asked for; the localizer quotes the erroneous text instead of naming a step.

Steps of a free-text chain. To compare with thought-structured chains (true first error, offsets),
a free-text chain is cut into *segments*: at line breaks, at sentence ends (".", "!" or "?" followed
by white space) and at any `</thought>` the model writes anyway. A quote maps to the segment that
holds the quote's first character; the true first error is the task's step checker applied to the
segments (for arith_chain: one calculation per segment, which is how these chains are written).

Generation resumes right before the quote, at the last token boundary not after its first character.
A quote that is not found (exactly, or after lower-casing and collapsing white space) makes Token-ICS
regenerate from scratch, and counts as such. Segments and quotes are read in resetrl/localization.py
(training's quote localizer reads them too).
"""

from __future__ import annotations

from resetrl.generation.base import ChainRequest, SamplingParams
from resetrl.ics.engine import Attempt, ChainEngine
from resetrl.localization import segments
from resetrl.prompts import unstructured_prompt_text
from resetrl.tasks.base import Problem
from resetrl.thoughts import THOUGHT_END, ChainLimits, extract_boxed

def unstructured_prompt_ids(engine: ChainEngine, problem: Problem) -> list[int]:
    text = unstructured_prompt_text(problem.question, engine.tokenizer, engine.prompt_style, engine.examples)
    return engine.tokenizer(text, add_special_tokens=(engine.prompt_style == "raw")).input_ids


# -- chains -----------------------------------------------------------------------------------

def _tokens_before(ids: list[int], decode, n_characters: int) -> int:
    """The most tokens whose decoded text is at most `n_characters` long (a token boundary at or before
    a character position)."""
    low, high = 0, len(ids)
    while low < high:
        middle = (low + high + 1) // 2
        if len(decode(ids[:middle])) <= n_characters:
            low = middle
        else:
            high = middle - 1
    return low


def _tokens_at_least(ids: list[int], decode, n_characters: int) -> int:
    """The fewest tokens whose decoded text is at least `n_characters` long."""
    low, high = 0, len(ids)
    while low < high:
        middle = (low + high) // 2
        if len(decode(ids[:middle])) >= n_characters:
            high = middle
        else:
            low = middle + 1
    return low


def _first_answer_end(text: str) -> int | None:
    """End of the first complete `\\boxed{...}` (a free-text chain ends with its first answer): the
    shortest prefix in which the thought format's own `extract_boxed` finds an answer."""
    if extract_boxed(text) is None:
        return None
    low, high = 0, len(text)
    while low < high:  # "holds a complete box" only turns true as the prefix grows
        middle = (low + high) // 2
        if extract_boxed(text[:middle]) is None:
            low = middle + 1
        else:
            high = middle
    return low


def unstructured_limits(limits: ChainLimits) -> ChainLimits:
    """The run's caps, except that a free-text chain is one long "thought", so the per-thought cap is
    the total cap (a `</thought>` the model writes anyway still ends a chain that holds an answer)."""
    return ChainLimits(limits.max_thoughts, limits.max_total_tokens, limits.max_total_tokens, room_for_thought=False)


def unstructured_attempt(engine: ChainEngine, problem: Problem, prompt_ids: list[int], response_ids: list[int],
                         stop_reason: str, new_tokens: int, resumed_from: int | None = None,
                         prefix_tokens: int = 0) -> Attempt:
    text = engine.decode(response_ids)
    answer_end = _first_answer_end(text)
    if answer_end is not None and answer_end < len(text.rstrip()):
        keep = _tokens_at_least(response_ids, engine.decode, answer_end)
        response_ids, text = response_ids[:keep], engine.decode(response_ids[:keep])
        stop_reason = "answer"  # what came after the answer was generated but is not part of the chain
    steps = segments(text)
    answer = extract_boxed(text)
    return Attempt(problem.id, "ics", prompt_ids, response_ids, train_start=prefix_tokens, spans=[], thoughts=steps,
                   answer=answer, reward=engine.task.score(answer, problem), stop_reason=stop_reason,
                   new_tokens=new_tokens, first_error=engine.task.first_error(problem, steps), text=text,
                   structured=False, resumed_from=resumed_from)


def sample_unstructured(engine: ChainEngine, problems: list[Problem], n: int,
                        sampling: SamplingParams) -> list[list[Attempt]]:
    """n free-text chains per problem, in one batched call."""
    prompts = [unstructured_prompt_ids(engine, problem) for problem in problems]
    outputs = engine.backend.generate_chains([ChainRequest(p, n) for p in prompts], sampling,
                                             unstructured_limits(engine.limits))
    attempts = []
    for problem, prompt, chains in zip(problems, prompts, outputs):
        engine.tokens["chains"] += sum(len(c.ids) for c in chains)
        attempts.append([unstructured_attempt(engine, problem, prompt, c.ids, c.stop_reason, len(c.ids))
                         for c in chains])
    return attempts


def resume_unstructured(engine: ChainEngine, problems: list[Problem], parents: list[Attempt],
                        positions: list[int], steps: list[int], sampling: SamplingParams) -> list[Attempt]:
    """Keep each parent's text before character `positions[i]` (cut at a token boundary) and sample
    the rest; `steps` (the segment resumed from) is only recorded."""
    requests, prefixes = [], []
    for parent, position in zip(parents, positions):
        prefix = parent.response_ids[:_tokens_before(parent.response_ids, engine.decode, position)]
        prefixes.append(prefix)
        requests.append(ChainRequest(parent.prompt_ids + prefix, 1,
                                     prefix_thoughts=engine.decode(prefix).count(THOUGHT_END),
                                     prefix_tokens=len(prefix)))
    outputs = engine.backend.generate_chains(requests, sampling, unstructured_limits(engine.limits))
    attempts = []
    for problem, parent, prefix, step, (chain,) in zip(problems, parents, prefixes, steps, outputs):
        engine.tokens["chains"] += len(chain.ids)
        attempts.append(unstructured_attempt(engine, problem, parent.prompt_ids, prefix + chain.ids,
                                             chain.stop_reason, len(chain.ids), resumed_from=step,
                                             prefix_tokens=len(prefix)))
    return attempts
