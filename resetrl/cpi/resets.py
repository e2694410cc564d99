"""Reset distributions mu: where CPI's advantage-estimation rollouts start (docs/method.md section 8).

Every entry has the same signature: given the exact evaluation of the current policy, the mask of
improvable states and the oracle's accuracy q, it returns mu as one array per step h < H
(mu[h][s] = probability that a reset lands on state s of step h; all entries sum to 1), or None when
it has nowhere to reset.

- "random" (CPI-RR, RRPO's analogue): a fresh on-policy chain, then a step chosen uniformly,
  mu = d^pi = (1/H) sum_h d^pi_h.
- "oracle" (CPI-CARO): a credit-assignment oracle admits only improvable states,
  mu = d^pi restricted to improvable states and renormalised. None when no improvable state is
  reachable: CPI-CARO has converged.
- "noisy-oracle" (SRPO's analogue, the model's self-localisation playing the oracle): the oracle's
  pick with probability q, otherwise a random reset, mu = q mu_oracle + (1 - q) mu_random.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from resetrl.cpi.mdp import Evaluation
from resetrl.registry import Registry

ResetDistribution = list[np.ndarray]
ResetFn = Callable[[Evaluation, list[np.ndarray], float], "ResetDistribution | None"]

RESET_DISTRIBUTIONS: Registry[ResetFn] = Registry("reset distribution")


@RESET_DISTRIBUTIONS.register("random")
def random_resets(
    evaluation: Evaluation, improvable: list[np.ndarray], oracle_accuracy: float
) -> ResetDistribution:
    """CPI-RR: a uniformly chosen step of a fresh on-policy chain, mu(h, s) = d^pi_h(s) / H."""
    horizon = len(evaluation.q_values)
    return [occupancy / horizon for occupancy in evaluation.occupancy[:horizon]]


@RESET_DISTRIBUTIONS.register("oracle")
def oracle_resets(
    evaluation: Evaluation, improvable: list[np.ndarray], oracle_accuracy: float
) -> ResetDistribution | None:
    """CPI-CARO: random resets that the oracle admits only at improvable states (rejection)."""
    admitted = [
        np.where(mask, mu, 0.0) for mu, mask in zip(random_resets(evaluation, improvable, 1.0), improvable)
    ]
    total = sum(float(mu.sum()) for mu in admitted)
    if total <= 0.0:
        return None
    return [mu / total for mu in admitted]


@RESET_DISTRIBUTIONS.register("noisy-oracle")
def noisy_oracle_resets(
    evaluation: Evaluation, improvable: list[np.ndarray], oracle_accuracy: float
) -> ResetDistribution:
    """SRPO stand-in: right (an oracle reset) with probability q, otherwise a random reset."""
    random = random_resets(evaluation, improvable, oracle_accuracy)
    oracle = oracle_resets(evaluation, improvable, oracle_accuracy)
    if oracle is None:  # nothing improvable: the localiser can only point somewhere at random
        return random
    return [oracle_accuracy * o + (1.0 - oracle_accuracy) * r for o, r in zip(oracle, random)]


def reset_distribution(
    name: str, evaluation: Evaluation, improvable: list[np.ndarray], oracle_accuracy: float
):
    """Look up `name` in the registry (the error lists the known names) and build mu."""
    return RESET_DISTRIBUTIONS.get(name)(evaluation, improvable, oracle_accuracy)


def improvable_mass(mu: ResetDistribution, improvable: list[np.ndarray]) -> float:
    """Probability that a reset drawn from mu lands on an improvable state."""
    return float(sum(m[mask].sum() for m, mask in zip(mu, improvable)))
