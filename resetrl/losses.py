"""Policy losses (docs/method.md section 4, item 7), one function per loss with one shared signature.

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
    # [B, R] truncated importance weights min(pi_trainer_old / pi_engine, C) of the policy term (TIS), detached
    token_weights: torch.Tensor | None = None

    def weighted(self, per_token: torch.Tensor) -> torch.Tensor:
        """The policy term's per-token loss times the importance weights, where there are any."""
        return per_token if self.token_weights is None else per_token * self.token_weights


def truncated_importance_weights(trainer_logprobs: torch.Tensor, engine_logprobs: torch.Tensor, cap: float,
                                 mask: torch.Tensor) -> torch.Tensor:
    """Truncated importance sampling (TIS; verl's tis_imp_ratio_cap): min(pi_trainer / pi_engine, cap)
    per trained token, both the probability of the sampled token under the weights that sampled it,
    0 off the mask. A sample the engine drew too rarely for the trainer's taste counts up to `cap`
    times; one it drew too often counts less. 1 where the two agree."""
    ratio = torch.exp((trainer_logprobs - engine_logprobs).clamp(-20, 20))  # as the clip loss: no overflow
    return torch.where(mask.bool(), ratio.clamp(max=cap), 0.0)


@AGGREGATIONS.register("seq-mean-token-mean")
def seq_mean_token_mean(per_token: torch.Tensor, mask: torch.Tensor, normalizer: float) -> torch.Tensor:
    """The mean over sequences of each one's token mean (`normalizer`: the step's sequences)."""
    per_sequence = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_sequence.sum() / normalizer


@AGGREGATIONS.register("token-mean")
def token_mean(per_token: torch.Tensor, mask: torch.Tensor, normalizer: float) -> torch.Tensor:
    """The mean over all trained tokens of the step (`normalizer`: the step's trained tokens)."""
    return (per_token * mask).sum() / normalizer


@AGGREGATIONS.register("micro-token-mean")
def micro_token_mean(per_token: torch.Tensor, mask: torch.Tensor, normalizer: float) -> torch.Tensor:
    """Each micro-batch's own token mean, averaged over the mini-batch's micro-batches (`normalizer`:
    their number): verl's legacy worker, so the reference's clip loss and its GRPO baseline."""
    return (per_token * mask).sum() / mask.sum().clamp(min=1) / normalizer


def aggregation_normalizer(mode: str, sequences: int, tokens: int, micro_batches: int) -> float:
    """What `mode` divides a micro-batch's sum by, so that the micro-batches of one optimizer step
    add up to the step's loss."""
    return {"seq-mean-token-mean": sequences, "token-mean": tokens, "micro-token-mean": micro_batches}[mode] or 1


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str, normalizer: float) -> torch.Tensor:
    return AGGREGATIONS.get(mode)(per_token, mask, normalizer)


def default_aggregation(loss: str) -> str:
    """A loss's own aggregation (its `aggregation` default): pg -> seq-mean-token-mean, clip -> token-mean."""
    return inspect.signature(LOSSES.get(loss)).parameters["aggregation"].default


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi || ref) estimate exp(ref - log pi) - (ref - log pi) - 1 (k3, always >= 0)."""
    difference = ref_logprobs - logprobs
    return torch.exp(difference) - difference - 1


def kl_low_var(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """verl's `low_var_kl` (the reference's): k3 with the log-ratio clamped to +-20 and the value
    to +-10, so one token far from the reference cannot blow the loss up."""
    difference = (ref_logprobs - logprobs).clamp(-20, 20)
    return (torch.exp(difference) - difference - 1).clamp(-10, 10)


KL_ESTIMATORS = {"low_var_kl": kl_low_var, "k3": kl_k3}


@LOSSES.register("pg")
def policy_gradient(inputs: LossInputs, clip_eps: float = 0.2, dual_clip: float = 3.0,
                    aggregation: str = "seq-mean-token-mean", kl_coef: float = 0.0,
                    kl_estimator: str = "low_var_kl") -> torch.Tensor:
    """On-policy REINFORCE (the reference's main loss): L = -mean_seq[A_i * mean_t log pi(y_t)].
    No ratio, no clipping; a KL term is added only when kl_coef > 0."""
    per_token = inputs.weighted(-inputs.advantages[:, None] * inputs.logprobs)
    if kl_coef > 0 and inputs.ref_logprobs is not None:
        per_token = per_token + kl_coef * KL_ESTIMATORS[kl_estimator](inputs.logprobs, inputs.ref_logprobs)
    return aggregate(per_token, inputs.mask, aggregation, inputs.normalizer)


@LOSSES.register("clip")
def ppo_clip(inputs: LossInputs, clip_eps: float = 0.2, dual_clip: float = 3.0,
             aggregation: str = "token-mean", kl_coef: float = 0.0, kl_estimator: str = "low_var_kl") -> torch.Tensor:
    """PPO-clip surrogate with dual clip for negative advantages (Ye et al. 2020), optional k3 KL."""
    advantages = inputs.advantages[:, None]
    ratio = torch.exp((inputs.logprobs - inputs.old_logprobs).clamp(-20, 20))  # as verl: no overflow
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_eps, 1 + clip_eps)
    per_token = torch.maximum(unclipped, clipped)
    # Dual clip bounds the loss of a negative-advantage token whose ratio has grown large.
    per_token = torch.where(advantages < 0, torch.minimum(per_token, -advantages * dual_clip), per_token)
    per_token = inputs.weighted(per_token)
    if kl_coef > 0 and inputs.ref_logprobs is not None:
        per_token = per_token + kl_coef * KL_ESTIMATORS[kl_estimator](inputs.logprobs, inputs.ref_logprobs)
    return aggregate(per_token, inputs.mask, aggregation, inputs.normalizer)
