"""Supervised training on (prompt, response) pairs, next-token loss on the response only: the one
loop behind the warm-up on the task's correct thought-format chains (`resetrl sft`, `warmup.steps`)
and the micro model's build (micro/train.py holds its recipe).

A small model that never writes the format gets no reward signal; a short warm-up teaches the
format and leaves accuracy room to improve by RL."""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
from tqdm import tqdm

from resetrl.errors import ResetRLError
from resetrl.logprobs import collate, response_logprobs
from resetrl.precision import compute, warmup_dtype
from resetrl.thoughts import format_chain

Example = tuple[list[int], list[int]]  # (prompt token ids, response token ids)


def train_supervised(model, examples: list[Example], steps: int, batch_size: int, lr: float, rng: random.Random,
                     pad_id: int, *, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                     lr_at: Callable[[int], float] | None = None, per_example: bool = False,
                     micro_batch_size: int | None = None, desc: str = "supervised",
                     dtype: str = "float32") -> list[float]:
    """`steps` AdamW steps on batches drawn epoch by epoch in `rng`'s shuffled order, gradient norm
    clipped to 1; returns the loss per step.

    lr_at: the learning rate of each step (default: `lr` throughout). per_example: the loss is the
    mean over examples of each response's mean token NLL, so a 4-token localization answer weighs
    as much as a 40-token chain (a token mean would give its one decisive token a hundredth of the
    batch's gradient); otherwise the mean over all response tokens of the batch. micro_batch_size:
    examples per forward/backward (gradient accumulation; default: the whole batch). dtype: the
    forwards' precision (bfloat16: under bf16 autocast, resetrl/precision.py).
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, betas=betas)
    micro_batch_size = micro_batch_size or batch_size
    model.train()
    order: list[int] = []
    losses = []
    progress = tqdm(range(steps), desc=desc, unit="step")
    for step in progress:
        if len(order) < batch_size:
            order += rng.sample(range(len(examples)), len(examples))
        batch = [examples[i] for i in order[:batch_size]]
        del order[:batch_size]
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
        optimizer.zero_grad(set_to_none=True)
        total_tokens = sum(len(response) for _, response in batch)
        step_loss = 0.0
        for start in range(0, len(batch), micro_batch_size):
            micro = batch[start:start + micro_batch_size]
            tokens = collate([p for p, _ in micro], [r for _, r in micro], [0] * len(micro), pad_id)
            with compute(dtype, next(model.parameters()).device):
                logprobs = response_logprobs(model, tokens)
            mask = tokens.loss_mask.to(logprobs.device)
            if per_example:
                per_response = (logprobs * mask).sum(-1) / mask.sum(-1).clamp(min=1)
                loss = -per_response.mean() * (len(micro) / len(batch))
            else:
                loss = -(logprobs * mask).sum() / total_tokens
            loss.backward()
            step_loss += loss.item()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(step_loss)
        if step % 10 == 0:
            progress.set_postfix(loss=f"{step_loss:.3f}")
    return losses


def warmup_examples(runtime, problems) -> list[Example]:
    pairs = []
    for problem in problems:
        chain = runtime.task.reference_chain(problem)
        if chain is None:
            raise ResetRLError(f"task {runtime.task.name!r} cannot write reference chains; warm-up needs them")
        response = runtime.tokenizer(format_chain(chain), add_special_tokens=False).input_ids
        pairs.append((runtime.prompt_ids(problem), response))
    return pairs


def supervised_warmup(runtime, problems, steps: int, batch_size: int, lr: float, seed: int = 0,
                      micro_batch_size: int = 8) -> list[float]:
    """`steps` AdamW steps of next-token loss (token mean) on reference chains; returns the loss per step."""
    if steps <= 0:
        return []
    return train_supervised(runtime.model, warmup_examples(runtime, problems), steps, batch_size, lr,
                            random.Random(seed), runtime.pad_id, micro_batch_size=micro_batch_size, desc="warm-up",
                            dtype=warmup_dtype(runtime.config))
