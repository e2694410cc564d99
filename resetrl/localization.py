"""Localization of the first erroneous thought (method.md section 4): parsing the answer to
`prompts.localization_prompt`, the `ResetPoint` every localizer returns (`resetrl.resets`), the reset
prefix it keeps, and how chosen steps score against the true first error.

Shared by training's resets, Thought-ICS and the micro testbed's measurement. The localization tokens
are never trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from resetrl.thoughts import extract_boxed


@dataclass(frozen=True)
class Localization:
    """A parsed answer: `step` (1..N, or 0 for "no error") and how it was read.

    status: "boxed" (a boxed integer in range), "clamped" (boxed integer out of range, clamped),
    "no_error" (boxed 0), "step_mention" (no usable boxed integer; the last "Step k" in the prose),
    "unparsed" (nothing usable)."""

    step: int
    status: str


_STEP_MENTION = re.compile(r"\bstep\s*(\d+)", re.IGNORECASE)


def parse_localization(text: str, n_thoughts: int) -> Localization:
    """The last brace-balanced \\boxed{} as an integer; else the last "Step k" with 1 <= k <= N;
    else unparsed. Callers map "no_error" and "unparsed" to their own fallback (SRPO: e = 1)."""
    boxed = extract_boxed(text)
    if boxed is not None:
        match = re.fullmatch(r"\s*(?:step\s*)?(-?\d+)\s*", boxed, re.IGNORECASE)
        if match:
            step = int(match.group(1))
            if step == 0:
                return Localization(0, "no_error")
            if 1 <= step <= n_thoughts:
                return Localization(step, "boxed")
            return Localization(min(max(step, 1), max(n_thoughts, 1)), "clamped")
    mentions = [int(m) for m in _STEP_MENTION.findall(text) if 1 <= int(m) <= n_thoughts]
    if mentions:
        return Localization(mentions[-1], "step_mention")
    return Localization(0, "unparsed")


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


def localization_scores(steps: list[int], first_errors: list[int],
                        lengths: list[int] | None = None) -> dict[str, float | int | None]:
    """Chosen reset steps against the true first errors: n, exact, within one, clean prefix (at or
    before the error: the kept prefix holds no error); None where there is nothing to score. With
    the chains' lengths, also the rates of a step drawn uniformly from 1..N (RRPO's, the chance
    level) as chance/exact, chance/within_one, chance/clean_prefix."""
    pairs = list(zip(steps, first_errors))
    scores: dict[str, float | int | None] = {
        "n": len(pairs),
        "exact": _mean(step == error for step, error in pairs),
        "within_one": _mean(abs(step - error) <= 1 for step, error in pairs),
        "clean_prefix": _mean(step <= error for step, error in pairs),
    }
    if lengths is not None:
        chance = list(zip(first_errors, [max(1, n) for n in lengths]))
        scores["chance/exact"] = _mean(1 / n for _, n in chance)
        scores["chance/within_one"] = _mean(sum(abs(step - error) <= 1 for step in range(1, n + 1)) / n
                                            for error, n in chance)
        scores["chance/clean_prefix"] = _mean(min(error, n) / n for error, n in chance)
    return scores


def _mean(values) -> float | None:
    values = list(values)
    return float(sum(values) / len(values)) if values else None
