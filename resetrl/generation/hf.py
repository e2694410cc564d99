"""Generation with Hugging Face transformers (`model.generate`), on CPU or GPU.

Rows are sorted by context length and batched; per-row stop rules (the thought format's) run in a
StoppingCriteria, so a batch keeps going only while some row still needs tokens.
"""

from __future__ import annotations

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from resetrl.generation.base import BACKENDS, ChainRequest, GeneratedChain, GenerationBackend, SamplingParams
from resetrl.thoughts import THOUGHT_END, ChainLimits, closed_thought_stop


class RowStopper(StoppingCriteria):
    """Tracks every row's new tokens and stops it by its own rules. With `limits` None only
    end-of-sequence and the row's token cap apply (free text)."""

    def __init__(self, decode, eos_ids: set[int], max_new: list[int], limits: ChainLimits | None,
                 prefix_thoughts: list[int]):
        self.decode, self.eos_ids, self.max_new, self.limits = decode, eos_ids, max_new, limits
        self.generated: list[list[int]] = [[] for _ in max_new]
        self.reasons: list[str | None] = [None] * len(max_new)
        self.thought_start = [0] * len(max_new)
        self.thoughts = list(prefix_thoughts)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        for row, token in enumerate(input_ids[:, -1].tolist()):
            if self.reasons[row] is None:
                self.reasons[row] = self._step(row, token)
        return torch.tensor([reason is not None for reason in self.reasons], device=input_ids.device)

    def _step(self, row: int, token: int) -> str | None:
        if token in self.eos_ids:
            return "eos"
        tokens = self.generated[row]
        tokens.append(token)
        if self.limits is not None:
            thought = self.decode(tokens[self.thought_start[row]:])
            if THOUGHT_END in thought:
                self.thoughts[row] += 1
                reason = closed_thought_stop(thought, self.thoughts[row], self.limits)
                if reason:
                    return reason
                self.thought_start[row] = len(tokens)
            elif len(tokens) - self.thought_start[row] >= self.limits.max_thought_tokens:
                return "thought_cap"
        if len(tokens) >= self.max_new[row]:
            return "max_tokens"
        return None


@BACKENDS.register("hf")
class HFBackend(GenerationBackend):
    def __init__(self, model, tokenizer, batch_size: int = 64):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {token for token in eos + [tokenizer.eos_token_id] if token is not None}
        self.tokens_generated = 0

    def generate_chains(self, requests: list[ChainRequest], sampling: SamplingParams,
                        limits: ChainLimits) -> list[list[GeneratedChain]]:
        rows = [(index, request) for index, request in enumerate(requests) for _ in range(request.n)]
        contexts = [request.context_ids for _, request in rows]
        caps = [max(1, limits.max_total_tokens - request.prefix_tokens) for _, request in rows]
        prior = [request.prefix_thoughts for _, request in rows]
        outputs = self._run(contexts, sampling, caps, limits, prior)
        results: list[list[GeneratedChain]] = [[] for _ in requests]
        for (index, _), (ids, reason) in zip(rows, outputs):
            results[index].append(GeneratedChain(ids=ids, stop_reason=reason))
        return results

    def generate_text(self, prompts: list[list[int]], sampling: SamplingParams,
                      max_new_tokens: int) -> list[list[int]]:
        outputs = self._run(prompts, sampling, [max_new_tokens] * len(prompts), None, [0] * len(prompts))
        return [ids for ids, _ in outputs]

    @torch.no_grad()
    def _run(self, contexts, sampling, caps, limits, prior) -> list[tuple[list[int], str]]:
        # Sorting by length keeps padding (wasted compute) small within each batch.
        order = sorted(range(len(contexts)), key=lambda row: len(contexts[row]))
        outputs: list[tuple[list[int], str] | None] = [None] * len(contexts)
        was_training = self.model.training
        self.model.eval()
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            stopper = RowStopper(self.tokenizer.decode, self.eos_ids, [caps[row] for row in chunk], limits,
                                 [prior[row] for row in chunk])
            self._generate_batch([contexts[row] for row in chunk], sampling, max(stopper.max_new), stopper)
            for position, row in enumerate(chunk):
                outputs[row] = (stopper.generated[position], stopper.reasons[position] or "max_tokens")
                self.tokens_generated += len(stopper.generated[position])
        self.model.train(was_training)
        return outputs

    def _generate_batch(self, contexts: list[list[int]], sampling: SamplingParams, max_new: int,
                        stopper: RowStopper) -> None:
        device = next(self.model.parameters()).device
        width = max(len(context) for context in contexts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(contexts), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, context in enumerate(contexts):  # left padding: every row's new tokens line up
            input_ids[row, width - len(context):] = torch.tensor(context)
            attention_mask[row, width - len(context):] = 1
        greedy = sampling.temperature <= 0
        self.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            do_sample=not greedy,
            temperature=None if greedy else sampling.temperature,
            top_p=None if greedy else sampling.top_p,
            top_k=None if greedy else sampling.top_k,
            max_new_tokens=max_new,
            stopping_criteria=StoppingCriteriaList([stopper]),
            pad_token_id=pad,
        )
