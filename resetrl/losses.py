"""Policy losses (docs/method.md section 4, item 7), one function per loss, each taking only its own knobs.

A loss gives its per-token terms and the tokens they count on (`TokenLoss`); `policy_loss` adds the
KL term to the reference and aggregates them: the loss *summed* over the micro-batch and already
divided by the step's normalizer (`LossInputs.normalizer`), so gradient accumulation over
micro-batches gives the full-batch loss. What the ratio pi / pi_old says about the step is
`ratio_diagnostics` (as verl's `compute_policy_loss_*` return pg_clipfrac and ppo_kl beside the loss)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import NamedTuple

import torch

from resetrl.registry import Registry

LOSSES: Registry = Registry("loss")
AGGREGATIONS: Registry = Registry("loss aggregation")


@dataclass
class LossInputs:
    logprobs: torch.Tensor  # [B, R] under the current policy (with grad)
    old_logprobs: torch.Tensor  # [B, R] of the policy that sampled (detached)
    advantages: torch.Tensor  # [B], or [B, R] where tokens of one sequence differ (tree segments)
    mask: torch.Tensor  # [B, R] 1 on trained tokens
    ref_logprobs: torch.Tensor | None = None  # [B, R] of the reference policy, for a KL term
    normalizer: float = 1.0  # sequences in the step (seq-mean) or trained tokens (token-mean)
    # [B, R] truncated importance weights min(pi_trainer_old / pi_engine, C) of the policy term (TIS), detached
    token_weights: torch.Tensor | None = None
    off_policy: torch.Tensor | None = None  # [B] bool: sampled under another context (a refinement)
    entropy: torch.Tensor | None = None  # [B, R] of the current policy (with grad), for an entropy bonus

    def token_advantages(self) -> torch.Tensor:
        """[B, R] or [B, 1]: the advantages as they multiply per-token terms."""
        return self.advantages if self.advantages.dim() == 2 else self.advantages[:, None]

    def weighted(self, per_token: torch.Tensor) -> torch.Tensor:
        """The policy term's per-token loss times the importance weights, where there are any."""
        return per_token if self.token_weights is None else per_token * self.token_weights


class TokenLoss(NamedTuple):
    """A loss's per-token terms [B, R] and the mask they count on: `LossInputs.mask`, or fewer tokens
    (the clip loss's probability mask)."""

    per_token: torch.Tensor
    mask: torch.Tensor


def truncated_importance_weights(trainer_logprobs: torch.Tensor, engine_logprobs: torch.Tensor, cap: float,
                                 mask: torch.Tensor) -> torch.Tensor:
    """Truncated importance sampling (TIS; verl's tis_imp_ratio_cap): min(pi_trainer / pi_engine, cap)
    per trained token, both the probability of the sampled token under the weights that sampled it,
    0 off the mask. A sample the engine drew too rarely for the trainer's taste counts up to `cap`
    times; one it drew too often counts less. 1 where the two agree."""
    ratio = torch.exp((trainer_logprobs - engine_logprobs).clamp(-20, 20))  # as the clip loss: no overflow
    return torch.where(mask.bool(), ratio.clamp(max=cap), 0.0)


def ratio_diagnostics(inputs: LossInputs, clip_eps: float) -> dict[str, float]:
    """How far the policy has moved from the one that sampled, on the trained tokens, from the ratio
    r = pi / pi_old (unclamped, no gradient): its largest |r - 1|; how many tokens the clip bounds (r
    outside [1 - eps, 1 + eps] in the advantage's direction: CleanRL's clipfracs, verl's
    pg_clipfrac); the sum of (r - 1) - log r, CleanRL's approx_kl; and the tokens counted. Sums and
    a max, not means: the learner adds them over micro-batches and ranks, then divides."""
    with torch.no_grad():
        log_ratio = inputs.logprobs.detach() - inputs.old_logprobs
        ratio = log_ratio.exp()
        mask = inputs.mask
        signs = inputs.token_advantages()
        bound = ((signs > 0) & (ratio > 1 + clip_eps)) | ((signs < 0) & (ratio < 1 - clip_eps))
        return {"ratio_max_deviation": float(((ratio - 1).abs() * mask).max()),
                "clipped_tokens": float((bound * mask).sum()),
                "approx_kl_sum": float((((ratio - 1) - log_ratio) * mask).sum()),
                "trained_tokens": float(mask.sum())}


def divides_by(count: str):
    """Declares an aggregation's normalizer: the step's `sequences`, `tokens` or `micro_batches`,
    what each micro-batch's sum is divided by (`aggregation_normalizer`)."""
    def declare(aggregation):
        aggregation.divides_by = count
        return aggregation
    return declare


@AGGREGATIONS.register("seq-mean-token-mean")
@divides_by("sequences")
def seq_mean_token_mean(per_token: torch.Tensor, mask: torch.Tensor, normalizer: float) -> torch.Tensor:
    """The mean over sequences of each one's token mean (`normalizer`: the step's sequences)."""
    per_sequence = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_sequence.sum() / normalizer


@AGGREGATIONS.register("token-mean")
@divides_by("tokens")
def token_mean(per_token: torch.Tensor, mask: torch.Tensor, normalizer: float) -> torch.Tensor:
    """The mean over all trained tokens of the step (`normalizer`: the step's trained tokens)."""
    return (per_token * mask).sum() / normalizer


@AGGREGATIONS.register("micro-token-mean")
@divides_by("micro_batches")
def micro_token_mean(per_token: torch.Tensor, mask: torch.Tensor, normalizer: float) -> torch.Tensor:
    """Each micro-batch's own token mean, averaged over the mini-batch's micro-batches (`normalizer`:
    their number): verl's legacy worker, so the reference's clip loss and its GRPO baseline."""
    return (per_token * mask).sum() / mask.sum().clamp(min=1) / normalizer


@AGGREGATIONS.register("padded-length-mean")
@divides_by("micro_batches")
def padded_length_mean(per_token: torch.Tensor, mask: torch.Tensor, normalizer: float) -> torch.Tensor:
    """Each micro-batch's token sum divided by its padded response length, averaged over the
    mini-batch's micro-batches (`normalizer`: their number): Critique-GRPO's aggregation."""
    return (per_token * mask).sum() / max(per_token.shape[-1], 1) / normalizer


def aggregation_normalizer(mode: str, sequences: int, tokens: int, micro_batches: int) -> float:
    """What `mode` divides a micro-batch's sum by (the count it declares with `divides_by`), so
    that the micro-batches of one optimizer step add up to the step's loss."""
    counts = {"sequences": sequences, "tokens": tokens, "micro_batches": micro_batches}
    return counts[AGGREGATIONS.get(mode).divides_by] or 1


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str, normalizer: float) -> torch.Tensor:
    return AGGREGATIONS.get(mode)(per_token, mask, normalizer)


def aggregated_by(mode: str):
    """Declares a loss's own aggregation (`default_aggregation`), used unless the config names another."""
    def declare(loss):
        loss.aggregation = mode
        return loss
    return declare


def default_aggregation(loss: str) -> str:
    """A loss's own aggregation: pg -> seq-mean-token-mean, clip -> token-mean."""
    return LOSSES.get(loss).aggregation


def loss_knobs(loss: str, train, own: dict) -> dict:
    """The keyword options loss `loss` takes: the train section's fields it names (clip's clip_eps and
    dual_clip) and the method's own (`own`: SPO-Tree's keep_below_prob, Critique-GRPO's shaping_gamma
    and entropy_coef), each of which the loss must name."""
    names = set(inspect.signature(LOSSES.get(loss)).parameters) - {"inputs"}
    stray = sorted(set(own) - names)
    if stray:
        takes = ", ".join(sorted(names)) or "nothing"
        raise ValueError(f"loss {loss!r} takes no {', '.join(stray)} (it takes: {takes})")
    return {**{name: getattr(train, name) for name in sorted(names) if hasattr(train, name)}, **own}


def policy_loss(loss: str, inputs: LossInputs, aggregation: str | None = None, kl_coef: float = 0.0,
                kl_estimator: str = "low_var_kl", **knobs) -> torch.Tensor:
    """Loss `loss` of the micro-batch with its own `knobs`: its per-token terms, plus kl_coef times the
    KL estimate to the reference policy on every token (when kl_coef > 0 and reference log-probabilities
    are given), aggregated by `aggregation` (None: the loss's own) over its mask."""
    terms = LOSSES.get(loss)(inputs, **knobs)
    per_token = terms.per_token
    if kl_coef > 0 and inputs.ref_logprobs is not None:
        per_token = per_token + kl_coef * KL_ESTIMATORS[kl_estimator](inputs.logprobs, inputs.ref_logprobs)
    return aggregate(per_token, terms.mask, aggregation or default_aggregation(loss), inputs.normalizer)


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
@aggregated_by("seq-mean-token-mean")
def policy_gradient(inputs: LossInputs) -> TokenLoss:
    """On-policy REINFORCE (the reference's main loss): L = -mean_seq[A_i * mean_t log pi(y_t)].
    No ratio, no clipping, no knob (later mini-batches are off-policy all the same: the ratio
    diagnostics measure how far)."""
    return TokenLoss(inputs.weighted(-inputs.token_advantages() * inputs.logprobs), inputs.mask)


@LOSSES.register("clip")
@aggregated_by("token-mean")
def ppo_clip(inputs: LossInputs, clip_eps: float = 0.2, dual_clip: float = 3.0,
             keep_below_prob: float | None = None) -> TokenLoss:
    """PPO-clip surrogate with dual clip for negative advantages (Ye et al. 2020).

    `keep_below_prob` (SPO, Guo et al. 2025, eq. 3): only tokens whose old probability is below it
    are trained; with seq-mean-token-mean each sequence is then averaged over its kept tokens."""
    advantages = inputs.token_advantages()
    mask = inputs.mask
    if keep_below_prob is not None:
        mask = mask * (inputs.old_logprobs.exp() < keep_below_prob)
    ratio = torch.exp((inputs.logprobs - inputs.old_logprobs).clamp(-20, 20))  # as verl: no overflow
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_eps, 1 + clip_eps)
    per_token = torch.maximum(unclipped, clipped)
    # Dual clip bounds the loss of a negative-advantage token whose ratio has grown large.
    per_token = torch.where(advantages < 0, torch.minimum(per_token, -advantages * dual_clip), per_token)
    return TokenLoss(inputs.weighted(per_token), mask)


def probability_shaping(logprobs: torch.Tensor, gamma: float) -> torch.Tensor:
    """f(p) = p / (p + gamma): a token's weight grows fastest where p is small, so unlikely tokens of
    an off-policy sequence stay learnable (Critique-GRPO, after LUFFY)."""
    probability = logprobs.clamp(-20, 0).exp()
    return probability / (probability + gamma)


@LOSSES.register("shaped_offpolicy")
@aggregated_by("padded-length-mean")
def shaped_off_policy(inputs: LossInputs, shaping_gamma: float = 0.1, entropy_coef: float = 0.0) -> TokenLoss:
    """Critique-GRPO (Zhang et al. 2025): no clipping. On-policy tokens -A * pi / pi_old (log-ratio
    clamped to +-20); off-policy tokens (`inputs.off_policy` rows) -A * f(pi), f(p) = p / (p + gamma);
    minus entropy_coef * the policy's entropy on every trained token."""
    advantages = inputs.token_advantages()
    ratio = torch.exp((inputs.logprobs - inputs.old_logprobs).clamp(-20, 20))
    weight = ratio
    if inputs.off_policy is not None:
        weight = torch.where(inputs.off_policy[:, None], probability_shaping(inputs.logprobs, shaping_gamma), ratio)
    per_token = inputs.weighted(-advantages * weight)
    if entropy_coef > 0 and inputs.entropy is not None:
        per_token = per_token - entropy_coef * inputs.entropy
    return TokenLoss(per_token, inputs.mask)
