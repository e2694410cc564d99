"""Reset rollouts, the policy-advantage estimator, and the certificate that an improvement is real.

One reset rollout (Kakade and Langford 2002, docs/method.md section 8): draw a reset state s ~ mu,
try an action a ~ Uniform(Y), then follow pi to the end and observe the 0/1 reward R. With the
candidate greedy policy pi_hat fixed in advance,

    x = |Y| (pi_hat(a|s) - pi(a|s)) (R - b),   b = R_max / 2 = 1/2,

is an unbiased estimate of the policy advantage
A_mu(pi_hat) = E_{s~mu} sum_a (pi_hat(a|s) - pi(a|s)) Q^pi(s, a) = E_{s~mu}[A^pi(s, pi_hat)]
(the constant baseline b cancels because sum_a (pi_hat(a|s) - pi(a|s)) = 0). The uniform action
choice is where the |Y| in the sample bounds comes from. The baseline makes (R - b)^2 = 1/4 for
either outcome, so every reset contributes the worst-case second moment the bounds assume (R_max^2
scale), whatever the success rates of the problem; without it a reset whose chain almost surely
fails would look less noisy than one whose chain almost surely succeeds.

Samples needed to certify (the lab's definition). Reset rollouts are drawn one stream at a time and
looked at only at checkpoints n_j = ceil(n_0 g^(j + u)) (n_0 = 32, g = 2^(1/4), u ~ Uniform[0, 1)
drawn once per stream: a grid fixed in advance would round every count up to the same few values and
bias the slopes against p by where the true counts happen to fall between them). At checkpoint j the
empirical-Bernstein lower confidence bound (Maurer and Pontil 2009, Theorem 4) at level
delta_j = delta / ((j + 1)(j + 2)) is computed,

    LCB_n = mean_n - sqrt(2 V_n ln(2/delta_j) / n) - 7 B ln(2/delta_j) / (3 (n - 1)),

with V_n the sample variance and B the range of x, known in advance from pi and pi_hat. Since
sum_j delta_j = delta, all LCBs hold at once with probability >= 1 - delta, so the LCB at a
data-dependent stopping time is still a valid (1 - delta) bound. The stream stops at the first
checkpoint where LCB_n >= margin * mean_n (margin 1/2): the advantage is then certified positive
*and* known to within a factor 1/margin, which is what CPI's step size needs (a bound that only just
clears 0 would allow a step of size ~0). The number of rollouts drawn by then is the *samples
needed to certify*; it is a deterministic function of the seed.

Speed: the terminal reward of a rollout from (s, a) is Bernoulli(Q^pi(s, a)) exactly, so the number
of rollouts per (s, a) in a batch is multinomial and their successes binomial. Drawing those counts
has the same law as simulating every rollout (mdp.rollout; tests check the two agree) and costs the
same for 10 rollouts or 10^10, which lets the lab measure random resets at small p exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from resetrl.cpi.config import CPICertifyConfig
from resetrl.cpi.mdp import Evaluation, Policy
from resetrl.cpi.resets import ResetDistribution

BASELINE = 0.5  # b = R_max / 2 (module docstring)


def checkpoint_size(config: CPICertifyConfig, index: float) -> float:
    """n_j = n_0 g^j (rounded up for real streams; left real for the exact calculation)."""
    return config.first_checkpoint * config.growth**index


def confidence_log_term(config: CPICertifyConfig, index: float) -> float:
    """ln(2 / delta_j) with delta_j = delta / ((j + 1)(j + 2)): the union bound over checkpoints."""
    delta = 1.0 - config.confidence
    return math.log(2.0 * (index + 1.0) * (index + 2.0) / delta)


@dataclass(frozen=True)
class ResetRollouts:
    """Outcome counts of a batch of reset rollouts: tries[h][s, a] rollouts were started at state s of
    step h with action a, successes[h][s, a] of them ended with reward 1."""

    tries: list[np.ndarray]
    successes: list[np.ndarray]


@dataclass(frozen=True)
class Certificate:
    """Result of a certification stream.

    rollouts: reset rollouts drawn; estimate: their mean of x; lower_bound: the (1 - delta) LCB at the
    stop; certified: whether the stop rule fired before max_rollouts.
    """

    rollouts: int
    estimate: float
    lower_bound: float
    certified: bool


def sample_reset_rollouts(
    evaluation: Evaluation, mu: ResetDistribution, num_rollouts: int, rng: np.random.Generator
) -> ResetRollouts:
    """`num_rollouts` independent reset rollouts: s ~ mu, a ~ Uniform(Y), then pi to the end.

    Drawn as multinomial counts per (s, a) and binomial successes with p = Q^pi(s, a): the exact law
    of the individual rollouts (module docstring).
    """
    num_actions = evaluation.q_values[0].shape[1]
    start_probabilities = np.concatenate([np.repeat(m, num_actions) / num_actions for m in mu])
    start_probabilities = np.clip(start_probabilities, 0.0, None)
    start_probabilities /= start_probabilities.sum()
    tries = rng.multinomial(int(num_rollouts), start_probabilities)
    success_probabilities = np.clip(np.concatenate([q.ravel() for q in evaluation.q_values]), 0.0, 1.0)
    successes = rng.binomial(tries, success_probabilities)
    return ResetRollouts(_split_layers(tries, evaluation), _split_layers(successes, evaluation))


def _split_layers(flat: np.ndarray, evaluation: Evaluation) -> list[np.ndarray]:
    shapes = [q.shape for q in evaluation.q_values]
    bounds = np.cumsum([0] + [rows * cols for rows, cols in shapes])
    return [flat[start:stop].reshape(shape) for start, stop, shape in zip(bounds[:-1], bounds[1:], shapes)]


def estimator_weights(policy: Policy, greedy: Policy) -> list[np.ndarray]:
    """w[h][s, a] = |Y| (pi_hat(a|s) - pi(a|s)), so one reset rollout contributes x = w[s, a] (R - b)."""
    return [pi.shape[1] * (pi_hat - pi) for pi, pi_hat in zip(policy, greedy)]


def estimator_range(weights: list[np.ndarray]) -> float:
    """B: the width of the interval x = w (R - b) falls in, known before any rollout: R - b = +-1/2,
    so x ranges over [-max|w| / 2, max|w| / 2]."""
    return 2.0 * BASELINE * max(float(np.abs(w).max()) for w in weights)


def exact_estimator_moments(
    evaluation: Evaluation, mu: ResetDistribution, weights: list[np.ndarray]
) -> tuple[float, float]:
    """Exact mean (= A_mu(pi_hat)) and variance of one reset rollout's x, from Q^pi:
    E[x | s, a] = w (Q^pi(s, a) - b) and E[x^2 | s, a] = w^2 b^2, since (R - b)^2 = b^2 for R in {0, 1}."""
    num_actions = evaluation.q_values[0].shape[1]
    first = second = 0.0
    for m, w, q in zip(mu, weights, evaluation.q_values):
        start = m[:, None] / num_actions  # P(reset at s, try a)
        first += float(np.sum(start * w * (q - BASELINE)))
        second += float(np.sum(start * w**2)) * BASELINE**2
    return first, max(second - first**2, 0.0)


def empirical_bernstein_lower_bound(
    mean: float, sample_variance: float, count: int, value_range: float, log_term: float
) -> float:
    """Maurer and Pontil (2009), Theorem 4, for values in an interval of width `value_range`:
    E x >= mean - sqrt(2 V ln(2/delta) / n) - 7 B ln(2/delta) / (3 (n - 1)) with probability 1 - delta."""
    return (
        mean
        - math.sqrt(2.0 * sample_variance * log_term / count)
        - 7.0 * value_range * log_term / (3.0 * (count - 1))
    )


def certify(
    evaluation: Evaluation,
    mu: ResetDistribution,
    weights: list[np.ndarray],
    config: CPICertifyConfig,
    rng: np.random.Generator,
) -> Certificate:
    """Draw reset rollouts until the stop rule of the module docstring fires (or max_rollouts)."""
    value_range = estimator_range(weights)
    drawn, total, total_squares = 0, 0.0, 0.0
    mean = lower_bound = 0.0
    index = 0
    grid_offset = rng.random()  # u: the stream's random phase of the checkpoint grid
    while True:
        target = max(math.ceil(checkpoint_size(config, index + grid_offset)), drawn + 1)
        if target > config.max_rollouts:
            return Certificate(drawn, mean, lower_bound, certified=False)
        batch = sample_reset_rollouts(evaluation, mu, target - drawn, rng)
        for tries, successes, w in zip(batch.tries, batch.successes, weights):
            total += float(np.sum(w * (successes - BASELINE * tries)))  # sum of w (R - b)
            total_squares += float(np.sum(w**2 * tries)) * BASELINE**2  # (R - b)^2 = b^2
        drawn = target
        mean = total / drawn
        sample_variance = max(total_squares - drawn * mean**2, 0.0) / (drawn - 1)
        lower_bound = empirical_bernstein_lower_bound(
            mean, sample_variance, drawn, value_range, confidence_log_term(config, index)
        )
        if mean > 0.0 and lower_bound >= config.margin * mean:
            return Certificate(drawn, mean, lower_bound, certified=True)
        index += 1


def exact_rollouts_to_certify(
    mean: float, variance: float, value_range: float, config: CPICertifyConfig
) -> float:
    """The deterministic equivalent of `certify`: the (real) number of rollouts n at which the stop
    rule fires when the sample mean and variance equal their exact values, with the checkpoint index
    j = log_g(n / n_0) taken as real (the random grid phase u makes real-valued stops the right
    comparison; sampled counts exceed this by about half a grid step on average). Infinite when the
    advantage is not positive or n > max_rollouts.

    Solved by bisection on log n: the slack (1 - margin) mean - sqrt(2 var L_j / n) - 7 B L_j / (3(n-1))
    increases with n (L_j grows like log log n).
    """
    if mean <= 0.0:
        return math.inf

    def slack(log_n: float) -> float:
        n = math.exp(log_n)
        index = max(0.0, math.log(n / config.first_checkpoint) / math.log(config.growth))
        log_term = confidence_log_term(config, index)
        return (
            (1.0 - config.margin) * mean
            - math.sqrt(2.0 * variance * log_term / n)
            - (7.0 * value_range * log_term / (3.0 * (n - 1.0)))
        )

    low, high = math.log(config.first_checkpoint), math.log(config.max_rollouts)
    if slack(high) < 0.0:
        return math.inf
    if slack(low) >= 0.0:
        return float(config.first_checkpoint)
    for _ in range(100):
        middle = 0.5 * (low + high)
        low, high = (low, middle) if slack(middle) >= 0.0 else (middle, high)
    return math.exp(high)
