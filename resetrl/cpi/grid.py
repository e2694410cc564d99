"""One point of the CPI lab's grids: the first CPI iteration from the uniform policy on
`pivot_chain(H, |Y|, p)` with a reset distribution (and the noisy oracle's q), sampled over seeds
beside its exact (dynamic-programming) counterpart."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from resetrl.cpi.config import CPICertifyConfig, CPIProblemConfig
from resetrl.cpi.cpi import cpi_iteration, exact_greedy, mix, step_size
from resetrl.cpi.estimate import (
    estimator_range,
    estimator_weights,
    exact_estimator_moments,
    exact_rollouts_to_certify,
)
from resetrl.cpi.mdp import PivotChain, evaluate, improvable_mask, pivot_chain, reach_probability, uniform_policy
from resetrl.cpi.resets import improvable_mass, reset_distribution

RESETS = ("random", "oracle", "noisy-oracle")


@dataclass
class ExactPoint:
    """Dynamic-programming quantities of one grid point (first CPI iteration, uniform policy)."""

    reach: float  # P(a chain passes through an improvable state): equals p by construction
    improvable_mass: float  # P(a reset lands on an improvable state)
    advantage: float  # A_mu(pi_hat)
    variance: float  # variance of one reset rollout's estimate
    rollouts: float  # deterministic equivalent of the samples needed to certify
    improvement: float  # J(pi') - J(pi) with alpha from LCB = margin * A_mu(pi_hat)


@dataclass
class GridPoint:
    """One (reset, p, q) point: exact quantities and one entry per seed of the sampled ones."""

    reset: str
    p: float
    q: float
    exact: ExactPoint
    rollouts: list[int] = field(default_factory=list)
    improvements: list[float] = field(default_factory=list)
    estimates: list[float] = field(default_factory=list)
    lower_bounds: list[float] = field(default_factory=list)
    certified: list[bool] = field(default_factory=list)


def seed_key(seed: int, reset: str, p: float, q: float) -> list[int]:
    """Entropy for one grid point's generators: the base seed and the point itself, so a point's
    streams do not change when other points are added to or removed from a grid."""
    return [seed, *reset.encode(), round(p * 10**9), round(q * 10**9)]


def problem_chain(problem: CPIProblemConfig, p: float) -> PivotChain:
    """The configured pivot chain at reach probability p."""
    return pivot_chain(problem.horizon, problem.num_actions, p, problem.success_sound, problem.success_error)


def exact_point(
    problem: CPIProblemConfig,
    p: float,
    reset: str,
    q: float,
    certify_config: CPICertifyConfig,
    keep_ties: bool = False,
) -> ExactPoint:
    """The exact counterpart of a grid point: no sampling, only dynamic programming."""
    chain = problem_chain(problem, p)
    policy = uniform_policy(chain.mdp)
    evaluation = evaluate(chain.mdp, policy)
    improvable = improvable_mask(evaluation, problem.tau)
    mu = reset_distribution(reset, evaluation, improvable, q)
    greedy = exact_greedy(evaluation, keep_ties)
    weights = estimator_weights(policy, greedy)
    advantage, variance = exact_estimator_moments(evaluation, mu, weights)
    rollouts = exact_rollouts_to_certify(advantage, variance, estimator_range(weights), certify_config)
    alpha = step_size(certify_config.margin * advantage, chain.mdp.horizon)
    improvement = evaluate(chain.mdp, mix(policy, greedy, alpha)).objective - evaluation.objective
    return ExactPoint(
        reach=reach_probability(chain.mdp, policy, improvable),
        improvable_mass=improvable_mass(mu, improvable),
        advantage=advantage,
        variance=variance,
        rollouts=rollouts,
        improvement=improvement,
    )


def measure_point(
    problem: CPIProblemConfig,
    p: float,
    reset: str,
    q: float,
    certify_config: CPICertifyConfig,
    seeds: int,
    key: list[int],
) -> GridPoint:
    """Run the first CPI iteration `seeds` times (independent certification streams)."""
    point = GridPoint(reset, p, q, exact_point(problem, p, reset, q, certify_config))
    chain = problem_chain(problem, p)
    policy = uniform_policy(chain.mdp)
    for seed_index in range(seeds):
        rng = np.random.default_rng([*key, seed_index])
        step, _ = cpi_iteration(chain.mdp, policy, reset, problem.tau, certify_config, rng, oracle_accuracy=q)
        assert step.certificate is not None
        point.rollouts.append(step.rollouts)
        point.improvements.append(step.improvement)
        point.estimates.append(step.certificate.estimate)
        point.lower_bounds.append(step.certificate.lower_bound)
        point.certified.append(step.certificate.certified)
    return point
