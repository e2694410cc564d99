"""Localization of the first erroneous thought (docs/method.md section 5): parsing the answer to
`prompts.localization_prompt` and how chosen steps score against the true first error (the
`ResetPoint` a localizer returns and the reset prefix it keeps are resetrl/resets.py's); for free-text chains
(Token-ICS, resetrl/ics/unstructured.py) their segments and the quote a localizer answers with.

Shared by training's resets, Thought-ICS and the micro testbed's measurement. The localization tokens
are never trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from resetrl.thoughts import BOXED, THOUGHT_END, box_content, extract_boxed


@dataclass(frozen=True)
class Localization:
    """A parsed answer: `step` (1..N, or 0 for "no error"; 0 too where nothing was usable) and how
    it was read (`status`):

    - "boxed": the last \\boxed{} holds an integer in 1..N;
    - "no_error": it holds 0;
    - "step_mention": no usable box (none, unclosed, not an integer); the last "Step k" of the text;
    - "out_of_range->step_mention": the box holds an integer outside 1..N (a model boxing its
      answer); the last "Step k" of the text;
    - "out_of_range->1": the same, with no usable "Step k": step 1 (a reset from scratch);
    - "clamped": the box's integer outside 1..N clamped to it (`out_of_range="clamp"`);
    - "unparsed": nothing usable (callers fall back to e = 1)."""

    step: int
    status: str


# The reference reads "Step" or "step", white space, then digits: the last such mention counts.
_STEP_MENTION = re.compile(r"[Ss]tep\s+(\d+)")
OUT_OF_RANGE_RULES = ("prose", "clamp")


def _as_int(text: str) -> int | None:
    """Python's int() of the text (signs, spaces and underscores allowed), None where it fails,
    a number past int()'s 4,300-digit limit included."""
    try:
        return int(text)
    except (ValueError, TypeError):
        return None


def parse_localization(text: str, n_thoughts: int, out_of_range: str = "prose") -> Localization:
    """Read a localizer's answer as the reference code does: the last \\boxed{} as an integer
    (0 = no error, 1..N = that step); otherwise (no box, not an integer, or out of range) the last
    "Step k" of the text when 1 <= k <= N. An integer outside 1..N is a model boxing its answer,
    not a step: with `out_of_range="clamp"` it is clamped to 1..N instead (resetrl before 0.2).
    Callers map "no_error" and "unparsed" to their own fallback (SRPO: e = 1)."""
    if out_of_range not in OUT_OF_RANGE_RULES:
        raise ValueError(f"unknown out_of_range rule {out_of_range!r}; known: {', '.join(OUT_OF_RANGE_RULES)}")
    # The last box only: if it is unclosed, an earlier one does not count (the answer's last box is its answer).
    last = text.rfind(BOXED)
    boxed = box_content(text, last) if last != -1 else None
    step = _as_int(boxed) if boxed is not None else None
    if step == 0:
        return Localization(0, "no_error")
    if step is not None and 1 <= step <= n_thoughts:
        return Localization(step, "boxed")
    if step is not None and out_of_range == "clamp":
        return Localization(min(max(step, 1), max(n_thoughts, 1)), "clamped")
    mentions = _STEP_MENTION.findall(text)
    mention = _as_int(mentions[-1]) if mentions else None
    prefix = "out_of_range->" if step is not None else ""
    if mention is not None and 1 <= mention <= n_thoughts:
        return Localization(mention, prefix + "step_mention")
    if step is not None:
        return Localization(1, "out_of_range->1")
    return Localization(0, "unparsed")


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


# -- free-text chains (Token-ICS): segments and quotes ---------------------------------------------------------------------------------

_BOUNDARY = re.compile(r"\n|" + re.escape(THOUGHT_END) + r"|(?<=[.!?])\s+")


def segment_spans(text: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of the non-empty segments of a free-text chain."""
    spans, start = [], 0
    for match in list(_BOUNDARY.finditer(text)) + [None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        if piece.strip():
            left = start + len(piece) - len(piece.lstrip())
            spans.append((left, left + len(piece.strip())))
        if match:
            start = match.end()
    return spans


def segments(text: str) -> list[str]:
    return [text[start:end] for start, end in segment_spans(text)]


def segment_at(text: str, position: int) -> int:
    """1-indexed segment holding character `position` (the next one when it falls between two)."""
    spans = segment_spans(text)
    for index, (_, end) in enumerate(spans, start=1):
        if position < end:
            return index
    return max(len(spans), 1)


# -- quotes -----------------------------------------------------------------------------------

QUOTE_NO_ERROR = {"none", "0", "no error", "nothing"}
_DOUBLE_QUOTED = re.compile(r"\"([^\"\n]{2,})\"")


def parse_quote(text: str) -> tuple[str | None, str]:
    """(quote, status): status "boxed" (the last `\\boxed{}`), "quoted" (else the last "..." in the
    prose), "no_error" (boxed NONE or 0) or "unparsed"."""
    boxed = extract_boxed(text)
    if boxed is not None:
        quote = boxed.strip().strip("\"'`").strip()
        if quote.lower().rstrip(".") in QUOTE_NO_ERROR:
            return None, "no_error"
        if quote:
            return quote, "boxed"
    quoted = _DOUBLE_QUOTED.findall(text)
    if quoted:
        return quoted[-1].strip(), "quoted"
    return None, "unparsed"


def _normalized(text: str) -> tuple[str, list[int]]:
    """Lower-cased text with white-space runs (and `</thought>`) collapsed to one space, and for each
    of its characters the index of the original character. Lower-casing can lengthen a character
    ("İ" -> "i" + combining dot): each piece maps back to the one original."""
    text = text.replace(THOUGHT_END, " " * len(THOUGHT_END))  # same length: indices stay valid
    characters, origin = [], []
    for index, character in enumerate(text):
        if character.isspace():
            if characters and characters[-1] == " ":
                continue
            character = " "
        for piece in character.lower():
            characters.append(piece)
            origin.append(index)
    return "".join(characters), origin


def find_quote(solution: str, quote: str) -> int | None:
    """Character position of the first occurrence of `quote` in `solution`: exact, else after
    lower-casing and collapsing white space; None when it is not there."""
    if not quote.strip():
        return None
    position = solution.find(quote)
    if position != -1:
        return position
    haystack, origin = _normalized(solution)
    needle, _ = _normalized(quote.strip())
    position = haystack.find(needle.strip())
    return origin[position] if position != -1 else None
