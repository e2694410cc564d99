"""Advantage estimators, one per group (docs/method.md section 4, item 6). Each maps a group's rewards
to per-sample advantages; reset groups and fresh groups are handled alike."""

from __future__ import annotations

import torch

from resetrl.registry import Registry

ADVANTAGES: Registry = Registry("advantage estimator")


@ADVANTAGES.register("group_norm")
def group_normalized(rewards: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """GRPO: A_i = (r_i - mean r) / std r, population std; all zeros when std < eps."""
    std = rewards.std(unbiased=False)
    if std < eps:
        return torch.zeros_like(rewards)
    return (rewards - rewards.mean()) / std


@ADVANTAGES.register("grpo")
def grpo_sample_std(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """verl's `grpo` estimator, the paper's GRPO baseline: A_i = (r_i - mean r) / (std r + 1e-6),
    sample std (n - 1); a group of one gets 0."""
    if rewards.numel() < 2:
        return torch.zeros_like(rewards)
    return (rewards - rewards.mean()) / (rewards.std(unbiased=True) + eps)


@ADVANTAGES.register("mean_only")
def mean_centered(rewards: torch.Tensor) -> torch.Tensor:
    """Dr. GRPO: A_i = r_i - mean r (no division by the std)."""
    return rewards - rewards.mean()


@ADVANTAGES.register("rloo")
def leave_one_out(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO: A_i = r_i - mean of the other rewards of the group."""
    n = rewards.numel()
    if n < 2:
        return torch.zeros_like(rewards)
    return rewards - (rewards.sum() - rewards) / (n - 1)


def assign_advantages(groups, estimator: str) -> None:
    """Write each sample's advantage from its own group's rewards."""
    function = ADVANTAGES.get(estimator)
    for group in groups:
        rewards = torch.tensor([s.reward for s in group.samples], dtype=torch.float64)
        for sample, advantage in zip(group.samples, function(rewards).tolist()):
            sample.advantage = float(advantage)
