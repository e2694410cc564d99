"""The SCoRe, Critique-GRPO and SPO-Tree losses on hand-made tensors, value and gradient, against a
direct transcription of their formulas (docs/methods.md; each written here loop by loop)."""

import math

import pytest
import torch

from resetrl.advantages import token_advantages, with_reward_kl
from resetrl.logprobs import _token_logprobs
from resetrl.losses import LossInputs, aggregation_normalizer, policy_loss
from resetrl.scoring import Sample

B, R = 3, 5


def tensors(seed=0):
    generator = torch.Generator().manual_seed(seed)
    logprobs = (-torch.rand(B, R, generator=generator) * 3).requires_grad_(True)
    old = (logprobs.detach() + 0.3 * torch.randn(B, R, generator=generator)).clamp(max=0)
    mask = torch.ones(B, R)
    mask[0, 3:] = 0  # a shorter first row
    mask[2, 4:] = 0
    return logprobs, old, mask


def clipped_term(ratio: float, advantage: float, eps=0.2, dual=3.0) -> float:
    """max(-A r, -A clip(r)), bounded by -A * dual for A < 0 (PPO dual clip)."""
    value = max(-advantage * ratio, -advantage * min(max(ratio, 1 - eps), 1 + eps))
    return min(value, -advantage * dual) if advantage < 0 else value


def test_critique_loss_matches_its_formula():
    logprobs, old, mask = tensors()
    entropy = torch.rand(B, R).requires_grad_(True)
    advantages = torch.tensor([0.875, -0.125, -0.125])
    off_policy = torch.tensor([True, False, False])
    gamma, coef, micro_batches = 0.1, 0.001, 2
    loss = policy_loss(
        "shaped_offpolicy", LossInputs(logprobs, old, advantages, mask, off_policy=off_policy, entropy=entropy,
                   normalizer=aggregation_normalizer("padded-length-mean", B, int(mask.sum()), micro_batches)),
        aggregation="padded-length-mean", shaping_gamma=gamma, entropy_coef=coef)
    expected = 0.0
    for i in range(B):
        for t in range(R):
            if not mask[i, t]:
                continue
            lp = logprobs[i, t]
            weight = lp.exp() / (lp.exp() + gamma) if off_policy[i] else (lp - old[i, t]).exp()
            expected = expected + (-advantages[i] * weight - coef * entropy[i, t])
    expected = expected / R / micro_batches  # summed tokens / padded length, averaged over micro-batches
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    grads = torch.autograd.grad(loss, (logprobs, entropy), retain_graph=True)
    expected_grads = torch.autograd.grad(expected, (logprobs, entropy))
    for got, want in zip(grads, expected_grads):
        assert torch.allclose(got, want, atol=1e-7)
    # The shaping's gradient w.r.t. log p is A * gamma p / (p + gamma)^2: largest near p = gamma.
    p = logprobs[0, 0].exp().item()
    assert grads[0][0, 0].item() == pytest.approx(-0.875 * gamma * p / (p + gamma) ** 2 / R / micro_batches, rel=1e-5)


def test_spo_probability_mask_is_a_per_trajectory_mean_over_kept_tokens():
    """SPO eq. 3: L = 1/B sum_s 1/Z_s sum_t M_t clip-term, M_t = 1[pi_old(y_t) < rho]."""
    logprobs, old, mask = tensors(1)
    old[1, :] = math.log(0.95)  # row 1: every token above rho, nothing kept
    old[0, 1] = math.log(0.99)
    per_token = torch.tensor([[0.5] * R, [-0.5] * R, [0.25, 0.25, -0.75, -0.75, -0.75]])
    rho = 0.9
    loss = policy_loss("clip", LossInputs(logprobs, old, per_token, mask, normalizer=B),
                       aggregation="seq-mean-token-mean", keep_below_prob=rho)
    expected = 0.0
    for i in range(B):
        kept = [t for t in range(R) if mask[i, t] and old[i, t].exp() < rho]
        if kept:
            terms = [clipped_term((logprobs[i, t] - old[i, t]).exp().item(), per_token[i, t].item()) for t in kept]
            expected += sum(terms) / len(kept)
    expected /= B
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    (gradient,) = torch.autograd.grad(loss, logprobs)
    assert torch.all(gradient[1] == 0) and gradient[0, 1] == 0  # masked tokens carry no gradient
    # Inside the clip range the gradient of a kept token is -A * ratio / (B * Z_s).
    ratio = (logprobs[2, 0] - old[2, 0]).exp().item()
    if 0.8 < ratio < 1.2:
        assert gradient[2, 0].item() == pytest.approx(-0.25 * ratio / (B * 5), rel=1e-5)


def test_spo_without_the_mask_is_the_plain_token_mean():
    logprobs, old, mask = tensors(2)
    per_token = torch.tensor([[0.5] * R, [-0.5] * R, [0.25, 0.25, -0.75, -0.75, -0.75]])
    loss = policy_loss("clip", LossInputs(logprobs, old, per_token, mask, normalizer=float(mask.sum())),
                       aggregation="token-mean")
    terms = [clipped_term((logprobs[i, t] - old[i, t]).exp().item(), per_token[i, t].item())
             for i in range(B) for t in range(R) if mask[i, t]]
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-6)


def test_score_reward_kl_and_its_clip_loss():
    """SCoRe: each token's reward loses beta (log pi_old - log pi_ref) / T; the advantage is the
    sequence's summed reward on every token; PPO-clip, token mean."""
    logprobs, old, mask = tensors(3)
    ref = old - 0.2 * torch.arange(R, dtype=torch.float32)
    shaped = torch.tensor([1.0, 21.0, -10.0])  # R(y1); R(y2) + 10 (R(y2) - R(y1)) for 0 -> 1 and 1 -> 0
    betas = torch.tensor([0.01, 0.01, 0.1])
    advantages = with_reward_kl(shaped[:, None].expand(B, R), betas, old, ref, mask)
    for i in range(B):
        length = int(mask[i].sum())
        penalty = sum((old[i, t] - ref[i, t]).item() for t in range(length)) / length
        assert advantages[i, 0].item() == pytest.approx(shaped[i].item() - betas[i].item() * penalty, rel=1e-6)
        assert torch.all(advantages[i] == advantages[i, 0])  # one advantage on every token
    tokens = float(mask.sum())
    loss = policy_loss("clip", LossInputs(logprobs, old, advantages, mask, normalizer=tokens), aggregation="token-mean")
    terms = [clipped_term((logprobs[i, t] - old[i, t]).exp().item(), advantages[i, t].item())
             for i in range(B) for t in range(R) if mask[i, t]]
    assert loss.item() == pytest.approx(sum(terms) / tokens, rel=1e-6)
    (gradient,) = torch.autograd.grad(loss, logprobs)
    for i, t in ((1, 0), (0, 2)):
        ratio = (logprobs[i, t] - old[i, t]).exp().item()
        if 0.8 < ratio < 1.2:
            assert gradient[i, t].item() == pytest.approx(-advantages[i, t].item() * ratio / tokens, rel=1e-5)


def test_tree_advantages_land_on_their_segments():
    def leaf(starts, values, train_start=0):
        sample = Sample("p", "leaf", [1], [0] * 9, train_start, [], [], None, 0.0, "answer", 0)
        sample.segment_starts, sample.segment_advantages, sample.advantage = starts, values, values[-1]
        return sample

    values = token_advantages([leaf([0, 4], [0.5, -0.25]), leaf([0, 6], [-0.5, 0.75], train_start=2)], 7)
    assert values[0].tolist() == [0.5] * 4 + [-0.25] * 3
    assert values[1].tolist() == [-0.5] * 4 + [0.75] * 3  # columns start at the sample's train_start


def test_entropy_matches_the_distribution():
    logits = torch.randn(2, 3, 11)
    targets = torch.randint(0, 11, (2, 3))
    logprobs, entropy = _token_logprobs(logits, targets, with_entropy=True)
    distribution = torch.distributions.Categorical(logits=logits)
    assert torch.allclose(entropy, distribution.entropy(), atol=1e-5)
    assert torch.allclose(logprobs, distribution.log_prob(targets), atol=1e-5)
    assert torch.equal(_token_logprobs(logits, targets), logprobs)
