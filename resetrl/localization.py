"""Self-localization of the first erroneous thought (method.md section 4): parsing the answer to
`prompts.localization_prompt`.

Shared by SRPO's reset strategy and by Thought-ICS. The localization tokens are never trained on.
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
