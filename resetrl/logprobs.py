"""Per-token log-probabilities of the trained tokens, each shared context encoded once.

The samples of a group share a context (the prompt; for a reset group, prompt + reset prefix) and the
loss needs the log-probabilities of the trained tokens only. So a micro-batch runs in two stages:
1. every distinct context (all its tokens but the last) is encoded once, with gradients;
2. its keys and values are indexed out to the rows that continue it, and each row's own part (the
   last context token, then its trained tokens) attends to them; the LM head runs on that part only.
Gradients through a shared context add up over its rows: the gradient of running every row on its
own, up to rounding, for a fraction of the compute when contexts are long (a 250-token prompt with
4 to 8 chains of 64 to 256 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from resetrl.generation.cache_keyword import cache_keyword, output_cache


@dataclass
class TokenBatch:
    context_ids: torch.Tensor  # [C, Wc] distinct contexts without their last token, left-padded
    context_mask: torch.Tensor  # [C, Wc]
    row_context: torch.Tensor  # [B] the context each row continues
    tail_ids: torch.Tensor  # [B, Wt] last context token, then the trained tokens; right-padded
    tail_mask: torch.Tensor  # [B, Wt]
    tail_positions: torch.Tensor  # [B, Wt] position ids of the tail tokens
    targets: torch.Tensor  # [B, R] trained tokens, left-aligned (R = Wt - 1)
    loss_mask: torch.Tensor  # [B, R] 1 on trained tokens
    # [B, R] the sampling engine's log-probabilities of the trained tokens, aligned with loss_mask (0 off
    # it); None when a row has none (a backend that reports none, a prefix whose values are unknown).
    # The trainer's own of the same tokens are response_logprobs'.
    sampling_logprobs: torch.Tensor | None = None

    @property
    def trained_tokens(self) -> int:
        return int(self.loss_mask.sum())


def collate(prompts: list[list[int]], responses: list[list[int]], train_starts: list[int], pad_id: int,
            sampling_logprobs: list[list[float] | None] | None = None) -> TokenBatch:
    """Rows `prompt + response`, trained on `response[train_start:]`. Rows whose untrained part
    (prompt + response[:train_start]) is equal share one context. `sampling_logprobs`: per row the
    engine's log-probability of every response token, or None."""
    contexts: dict[tuple[int, ...], int] = {}
    row_context, tails = [], []
    for prompt, response, train_start in zip(prompts, responses, train_starts):
        sequence = prompt + response
        split = max(len(prompt) + train_start - 1, 0)  # the last untrained token starts the tail
        row_context.append(contexts.setdefault(tuple(sequence[:split]), len(contexts)))
        tails.append(sequence[split:])
    batch, context_width = len(tails), max(map(len, contexts))
    tail_width = max(map(len, tails))
    context_ids = torch.full((len(contexts), context_width), pad_id, dtype=torch.long)
    context_mask = torch.zeros((len(contexts), context_width), dtype=torch.long)
    for context, index in contexts.items():
        if context:
            context_ids[index, context_width - len(context):] = torch.tensor(context, dtype=torch.long)
            context_mask[index, context_width - len(context):] = 1
    context_lengths = {index: len(context) for context, index in contexts.items()}
    tail_ids = torch.full((batch, tail_width), pad_id, dtype=torch.long)
    tail_mask = torch.zeros((batch, tail_width), dtype=torch.long)
    tail_positions = torch.zeros((batch, tail_width), dtype=torch.long)
    for row, (tail, context) in enumerate(zip(tails, row_context)):
        tail_ids[row, :len(tail)] = torch.tensor(tail, dtype=torch.long)
        tail_mask[row, :len(tail)] = 1
        tail_positions[row, :len(tail)] = torch.arange(context_lengths[context], context_lengths[context] + len(tail))
    loss_mask = tail_mask[:, 1:].float()
    return TokenBatch(context_ids, context_mask, torch.tensor(row_context), tail_ids, tail_mask, tail_positions,
                      targets=tail_ids[:, 1:].clone(), loss_mask=loss_mask,
                      sampling_logprobs=_trained_part(sampling_logprobs, responses, train_starts, loss_mask.shape))


def _trained_part(sampling_logprobs: list[list[float] | None] | None, responses: list[list[int]],
                  train_starts: list[int], shape: torch.Size) -> torch.Tensor | None:
    """Every row's log-probabilities from its train_start, left-aligned as the targets; None unless
    every row has one per response token and none of the trained ones is NaN."""
    if sampling_logprobs is None or any(values is None or len(values) != len(response)
                                        for values, response in zip(sampling_logprobs, responses)):
        return None
    aligned = torch.zeros(shape, dtype=torch.float32)
    for row, (values, train_start) in enumerate(zip(sampling_logprobs, train_starts)):
        trained = values[train_start:]
        if any(value != value for value in trained):  # NaN: a prefix whose log-probabilities are unknown
            return None
        aligned[row, :len(trained)] = torch.tensor(trained, dtype=torch.float32)
    return aligned


def response_logprobs(model, batch: TokenBatch, share_contexts: bool = True, with_entropy: bool = False):
    """log pi(y_t | context) of every row's trained tokens: [B, R], aligned with `batch.loss_mask`;
    with `with_entropy`, (log-probabilities, the policy's entropy at each of those positions).
    `share_contexts=False` runs each row whole, its context included, in one forward pass (FSDP: its
    backward hooks follow a layer's outputs, not the keys and values a context leaves in the cache)."""
    device = next(model.parameters()).device
    cache, context_mask = None, torch.zeros((len(batch.row_context), 0), dtype=torch.long, device=device)
    if batch.context_ids.shape[1] and not share_contexts:
        rows = batch.row_context.to(device)
        context_mask = batch.context_mask.to(device)[rows]
        tail_width = batch.tail_ids.shape[1]
        logits = model(input_ids=torch.cat([batch.context_ids.to(device)[rows], batch.tail_ids.to(device)], dim=1),
                       attention_mask=torch.cat([context_mask, batch.tail_mask.to(device)], dim=1),
                       position_ids=torch.cat([(context_mask.cumsum(-1) - 1).clamp(min=0),
                                               batch.tail_positions.to(device)], dim=1),
                       use_cache=False, logits_to_keep=tail_width).logits[:, :-1, :].float()
        return _token_logprobs(logits, batch.targets.to(device), with_entropy)
    if batch.context_ids.shape[1]:
        context_mask = batch.context_mask.to(device)
        positions = (context_mask.cumsum(-1) - 1).clamp(min=0)
        cache = output_cache(model(input_ids=batch.context_ids.to(device), attention_mask=context_mask,
                                   position_ids=positions, use_cache=True, logits_to_keep=1))
        rows = batch.row_context.to(device)
        if len(rows) != context_mask.shape[0] or not torch.equal(rows, torch.arange(len(rows), device=device)):
            cache.batch_select_indices(rows)  # a differentiable gather: each row gets its context's cache
        context_mask = context_mask[rows]
    tail_width = batch.tail_ids.shape[1]
    attention_mask = torch.cat([context_mask.to(device), batch.tail_mask.to(device)], dim=1)
    logits = model(input_ids=batch.tail_ids.to(device), attention_mask=attention_mask,
                   position_ids=batch.tail_positions.to(device), **{cache_keyword(model): cache},
                   use_cache=cache is not None, logits_to_keep=tail_width).logits[:, :-1, :].float()
    return _token_logprobs(logits, batch.targets.to(device), with_entropy)


def _token_logprobs(logits: torch.Tensor, targets: torch.Tensor, with_entropy: bool = False):
    # log_softmax(x)[y] = x[y] - logsumexp(x), without a second [B, R, vocab] tensor.
    normalizer = torch.logsumexp(logits, dim=-1)
    logprobs = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - normalizer
    if not with_entropy:
        return logprobs
    # H = logsumexp(x) - sum softmax(x) x: one [B, R, vocab] tensor, only when an entropy bonus asks.
    return logprobs, normalizer - (torch.softmax(logits, dim=-1) * logits).sum(-1)
