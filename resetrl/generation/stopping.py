"""When a generated chain stops: every row by its own thought-format rules (answer, thought count,
per-thought cap, total cap, end-of-sequence), token by token. Shared by the generation backends: the
HF engines push each sampled token, `model.generate` calls it as a StoppingCriteria, and vLLM checks
the tokens of each round with it."""

from __future__ import annotations

import torch
from transformers import StoppingCriteria

from resetrl.thoughts import THOUGHT_END, ChainLimits, closed_thought_stop


class RowStopper(StoppingCriteria):
    """Tracks every row's new tokens and stops it by its own rules. With `limits` None only
    end-of-sequence and the row's token cap apply (free text). With `stop_at_thought_end` a row that
    closes a thought without ending its chain stops with reason "thought" (thought-by-thought mode)."""

    def __init__(self, decode, eos_ids: set[int], max_new: list[int], limits: ChainLimits | None,
                 prefix_thoughts: list[int], stop_at_thought_end: bool = False):
        self.decode, self.eos_ids, self.max_new, self.limits = decode, eos_ids, max_new, limits
        self.stop_at_thought_end = stop_at_thought_end
        self.generated: list[list[int]] = [[] for _ in max_new]
        self.logprobs: list[list[float]] = [[] for _ in max_new]  # of generated tokens, when pushed with them
        self.reasons: list[str | None] = [None] * len(max_new)
        self.thought_start = [0] * len(max_new)
        self.thoughts = list(prefix_thoughts)
        # The delimiter, when it appears, ends in the newest token: decoding this many tail tokens finds
        # it (each token adds at least one character), instead of decoding the whole thought each step.
        self.window = len(THOUGHT_END) + 2
        # And that token's own text holds the delimiter's last character, so the window is decoded only
        # after such a token (decoding every step cost about 7% of a trap evaluation's time).
        self.may_close: dict[int, bool] = {}

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        for row, token in enumerate(input_ids[:, -1].tolist()):
            self.push(row, token)
        return torch.tensor([reason is not None for reason in self.reasons], device=input_ids.device)

    def push(self, row: int, token: int, logprob: float | None = None) -> str | None:
        """Record the row's next token; the row's stop reason once it has one (None: keep going)."""
        if self.reasons[row] is None:
            kept = len(self.generated[row])
            self.reasons[row] = self._step(row, token)
            if logprob is not None and len(self.generated[row]) > kept:
                self.logprobs[row].append(logprob)
        return self.reasons[row]

    def row_logprobs(self, row: int) -> list[float] | None:
        """The row's token log-probabilities, or None when they were not recorded for every token."""
        values = self.logprobs[row]
        return values if len(values) == len(self.generated[row]) else None

    def _step(self, row: int, token: int) -> str | None:
        if token in self.eos_ids:
            return "eos"
        tokens = self.generated[row]
        tokens.append(token)
        closed = False
        if self.limits is not None:
            start = self.thought_start[row]
            if self._may_close(token) and THOUGHT_END in self.decode(tokens[max(start, len(tokens) - self.window):]):
                self.thoughts[row] += 1
                reason = closed_thought_stop(self.decode(tokens[start:]), self.thoughts[row], self.limits)
                if reason:
                    return reason
                self.thought_start[row] = len(tokens)
                closed = True
                if self.limits.room_for_thought and self.max_new[row] - len(tokens) < self.limits.max_thought_tokens:
                    return "max_tokens"  # the next thought could not finish inside the budget
            elif len(tokens) - start >= self.limits.max_thought_tokens:
                return "thought_cap"
        if len(tokens) >= self.max_new[row]:
            return "max_tokens"
        if closed and self.stop_at_thought_end:
            return "thought"
        return None

    def _may_close(self, token: int) -> bool:
        if token not in self.may_close:
            self.may_close[token] = THOUGHT_END[-1] in self.decode([token])
        return self.may_close[token]
