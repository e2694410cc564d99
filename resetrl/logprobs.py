"""Per-token log-probabilities of responses, computed only where the loss needs them.

Rows are left-padded so every response ends at the last position; the LM head then runs on the
last R positions only (R = the longest response in the micro-batch), so no full-vocabulary logits
are kept for prompt tokens."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenBatch:
    input_ids: torch.Tensor  # [B, L] left-padded prompt + response
    attention_mask: torch.Tensor  # [B, L]
    targets: torch.Tensor  # [B, R] response tokens, right-aligned
    loss_mask: torch.Tensor  # [B, R] 1 on trained tokens (response from train_start on)


def collate(prompts: list[list[int]], responses: list[list[int]], train_starts: list[int],
            pad_id: int) -> TokenBatch:
    width = max(len(p) + len(r) for p, r in zip(prompts, responses))
    longest = max(max(len(r) for r in responses), 1)
    batch = len(prompts)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, width), dtype=torch.long)
    targets = torch.full((batch, longest), pad_id, dtype=torch.long)
    loss_mask = torch.zeros((batch, longest), dtype=torch.float32)
    for row, (prompt, response, train_start) in enumerate(zip(prompts, responses, train_starts)):
        sequence = prompt + response
        input_ids[row, width - len(sequence):] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, width - len(sequence):] = 1
        if response:
            targets[row, longest - len(response):] = torch.tensor(response, dtype=torch.long)
            loss_mask[row, longest - len(response) + train_start:] = 1.0
    return TokenBatch(input_ids, attention_mask, targets, loss_mask)


def response_logprobs(model, batch: TokenBatch) -> torch.Tensor:
    """log pi(y_t | context) for the last R tokens of every row: [B, R]."""
    device = next(model.parameters()).device
    input_ids = batch.input_ids.to(device)
    attention_mask = batch.attention_mask.to(device)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    longest = batch.targets.shape[1]
    # Logits at position t predict token t+1: keep the R+1 last positions, drop the final one.
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                   logits_to_keep=longest + 1, use_cache=False).logits[:, :-1, :].float()
    targets = batch.targets.to(device)
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
