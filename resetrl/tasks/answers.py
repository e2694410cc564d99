"""Answers that are not numbers: multiple-choice letters and yes/no, and a normal form for voting.

Paper B runs Thought-ICS on CommonsenseQA (five lettered choices) and StrategyQA (yes/no) besides
math. Those tasks (`choice_data.py`) score their extracted `\\boxed{}` answer with `score_choice` or
`score_yes_no`; Thought-ICS's majority vote groups answers by `vote_key`, so "(B)" and "b" count as
the same vote.
"""

from __future__ import annotations

import re
from typing import Sequence

CHOICE_LETTERS = "ABCDEFGHIJ"

# One yes/no vocabulary for answers (StrategyQA) and for the model's verdict on its own chain (ICS L3).
YES_WORDS = {"yes", "true", "correct", "right"}
NO_WORDS = {"no", "false", "incorrect", "wrong"}
_LEAD = re.compile(r"^(?:the\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:\-]?\s*", re.IGNORECASE)
# "B", "(B)", "B)", "B.", "B: the river", "(b)", "b"; a lower-case letter only alone or in parentheses,
# so a free-text answer such as "a lake" is not read as choice A.
_LETTER = re.compile(r"^\(?([A-J])\)?(?:[.):]|\s|$)|^\(([a-j])\)|^([a-j])$")
_TEXT_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm)\{(.*)\}$")


def _plain(answer: str) -> str:
    """Strip a `\\text{}` wrapper, surrounding quotes/space and a trailing period."""
    text = answer.strip()
    wrapped = _TEXT_WRAPPER.match(text)
    if wrapped:
        text = wrapped.group(1).strip()
    return text.strip("\"'` ").rstrip(".").strip()


def choice_letter(answer: str | None, choices: Sequence[str] | None = None) -> str | None:
    """The letter an answer picks: a letter in any usual dress ("B", "(b)", "B) river"), or, when
    `choices` are given, the exact text of one choice (case-insensitive). None when it picks none."""
    if answer is None:
        return None
    text = _plain(answer)
    if choices:
        for letter, choice in zip(CHOICE_LETTERS, choices):
            if text.lower() == choice.strip().lower():
                return letter
    match = _LETTER.match(_LEAD.sub("", text))
    if match is None:
        return None
    letter = next(group for group in match.groups() if group).upper()
    if choices is not None and CHOICE_LETTERS.index(letter) >= len(choices):
        return None
    return letter


def score_choice(answer: str | None, gold_letter: str, choices: Sequence[str] | None = None) -> float:
    """1.0 when the answer picks the gold letter (CommonsenseQA-style scoring)."""
    return float(choice_letter(answer, choices) == gold_letter.strip().upper())


def yes_no(answer: str | None) -> bool | None:
    """True for a word of YES_WORDS, False for one of NO_WORDS, None for anything else."""
    if answer is None:
        return None
    word = _plain(answer).lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


def score_yes_no(answer: str | None, gold: str | bool) -> float:
    """1.0 when a yes/no answer matches the gold (StrategyQA-style scoring)."""
    gold_value = gold if isinstance(gold, bool) else yes_no(gold)
    if gold_value is None:
        raise ValueError(f"gold answer {gold!r} is not yes/no")
    return float(yes_no(answer) is gold_value)


def score_exact(answer: str | None, gold: str) -> float:
    """1.0 when a free-text answer is the gold's text, ignoring case, surrounding spaces and quotes,
    a `\\text{}` wrapper and a final period (a dataset's `exact` answer type)."""
    return float(answer is not None and _plain(answer).casefold() == _plain(gold).casefold())


def vote_key(answer: str | None) -> str | None:
    """The normal form majority vote counts: yes/no, a choice letter, a number without trailing
    zeros, else the lower-cased answer without spaces. None (no answer) casts no vote."""
    if answer is None or not answer.strip():
        return None
    verdict = yes_no(answer)
    if verdict is not None:
        return "yes" if verdict else "no"
    text = _plain(answer)
    if re.fullmatch(r"\(?[A-Ja-j]\)?", text):
        return text.strip("()").upper()
    compact = text.replace(" ", "").replace(",", "").lower()
    try:
        number = float(compact)
        return str(int(number)) if number.is_integer() else repr(number)
    except ValueError:
        return compact
