"""The generation backend interface: sampling chains (fresh or from a reset prefix) and free text.

A backend gets token ids and returns token ids, so a reset prefix is re-entered exactly as the parent
generated it, with the log-probability of every sampled token (the loss's `old_logprobs`). The HF
transformers backend is in `hf.py`, the vLLM one in `vllm.py`; `resetrl.chains.sample_chains` is the
one entry point that turns their output into scored samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from resetrl.registry import Registry
from resetrl.thoughts import ChainLimits


GENERATION_MODES: Registry[str] = Registry("generation mode")
GENERATION_MODES.register("chain")("a whole chain per call, stopped by the thought rules")
GENERATION_MODES.register("thought")("one call per thought, stopped at </thought> (the reference code's loop)")


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
    logprobs: list[float] | None = None  # log pi(token) at temperature 1 under the sampling weights


class GenerationBackend:
    """Samples from the model it was built with. A backend that holds its own copy of the weights
    (vLLM) follows the model: `sync_weights` pushes them after an update, and a call made with stale
    weights pushes them first."""

    auto_mode = "chain"  # the generation mode `generation.mode: auto` means for this backend

    @classmethod
    def mode_for(cls, mode: str) -> str:
        """A configured generation mode (`generation.mode`), `auto` resolved to this backend's own."""
        return cls.auto_mode if mode == "auto" else mode

    @classmethod
    def from_config(cls, model, tokenizer, config, dtype: str = "float32") -> "GenerationBackend":
        """The backend for `config` (a `GenerationConfig`), computing in `dtype` (float32 or bfloat16)."""
        raise NotImplementedError

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

    def sync_weights(self) -> None:
        """Make the next call sample from the model's current weights (a no-op when it shares them)."""

    def release_memory(self) -> None:
        """Drop what was kept for reuse between calls (contexts' keys and values: stale once the
        weights change, and they change the arithmetic of a later batch); a no-op when nothing is."""

    def take_stats(self) -> dict[str, float]:
        """Counters since the last call (e.g. `tokens/discarded`, `time/weight_sync`), then reset."""
        return {}


def weights_version(model) -> tuple:
    """Changes whenever a parameter is replaced or modified in place (an optimizer step, a loaded
    checkpoint): what a cache of anything computed from the weights compares against."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


BACKENDS: Registry[type] = Registry("generation backend")
