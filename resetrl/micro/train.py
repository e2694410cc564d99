"""Next-token training of the micro model on (prompt, response) examples: loss on responses only."""

from __future__ import annotations

import math
import random

import torch
from tqdm import tqdm

from resetrl.logprobs import collate, response_logprobs
from resetrl.micro.data import Example


def cosine_lr(step: int, total: int, peak: float, final: float, warmup: int) -> float:
    """Linear warm-up to `peak`, then cosine decay to `final` (final = peak: constant)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * progress))


def train_on_examples(model, examples: list[Example], steps: int, batch_size: int, lr: float, seed: int,
                      pad_id: int, desc: str, final_lr: float | None = None, warmup: int = 20,
                      weight_decay: float = 0.01) -> list[float]:
    """`steps` AdamW steps on shuffled batches, learning rate warmed up to `lr` then decayed to
    `final_lr` (default: lr, constant); the loss per step. The loss is the mean over examples of each
    response's mean token NLL, so a 4-token localization answer weighs as much as a 40-token chain
    (a token mean would give its one decisive token a hundredth of the batch's gradient)."""
    final_lr = lr if final_lr is None else final_lr
    rng = random.Random(f"micro/{desc}/{seed}")
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    model.train()
    order: list[int] = []
    losses = []
    progress = tqdm(range(steps), desc=desc, unit="step")
    for step in progress:
        if len(order) < batch_size:
            order += rng.sample(range(len(examples)), len(examples))
        batch = [examples[i] for i in order[:batch_size]]
        del order[:batch_size]
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, final_lr, warmup)
        tokens = collate([p for p, _ in batch], [r for _, r in batch], [0] * len(batch), pad_id)
        mask = tokens.loss_mask
        loss = -((response_logprobs(model, tokens) * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 0:
            progress.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return losses
