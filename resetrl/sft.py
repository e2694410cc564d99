"""Supervised warm-up on the task's correct thought-format chains (`resetrl sft`, or `warmup.steps`).

A small model that never writes the format gets no reward signal; a short warm-up teaches the
format and leaves accuracy room to improve by RL."""

from __future__ import annotations

import random

import torch
from tqdm import tqdm

from resetrl.errors import ResetRLError
from resetrl.logprobs import collate, response_logprobs
from resetrl.thoughts import format_chain


def warmup_examples(runtime, problems) -> list[tuple[list[int], list[int]]]:
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
    """`steps` AdamW steps of next-token loss on reference chains; returns the loss per step."""
    if steps <= 0:
        return []
    pairs = warmup_examples(runtime, problems)
    rng = random.Random(seed)
    model = runtime.model
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    order: list[int] = []
    for _ in tqdm(range(steps), desc="warm-up", unit="step"):
        if len(order) < batch_size:
            order += rng.sample(range(len(pairs)), len(pairs))
        batch = [pairs[i] for i in order[:batch_size]]
        del order[:batch_size]
        optimizer.zero_grad()
        total_tokens = sum(len(response) for _, response in batch)
        step_loss = 0.0
        for start in range(0, len(batch), micro_batch_size):
            micro = batch[start:start + micro_batch_size]
            tokens = collate([p for p, _ in micro], [r for _, r in micro], [0] * len(micro), runtime.pad_id)
            logprobs = response_logprobs(model, tokens)
            loss = -(logprobs * tokens.loss_mask.to(logprobs.device)).sum() / total_tokens
            loss.backward()
            step_loss += loss.item()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(step_loss)
    return losses
