"""Verification: the `verify(chain)` of Thought-ICS (Paper B; docs/method.md section 7).

L1 and L2 use the oracle (the task's scorer: is the answer right?). L3 asks the model itself, in one
chat turn, to check a solution and end with `\\boxed{YES}` or `\\boxed{NO}`; with k > 1 samples the
votes pass a gate: any (one YES suffices), majority (more than half YES) or unanimous (all YES).
How an answer is read is `settings.verdict_parser`: "reference" (Paper B's code, the default) reads
every answer as YES or NO; "exact" may leave one unparsed, which counts as "not YES". Each vote
records how it was read (`VOTE_SOURCES`), so a run shows how many verdicts were real boxes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from resetrl.prompts import numbered_steps, review_prompt, verification_prompt
from resetrl.registry import Registry
from resetrl.tasks.answers import NO_WORDS, YES_WORDS
from resetrl.tasks.base import Problem
from resetrl.thoughts import BOXED, extract_boxed

if TYPE_CHECKING:  # the engine validates its settings against this module's registries
    from resetrl.ics.engine import Attempt, ChainEngine, ICSSettings


def solution_text(attempt: Attempt) -> str:
    """How a chain is shown back to the model: numbered thoughts, or the free text as written."""
    return numbered_steps(attempt.steps) if attempt.structured else attempt.text.strip()


# How a vote was read: "boxed" (the box said YES/NO), "no_box" (no closed final box: NO, reference),
# "prose" (yes/no found outside a box), "default" (a box with neither and no yes/no: NO, reference),
# "unparsed" (exact parser: no verdict).
VOTE_SOURCES = ("boxed", "no_box", "prose", "default", "unparsed")
Reading = tuple[bool | None, str]  # (YES / NO / None, how it was read: one of VOTE_SOURCES)

VERDICT_PARSERS: Registry[Callable[[str], Reading]] = Registry("verdict parser")


@VERDICT_PARSERS.register("reference")
def read_reference(text: str) -> Reading:
    """Paper B's code: the text of the last `\\boxed{` (braces balanced). If it never closes, or there
    is none, the verdict is NO. Upper-cased, containing YES -> YES, else containing NO -> NO
    (substrings: "NOT SURE" and "KNOWN" are NO, "EYES" is YES). A closed box with neither: YES if the
    lower-cased answer contains "yes" and no "no" anywhere, else NO."""
    start = text.rfind(BOXED)
    boxed = extract_boxed(text[start:]) if start != -1 else None  # the last opening only
    if boxed is None:
        return False, "no_box"
    if "YES" in boxed.upper():
        return True, "boxed"
    if "NO" in boxed.upper():
        return False, "boxed"
    lower = text.lower()
    if "yes" in lower and "no" not in lower:
        return True, "prose"
    if "no" in lower:
        return False, "prose"
    return False, "default"


_SHOUTED = re.compile(r"\b(YES|NO)\b")


@VERDICT_PARSERS.register("exact")
def read_exact(text: str) -> Reading:
    """resetrl's stricter reading: the last complete `\\boxed{}` as exactly one yes/no word (any case,
    `\\text{}` and punctuation ignored); else the last upper-case YES or NO as a word in the prose;
    else unparsed."""
    boxed = extract_boxed(text)
    if boxed is not None:
        word = re.sub(r"\\text\{(.*)\}", r"\1", boxed).strip().strip(".!*\"' ").lower()
        if word in YES_WORDS:
            return True, "boxed"
        if word in NO_WORDS:
            return False, "boxed"
    shouted = _SHOUTED.findall(text)
    if shouted:
        return shouted[-1] == "YES", "prose"
    return None, "unparsed"


def parse_verdict(text: str, parser: str = "reference") -> bool | None:
    """YES (True), NO (False) or unparsed (None, only the "exact" parser) of a verification answer."""
    return VERDICT_PARSERS.get(parser)(text)[0]


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
    read_as: list[str] = field(default_factory=list)  # how each vote was read (VOTE_SOURCES)

    def record(self) -> dict:
        return {"verified": self.verified, "votes": self.votes, "read_as": self.read_as, "tokens": self.tokens}


class OracleVerifier:
    """L1/L2: the task's scorer tells whether the answer is right; it costs no generation."""

    def verify(self, problems: list[Problem], attempts: list[Attempt]) -> list[Verdict]:
        return [Verdict(attempt.correct) for attempt in attempts]


class SelfVerifier:
    """L3: k sampled self-checks per chain, all chains of a round in one batched call."""

    def __init__(self, engine: ChainEngine, settings: ICSSettings):
        self.engine, self.settings = engine, settings

    def verify(self, problems: list[Problem], attempts: list[Attempt]) -> list[Verdict]:
        settings = self.settings
        k = settings.verify_samples
        prompt = VERIFY_PROMPTS[settings.verify_prompt]
        texts = [prompt(problem.question, attempt) for problem, attempt in zip(problems, attempts) for _ in range(k)]
        answers = self.engine.ask(texts, settings.ask_sampling(settings.verify_temperature), settings.verify_max_tokens,
                                  "verify")
        read = VERDICT_PARSERS.get(settings.verdict_parser)
        verdicts = []
        for index in range(len(attempts)):
            mine = answers[index * k:(index + 1) * k]
            readings = [read(text) for text, _ in mine]
            votes = [vote for vote, _ in readings]
            verdicts.append(Verdict(gate(votes, settings.verify_gate), votes, sum(tokens for _, tokens in mine),
                                    [text for text, _ in mine], [how for _, how in readings]))
        return verdicts


# The L3 verification prompt (settings.verify_prompt): Paper B's code shows a reviewer the solution
# and its final answer; "first-person" is resetrl's earlier prompt, the model checking its own work.
VERIFY_PROMPTS: dict[str, Callable[[str, Attempt], str]] = {
    "reference": lambda question, attempt: review_prompt(question, solution_text(attempt), attempt.answer),
    "first-person": lambda question, attempt: verification_prompt(question, solution_text(attempt)),
}


def make_verifier(engine: ChainEngine, settings: ICSSettings) -> OracleVerifier | SelfVerifier:
    return SelfVerifier(engine, settings) if settings.level == "L3" else OracleVerifier()
