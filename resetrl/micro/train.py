"""The micro model's training recipe: the supervised loop (resetrl/sft.py) with a per-example loss,
a warmed-up cosine learning rate and the optimizer settings the micro build was tuned with."""

from __future__ import annotations

import math
import random

from resetrl.sft import Example, train_supervised


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
    `final_lr` (default: lr, constant), loss per example (`train_supervised`); the loss per step.
    Leaves the model in eval mode."""
    final_lr = lr if final_lr is None else final_lr
    losses = train_supervised(model, examples, steps, batch_size, lr, random.Random(f"micro/{desc}/{seed}"), pad_id,
                              weight_decay=weight_decay, betas=(0.9, 0.98),
                              lr_at=lambda step: cosine_lr(step, steps, lr, final_lr, warmup),
                              per_example=True, desc=desc)
    model.eval()
    return losses
