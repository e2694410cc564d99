"""Policy losses (method.md section 3, item 6), one function per loss with one shared signature.

Each returns the loss *summed* over the micro-batch and already divided by the step's normalizer
(`LossInputs.normalizer`), so gradient accumulation over micro-batches gives the full-batch loss."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from resetrl.registry import Registry

LOSSES: Registry = Registry("loss")
AGGREGATIONS: Registry = Registry("loss aggregation")


@dataclass
class LossInputs:
    logprobs: torch.Tensor  # [B, R] under the current policy (with grad)
    old_logprobs: torch.Tensor  # [B, R] of the policy that sampled (detached)
    advantages: torch.Tensor  # [B]
    mask: torch.Tensor  # [B, R] 1 on trained tokens
    ref_logprobs: torch.Tensor | None = None  # [B, R] of the reference policy, for a KL term
    normalizer: float = 1.0  # sequences in the step (seq-mean) or trained tokens (token-mean)


@AGGREGATIONS.register("seq-mean-token-mean")
def seq_mean_token_mean(per_token: torch.Tensor, mask: torch.Tensor, normalizer: float) -> torch.Tensor:
    """The mean over sequences of each one's token mean (`normalizer`: the step's sequences)."""
    per_sequence = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_sequence.sum() / normalizer


@AGGREGATIONS.register("token-mean")
def token_mean(per_token: torch.Tensor, mask: torch.Tensor, normalizer: float) -> torch.Tensor:
    """The mean over all trained tokens of the step (`normalizer`: the step's trained tokens)."""
    return (per_token * mask).sum() / normalizer


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str, normalizer: float) -> torch.Tensor:
    return AGGREGATIONS.get(mode)(per_token, mask, normalizer)


def default_aggregation(loss: str) -> str:
    """A loss's own aggregation (its `aggregation` default): pg -> seq-mean-token-mean, clip -> token-mean."""
    return inspect.signature(LOSSES.get(loss)).parameters["aggregation"].default


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi || ref) estimate exp(ref - log pi) - (ref - log pi) - 1 (k3, always >= 0)."""
    difference = ref_logprobs - logprobs
    return torch.exp(difference) - difference - 1


@LOSSES.register("pg")
def policy_gradient(inputs: LossInputs, clip_eps: float = 0.2, dual_clip: float = 3.0,
                    aggregation: str = "seq-mean-token-mean", kl_coef: float = 0.0) -> torch.Tensor:
    """On-policy REINFORCE (the reference's main loss): L = -mean_seq[A_i * mean_t log pi(y_t)].
    No ratio, no clipping; a KL term is added only when kl_coef > 0."""
    per_token = -inputs.advantages[:, None] * inputs.logprobs
    if kl_coef > 0 and inputs.ref_logprobs is not None:
        per_token = per_token + kl_coef * kl_k3(inputs.logprobs, inputs.ref_logprobs)
    return aggregate(per_token, inputs.mask, aggregation, inputs.normalizer)


@LOSSES.register("clip")
def ppo_clip(inputs: LossInputs, clip_eps: float = 0.2, dual_clip: float = 3.0,
             aggregation: str = "token-mean", kl_coef: float = 0.0) -> torch.Tensor:
    """PPO-clip surrogate with dual clip for negative advantages (Ye et al. 2020), optional k3 KL."""
    advantages = inputs.advantages[:, None]
    ratio = torch.exp(inputs.logprobs - inputs.old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_eps, 1 + clip_eps)
    per_token = torch.maximum(unclipped, clipped)
    # Dual clip bounds the loss of a negative-advantage token whose ratio has grown large.
    per_token = torch.where(advantages < 0, torch.minimum(per_token, -advantages * dual_clip), per_token)
    if kl_coef > 0 and inputs.ref_logprobs is not None:
        per_token = per_token + kl_coef * kl_k3(inputs.logprobs, inputs.ref_logprobs)
    return aggregate(per_token, inputs.mask, aggregation, inputs.normalizer)
