"""Advantage estimators, one per group (docs/method.md section 4, item 6). Each maps a group's rewards
to per-sample advantages; reset groups and fresh groups are handled alike. A group whose samples
carry a tree path (SPO-Tree) gets one advantage per tree node, each from the node's siblings; a
sample's shaped reward (SCoRe) stands in for its reward. Neither needs to know which method
built the group."""

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


@ADVANTAGES.register("reward")
def raw_reward(rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE without a baseline (SCoRe): A_i = r_i, no centring, no normalisation."""
    return rewards.clone()


@ADVANTAGES.register("rloo")
def leave_one_out(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO: A_i = r_i - mean of the other rewards of the group."""
    n = rewards.numel()
    if n < 2:
        return torch.zeros_like(rewards)
    return rewards - (rewards.sum() - rewards) / (n - 1)


def advantage_reward(sample) -> float:
    """The reward an advantage is computed from: the shaped one where the rollout shaped it."""
    return sample.reward if sample.shaped_reward is None else sample.shaped_reward


def assign_advantages(groups, estimator: str) -> None:
    """Write each sample's advantage from its own group's rewards (per tree node for a tree group)."""
    function = ADVANTAGES.get(estimator)
    for group in groups:
        if group.samples and group.samples[0].tree_path is not None:
            assign_tree_advantages(group.samples, function)
            continue
        rewards = torch.tensor([advantage_reward(s) for s in group.samples], dtype=torch.float64)
        for sample, advantage in zip(group.samples, function(rewards).tolist()):
            sample.advantage = float(advantage)


def assign_tree_advantages(leaves, function) -> None:
    """SPO-Tree (Guo et al. 2025, section 5): V(leaf) = its reward, V(node) = the mean reward of its
    leaves, and each node's advantage is `function` over the values of the node and its siblings
    (mean_only: V(node) - their mean). A leaf's `segment_advantages` hold one per node of its path;
    its `advantage` is its own (the last node's)."""
    depth = len(leaves[0].tree_path)
    for sample in leaves:
        sample.segment_advantages = [0.0] * depth
    for level in range(depth):
        nodes: dict[tuple, list] = {}  # node -> its leaves
        for sample in leaves:
            nodes.setdefault(tuple(sample.tree_path[:level + 1]), []).append(sample)
        families: dict[tuple, list[tuple]] = {}  # parent -> its child nodes
        for node in nodes:
            families.setdefault(node[:-1], []).append(node)
        for siblings in families.values():
            values = torch.tensor([sum(advantage_reward(s) for s in nodes[node]) / len(nodes[node])
                                   for node in siblings], dtype=torch.float64)
            for node, advantage in zip(siblings, function(values).tolist()):
                for sample in nodes[node]:
                    sample.segment_advantages[level] = float(advantage)
    for sample in leaves:
        sample.advantage = sample.segment_advantages[-1]


def token_advantages(samples, width: int) -> torch.Tensor:
    """[B, width] advantages of the trained tokens (as `logprobs.collate` aligns them): a sample's
    advantage on every token, or each tree node's on that node's segment."""
    values = torch.zeros((len(samples), width), dtype=torch.float32)
    for row, sample in enumerate(samples):
        values[row] = sample.advantage
        if sample.segment_advantages is not None:
            for start, advantage in zip(sample.segment_starts, sample.segment_advantages):
                values[row, max(0, start - sample.train_start):] = advantage
    return values


def with_reward_kl(advantages: torch.Tensor, coefficients: torch.Tensor, old_logprobs: torch.Tensor,
                   ref_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SCoRe's KL penalty inside the reward: each token's reward loses beta * (log pi_old - log pi_ref)
    / T, and the advantage is the sequence's summed reward, so every token of sequence i gets
    A_i - beta_i * mean_t (log pi_old - log pi_ref). `coefficients`: beta per sequence [B]."""
    lengths = mask.sum(-1).clamp(min=1)
    penalty = ((old_logprobs - ref_logprobs) * mask).sum(-1) / lengths
    return advantages - (coefficients * penalty)[:, None]
