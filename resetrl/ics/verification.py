"""Verification: the `verify(chain)` of Thought-ICS (Paper B; method.md section 5).

L1 and L2 use the oracle (the task's scorer: is the answer right?). L3 asks the model itself, in one
chat turn, to check its solution and end with `\\boxed{YES}` or `\\boxed{NO}`; with k > 1 samples the
votes pass a gate: any (one YES suffices), majority (more than half YES) or unanimous (all YES).
A vote that cannot be parsed counts as "not YES": an unreadable check never certifies a chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from resetrl.ics.engine import Attempt, ChainEngine, ICSSettings
from resetrl.prompts import numbered_steps, verification_prompt
from resetrl.registry import Registry
from resetrl.tasks.answers import NO_WORDS, YES_WORDS
from resetrl.tasks.base import Problem
from resetrl.thoughts import extract_boxed


def solution_text(attempt: Attempt) -> str:
    """How a chain is shown back to the model: numbered thoughts, or the free text as written."""
    return numbered_steps(attempt.steps) if attempt.structured else attempt.text.strip()


_SHOUTED = re.compile(r"\b(YES|NO)\b")


def parse_verdict(text: str) -> bool | None:
    """The last brace-balanced `\\boxed{}` read as YES/NO (case-insensitive, `\\text{}` and punctuation
    ignored); else the last upper-case YES or NO in the prose; else None (unparsed)."""
    boxed = extract_boxed(text)
    if boxed is not None:
        word = re.sub(r"\\text\{(.*)\}", r"\1", boxed).strip().strip(".!*\"' ").lower()
        if word in YES_WORDS:
            return True
        if word in NO_WORDS:
            return False
    shouted = _SHOUTED.findall(text)
    if shouted:
        return shouted[-1] == "YES"
    return None


VERIFY_GATES: Registry[Callable[[list[bool | None]], bool]] = Registry("verification gate")


@VERIFY_GATES.register("any")
def any_yes(votes: list[bool | None]) -> bool:
    return any(vote is True for vote in votes)


@VERIFY_GATES.register("majority")
def majority_yes(votes: list[bool | None]) -> bool:
    return sum(vote is True for vote in votes) * 2 > len(votes)


@VERIFY_GATES.register("unanimous")
def unanimous_yes(votes: list[bool | None]) -> bool:
    return bool(votes) and all(vote is True for vote in votes)


def gate(votes: list[bool | None], rule: str) -> bool:
    """Turn k parsed votes into a verdict by the gate named `rule` (settings.verify_gate)."""
    return VERIFY_GATES.get(rule)(votes)


@dataclass
class Verdict:
    verified: bool
    votes: list[bool | None] = field(default_factory=list)  # parsed self-verification votes (L3)
    tokens: int = 0
    texts: list[str] = field(default_factory=list)

    def record(self) -> dict:
        return {"verified": self.verified, "votes": self.votes, "tokens": self.tokens}


class OracleVerifier:
    """L1/L2: the task's scorer tells whether the answer is right; it costs no generation."""

    def verify(self, problems: list[Problem], attempts: list[Attempt]) -> list[Verdict]:
        return [Verdict(attempt.correct) for attempt in attempts]


class SelfVerifier:
    """L3: k sampled self-checks per chain, all chains of a round in one batched call."""

    def __init__(self, engine: ChainEngine, settings: ICSSettings):
        self.engine, self.settings = engine, settings

    def verify(self, problems: list[Problem], attempts: list[Attempt]) -> list[Verdict]:
        k = self.settings.verify_samples
        texts = [verification_prompt(problem.question, solution_text(attempt))
                 for problem, attempt in zip(problems, attempts) for _ in range(k)]
        answers = self.engine.ask(texts, self.settings.verify_temperature, self.settings.verify_max_tokens, "verify")
        verdicts = []
        for index in range(len(attempts)):
            mine = answers[index * k:(index + 1) * k]
            votes = [parse_verdict(text) for text, _ in mine]
            verdicts.append(Verdict(gate(votes, self.settings.verify_gate), votes,
                                    sum(tokens for _, tokens in mine), [text for text, _ in mine]))
        return verdicts


def make_verifier(engine: ChainEngine, settings: ICSSettings) -> OracleVerifier | SelfVerifier:
    return SelfVerifier(engine, settings) if settings.level == "L3" else OracleVerifier()
