"""The thought format (docs/method.md section 3): chains of thoughts ended by `</thought>`, answer in `\\boxed{}`.

Everything about the format lives here: the delimiter, answer extraction, splitting text into
thoughts and token ids into thought spans, and the stop rules of a chain. The prompts that ask for
the format are in `prompts.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

THOUGHT_END = "</thought>"
BOXED = "\\boxed{"


def format_chain(thoughts: Sequence[str]) -> str:
    """Write thoughts as chain text: each ended by the delimiter, one per line."""
    return "".join(f"{thought}{THOUGHT_END}\n" for thought in thoughts)


def box_content(text: str, start: int) -> str | None:
    """Content of the `\\boxed{` at `start` in text, braces balanced; None when it is unclosed."""
    depth, position = 1, start + len(BOXED)
    while position < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[position], 0)
        position += 1
    return text[start + len(BOXED) : position - 1].strip() if depth == 0 else None


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` in text, braces balanced; None when there is none complete."""
    start = text.rfind(BOXED)
    while start != -1:
        content = box_content(text, start)
        if content is not None:
            return content
        start = text.rfind(BOXED, 0, start)  # unclosed: an earlier complete one may exist
    return None


_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$\\(])|\n\s*\n")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


def prose_thoughts(text: str) -> list[str]:
    """A worked solution written as prose (MATH, StrategyQA), as thoughts: one per sentence or
    paragraph, never broken inside math ($...$, $$...$$, \\[...\\], \\begin{..}...\\end{..}) or an
    [asy] figure."""
    pieces, start = [], 0
    for match in _SENTENCE_BREAK.finditer(text):
        before = text[:match.start()]
        display = before.count("$$")
        inline = len(_UNESCAPED_DOLLAR.findall(before)) - 2 * display  # "\\$5" is a price, not math
        opened = any(before.count(opener) > before.count(closer)
                     for opener, closer in (("\\[", "\\]"), ("\\begin{", "\\end{"), ("[asy]", "[/asy]")))
        if display % 2 or inline % 2 or opened:
            continue
        pieces.append(text[start:match.start()])
        start = match.end()
    pieces.append(text[start:])
    return [" ".join(piece.split()) for piece in pieces if piece.strip()]


def end_with_answer(thoughts: list[str], answer: str) -> list[str]:
    """A reference chain that ends as the format wants: at its first thought with \\boxed{} (a
    chain stops there), so everything from that thought to the last one with \\boxed{} becomes one
    thought and what follows is dropped; without a \\boxed{}, a last thought boxes `answer`."""
    boxed = [index for index, thought in enumerate(thoughts) if BOXED in thought]
    if not boxed:
        return thoughts + [f"The answer is \\boxed{{{answer}}}."]
    return thoughts[:boxed[0]] + [" ".join(thoughts[boxed[0]:boxed[-1] + 1])]


def split_thoughts(text: str) -> list[str]:
    """Thought texts of a chain; an unfinished trailing thought (no delimiter) counts when non-empty."""
    pieces = text.split(THOUGHT_END)
    thoughts = [piece.strip() for piece in pieces[:-1]]
    if pieces[-1].strip():
        thoughts.append(pieces[-1].strip())
    return thoughts


def thought_spans(ids: Sequence[int], decode: Callable[[Sequence[int]], str]) -> list[tuple[int, int]]:
    """Token spans [start, end) of each thought in generated ids, so thoughts 1..k are a token prefix.

    A span ends at the first token whose decoded prefix holds the whole delimiter (binary search on
    prefix decodes, so tokenizers that merge the delimiter with neighbours are handled)."""
    text = decode(ids)
    spans, start = [], 0
    for match in re.finditer(re.escape(THOUGHT_END), text):
        low, high = start + 1, len(ids)
        while low < high:
            middle = (low + high) // 2
            if len(decode(ids[:middle])) >= match.end():
                high = middle
            else:
                low = middle + 1
        spans.append((start, low))
        start = low
    if start < len(ids) and decode(ids[start:]).strip():
        spans.append((start, len(ids)))
    return spans


@dataclass(frozen=True)
class ChainLimits:
    """Stop rules of a chain (reference code: 20 thoughts x 256 tokens; Paper B's code: 15 x 150)."""

    max_thoughts: int = 20
    max_thought_tokens: int = 256
    max_total_tokens: int = 1024
    # The reference starts a thought only when a whole one (max_thought_tokens) still fits the budget.
    room_for_thought: bool = True


def closed_thought_stop(thought_text: str, thoughts_done: int, limits: ChainLimits) -> str | None:
    """Stop reason after a thought closed with the delimiter, or None to go on."""
    if BOXED in thought_text:
        return "answer"
    if thoughts_done >= limits.max_thoughts:
        return "max_thoughts"
    return None
