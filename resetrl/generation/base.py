"""The generation backend interface: sampling chains (fresh or from a reset prefix) and free text.

A backend gets token ids and returns token ids, so a reset prefix is re-entered exactly as the parent
generated it. The HF transformers backend is in `hf.py`; a vLLM backend plugs in beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from resetrl.registry import Registry
from resetrl.thoughts import ChainLimits


@dataclass(frozen=True)
class SamplingParams:
    """temperature 0 means greedy decoding; top_k 0 means no top-k filter."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0


@dataclass
class ChainRequest:
    """Sample `n` chains after `context_ids` (the prompt, plus a reset prefix of `prefix_thoughts`
    thoughts and `prefix_tokens` tokens when resuming a parent)."""

    context_ids: list[int]
    n: int
    prefix_thoughts: int = 0
    prefix_tokens: int = 0


@dataclass
class GeneratedChain:
    ids: list[int]  # new tokens only, stop token excluded when it is end-of-sequence
    stop_reason: str  # answer | max_thoughts | thought_cap | max_tokens | eos


class GenerationBackend:
    def generate_chains(
        self, requests: list[ChainRequest], sampling: SamplingParams, limits: ChainLimits
    ) -> list[list[GeneratedChain]]:
        """For each request, its n chains, stopped by the thought-format rules."""
        raise NotImplementedError

    def generate_text(
        self, prompts: list[list[int]], sampling: SamplingParams, max_new_tokens: int
    ) -> list[list[int]]:
        """Free-form completions (localization, verification), ended by end-of-sequence or the cap."""
        raise NotImplementedError


BACKENDS: Registry[type] = Registry("generation backend")
