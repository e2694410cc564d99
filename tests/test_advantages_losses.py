import math

import pytest
import torch

from resetrl.advantages import ADVANTAGES, assign_advantages
from resetrl.errors import ResetRLError
from resetrl.groups import Group
from resetrl.losses import LossInputs, aggregate, policy_loss, ratio_diagnostics
from resetrl.scoring import Sample


def test_group_norm_hand_computed():
    # rewards 1,0,0,0: mean 0.25, population std sqrt(0.1875) = 0.4330
    advantages = ADVANTAGES.get("group_norm")(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    std = math.sqrt(0.1875)
    assert torch.allclose(advantages, torch.tensor([0.75 / std, -0.25 / std, -0.25 / std, -0.25 / std]))
    assert torch.equal(ADVANTAGES.get("group_norm")(torch.ones(4)), torch.zeros(4))


def test_mean_only_and_rloo():
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert torch.allclose(ADVANTAGES.get("mean_only")(rewards), torch.tensor([0.5, -0.5, 0.5, -0.5]))
    # RLOO: 1 - mean(0,1,0) = 2/3; 0 - mean(1,1,0) = -2/3
    assert torch.allclose(ADVANTAGES.get("rloo")(rewards), torch.tensor([2 / 3, -2 / 3, 2 / 3, -2 / 3]))


def test_unknown_estimator_lists_names():
    with pytest.raises(ResetRLError, match="group_norm"):
        ADVANTAGES.get("gae")


def _sample(reward):
    return Sample("p", "fresh", [1], [2], 0, [], [], None, reward, "answer", 1)


def test_advantages_are_per_group():
    groups = [Group(0, "p", "fresh", [_sample(1.0), _sample(0.0)]), Group(1, "p", "reset", [_sample(1.0), _sample(1.0)])]
    assign_advantages(groups, "group_norm")
    assert [s.advantage for s in groups[0].samples] == [1.0, -1.0]
    assert [s.advantage for s in groups[1].samples] == [0.0, 0.0]


def _inputs(mask):
    logprobs = torch.randn(2, 4, requires_grad=True)
    return logprobs, LossInputs(logprobs=logprobs, old_logprobs=logprobs.detach(),
                                advantages=torch.tensor([1.5, -0.5]), mask=mask, normalizer=2)


@pytest.mark.parametrize("name", ["pg", "clip"])
def test_gradient_is_zero_on_masked_tokens(name):
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]], dtype=torch.float32)
    logprobs, inputs = _inputs(mask)
    policy_loss(name, inputs, aggregation="seq-mean-token-mean").backward()
    assert torch.all(logprobs.grad[mask == 0] == 0)
    assert torch.all(logprobs.grad[mask == 1] != 0)


def test_pg_matches_formula():
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.float32)
    logprobs, inputs = _inputs(mask)
    loss = policy_loss("pg", inputs)
    expected = -(1.5 * logprobs[0, 2:].mean() + -0.5 * logprobs[1].mean()) / 2
    assert torch.allclose(loss, expected)


def test_clip_on_policy_gradient_equals_pg():
    # With one update per batch the ratio is 1, so PPO-clip's gradient is the policy gradient's.
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.float32)
    for aggregation in ("token-mean", "seq-mean-token-mean"):
        logprobs, inputs = _inputs(mask)
        policy_loss("clip", inputs, aggregation=aggregation).backward()
        clip_grad = logprobs.grad.clone()
        logprobs.grad = None
        policy_loss("pg", inputs, aggregation=aggregation).backward()
        assert torch.allclose(clip_grad, logprobs.grad)


def test_clip_clips_large_ratios():
    logprobs = torch.zeros(1, 1, requires_grad=True)
    inputs = LossInputs(logprobs=logprobs, old_logprobs=torch.tensor([[-1.0]]), advantages=torch.tensor([1.0]),
                        mask=torch.ones(1, 1))
    loss = policy_loss("clip", inputs, clip_eps=0.2)
    loss.backward()
    diagnostics = ratio_diagnostics(inputs, clip_eps=0.2)
    assert torch.isclose(loss, torch.tensor(-1.2)) and logprobs.grad.item() == 0  # ratio e > 1.2: clipped
    # The ratio diagnostics: r = e, bound by the clip; (r - 1) - log r = e - 2.
    assert diagnostics["clipped_tokens"] == 1.0 and diagnostics["trained_tokens"] == 1.0
    assert diagnostics["ratio_max_deviation"] == pytest.approx(math.e - 1)
    assert diagnostics["approx_kl_sum"] == pytest.approx(math.e - 2)


def test_ratio_diagnostics_count_only_trained_tokens_in_the_advantage_direction():
    logprobs = torch.log(torch.tensor([[1.5, 0.5, 1.5], [1.5, 0.5, 2.0]]))  # old log-probabilities 0: r = exp(lp)
    inputs = LossInputs(logprobs=logprobs, old_logprobs=torch.zeros(2, 3), advantages=torch.tensor([1.0, -1.0]),
                        mask=torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]))
    diagnostics = ratio_diagnostics(inputs, clip_eps=0.2)
    # Row 0 (A > 0): 1.5 is bound, 0.5 is not; row 1 (A < 0): 0.5 is bound, 2.0 is off the mask.
    assert diagnostics["clipped_tokens"] == 3.0 and diagnostics["trained_tokens"] == 5.0
    assert diagnostics["ratio_max_deviation"] == pytest.approx(0.5)


def test_token_mean_aggregation():
    per_token = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    mask = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    assert aggregate(per_token, mask, "token-mean", 3).item() == pytest.approx(3.0)
    assert aggregate(per_token, mask, "seq-mean-token-mean", 2).item() == pytest.approx((2.0 + 3.5) / 2)


def test_verl_grpo_estimator():
    """Rule 9: verl's grpo: (r - mean) / (sample std + 1e-6); a group of one gets 0."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    std = math.sqrt(sum((r - 0.5) ** 2 for r in (1, 0, 0, 1)) / 3)  # ddof 1
    expected = [(r - 0.5) / (std + 1e-6) for r in (1, 0, 0, 1)]
    assert ADVANTAGES.get("grpo")(rewards).tolist() == pytest.approx(expected, rel=1e-12)
    assert ADVANTAGES.get("grpo")(torch.tensor([1.0], dtype=torch.float64)).tolist() == [0.0]
    assert ADVANTAGES.get("grpo")(torch.ones(4, dtype=torch.float64)).tolist() == [0.0] * 4
    # the SRPO estimator on the same rewards: population std, so larger advantages
    assert ADVANTAGES.get("group_norm")(rewards).tolist() == pytest.approx([1, -1, -1, 1])


def test_micro_token_mean_averages_each_micro_batch_token_mean():
    """Rule 10: verl's legacy worker: each micro-batch's own token mean, the micro-batches averaged."""
    from resetrl.losses import aggregation_normalizer

    first = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 1.0, 1.0]])
    second = torch.tensor([[10.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]])
    normalizer = aggregation_normalizer("micro-token-mean", sequences=2, tokens=4, micro_batches=2)
    total = sum(aggregate(values, mask, "micro-token-mean", normalizer) for values, mask in (first, second))
    assert float(total) == pytest.approx((2.0 + 10.0) / 2)
    # one token mean over the whole batch instead: 16 / 4
    token = sum(aggregate(values, mask, "token-mean", aggregation_normalizer("token-mean", 2, 4, 2))
                for values, mask in (first, second))
    assert float(token) == pytest.approx(4.0)


def test_low_var_kl_is_clamped_k3():
    """Rule 21: verl's low_var_kl: k3 with the log-ratio clamped to +-20 and the value to +-10."""
    from resetrl.losses import kl_k3, kl_low_var

    logprobs = torch.tensor([[-1.0, -1.0, -30.0]])
    ref = torch.tensor([[-1.2, -0.5, -1.0]])
    assert kl_low_var(logprobs, ref)[0, :2].tolist() == pytest.approx(kl_k3(logprobs, ref)[0, :2].tolist())
    assert float(kl_low_var(logprobs, ref)[0, 2]) == 10.0  # exp(29) - 29 - 1, clamped
    assert float(kl_k3(logprobs, ref)[0, 2]) > 1e12


def test_each_loss_takes_only_its_own_knobs_and_policy_loss_adds_the_kl_term():
    from resetrl.config import TrainConfig
    from resetrl.losses import kl_k3, loss_knobs

    train = TrainConfig(clip_eps=0.3, dual_clip=2.0)
    assert loss_knobs("pg", train, {}) == {}
    assert loss_knobs("clip", train, {"keep_below_prob": 0.9}) == {"clip_eps": 0.3, "dual_clip": 2.0, "keep_below_prob": 0.9}
    assert loss_knobs("shaped_offpolicy", train, {"shaping_gamma": 0.1}) == {"shaping_gamma": 0.1}
    with pytest.raises(ValueError, match="loss 'pg' takes no shaping_gamma"):
        loss_knobs("pg", train, {"shaping_gamma": 0.1})
    mask = torch.ones(2, 4)
    logprobs, inputs = _inputs(mask)
    inputs.ref_logprobs = logprobs.detach() - 0.5
    with_kl = policy_loss("pg", inputs, "token-mean", kl_coef=0.1, kl_estimator="k3")
    without = policy_loss("pg", inputs, "token-mean")
    expected = 0.1 * (kl_k3(logprobs, inputs.ref_logprobs) * mask).sum() / inputs.normalizer
    assert torch.isclose(with_kl - without, expected)
