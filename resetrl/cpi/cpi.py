"""Conservative Policy Iteration with resets (Kakade and Langford 2002; docs/method.md section 8).

One iteration, from policy pi:

1. build the reset distribution mu (resets.py: random, oracle, noisy-oracle);
2. choose the greedy policy pi_hat: exactly, argmax_a Q^pi(s, a) from dynamic programming, or from
   a batch of reset rollouts, argmax of the estimated Q (a practical learner);
3. certify its policy advantage A_mu(pi_hat) with a stream of fresh reset rollouts (estimate.py),
   obtaining a (1 - delta) lower bound LCB;
4. step conservatively, pi' = (1 - alpha) pi + alpha pi_hat, with alpha = min(1, LCB / (4 H R_max)):
   Kakade and Langford's alpha = (1 - gamma) A / (4 R) with the horizon H in place of 1/(1 - gamma).
   It is at most a quarter of the maximiser A / (H eps) of the CPI lower bound
   alpha H A - alpha^2 H^2 eps / 2 (eps <= R_max), so that bound certifies a positive improvement.

The improvement J(pi') - J(pi) is then computed exactly. With R_max = 1 (a 0/1 terminal reward),
an iteration that resets at improvable states with probability rho certifies an advantage of about
rho * tau', takes alpha ~ rho tau' / H, and gains alpha * p * tau' in J, where p is the probability
of reaching an improvable state and tau' the advantage there: p^2 for random resets (rho ~ p),
p for the oracle (rho = 1). That is Paper A's claim, which measure.py measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from resetrl.cpi.config import CPICertifyConfig
from resetrl.cpi.estimate import (
    Certificate,
    certify,
    estimator_range,
    estimator_weights,
    exact_estimator_moments,
    sample_reset_rollouts,
)
from resetrl.cpi.mdp import (
    TIE_TOLERANCE,
    Evaluation,
    LayeredMDP,
    Policy,
    evaluate,
    improvable_mask,
    reach_probability,
)
from resetrl.cpi.resets import improvable_mass, reset_distribution

REWARD_MAX = 1.0  # terminal 0/1 reward, so |A^pi(s, a)| <= 1


@dataclass(frozen=True)
class CPIStep:
    """What one CPI iteration did.

    objective / next_objective: J(pi) and J(pi') (exact). reach: P(a chain of pi visits an improvable
    state), the lab's p. improvable_mass: P(a reset from mu lands on an improvable state).
    rollouts: reset rollouts spent (proposal + certification). exact_advantage: A_mu(pi_hat), exact.
    exact_variance: variance of one rollout's estimate x, exact. certificate: the certification
    stream's result. step_size: alpha (0 when nothing was certified). stopped: why the run ends
    here, or "" when it goes on.
    """

    objective: float
    next_objective: float
    reach: float
    improvable_mass: float
    rollouts: int
    exact_advantage: float
    exact_variance: float
    estimator_range: float
    certificate: Certificate | None
    step_size: float
    stopped: str = ""

    @property
    def improvement(self) -> float:
        return self.next_objective - self.objective


def exact_greedy(evaluation: Evaluation, keep_ties: bool = False) -> Policy:
    """pi_hat(s) = argmax_a Q^pi(s, a), the lowest action index among ties.

    A learner that estimates Q cannot tell an exact tie from a near one, so it commits to some action
    everywhere (here: the lowest index). With keep_ties, states where no action has a positive
    advantage keep pi instead: that learner already knows where nothing can be gained, which is
    credit assignment by another name (docs/cpi.md discusses what it changes).
    """
    greedy = []
    for pi, q, advantage in zip(evaluation.policy, evaluation.q_values, evaluation.advantages):
        choice = np.eye(q.shape[1])[np.argmax(q >= q.max(axis=1, keepdims=True) - TIE_TOLERANCE, axis=1)]
        if keep_ties:
            nothing_to_gain = advantage.max(axis=1) <= TIE_TOLERANCE
            choice = np.where(nothing_to_gain[:, None], pi, choice)
        greedy.append(choice)
    return greedy


def estimated_greedy(policy: Policy, tries: list[np.ndarray], successes: list[np.ndarray]) -> Policy:
    """argmax_a of the estimated Q (successes / tries) where every action was tried at least once;
    elsewhere pi itself (no evidence, no change)."""
    greedy = []
    for pi, n, wins in zip(policy, tries, successes):
        all_tried = (n > 0).all(axis=1)
        q_estimate = wins / np.maximum(n, 1)
        choice = np.eye(pi.shape[1])[np.argmax(q_estimate, axis=1)]
        greedy.append(np.where(all_tried[:, None], choice, pi))
    return greedy


def step_size(lower_bound: float, horizon: int) -> float:
    """alpha = min(1, LCB / (4 H R_max)); 0 when the bound does not certify a positive advantage."""
    return float(np.clip(lower_bound / (4.0 * horizon * REWARD_MAX), 0.0, 1.0))


def mix(policy: Policy, greedy: Policy, alpha: float) -> Policy:
    """CPI's conservative update pi' = (1 - alpha) pi + alpha pi_hat."""
    return [(1.0 - alpha) * pi + alpha * pi_hat for pi, pi_hat in zip(policy, greedy)]


def cpi_iteration(
    mdp: LayeredMDP,
    policy: Policy,
    reset: str,
    tau: float,
    certify_config: CPICertifyConfig,
    rng: np.random.Generator,
    oracle_accuracy: float = 1.0,
    proposal_rollouts: int | None = None,
    keep_ties: bool = False,
) -> tuple[CPIStep, Policy]:
    """One CPI iteration (module docstring). With proposal_rollouts None the greedy policy is the
    exact one; otherwise it is estimated from that many reset rollouts, counted in `rollouts`."""
    evaluation = evaluate(mdp, policy)
    improvable = improvable_mask(evaluation, tau)
    reach = reach_probability(mdp, policy, improvable)
    mu = reset_distribution(reset, evaluation, improvable, oracle_accuracy)
    if mu is None:
        nothing = CPIStep(
            objective=evaluation.objective,
            next_objective=evaluation.objective,
            reach=reach,
            improvable_mass=0.0,
            rollouts=0,
            exact_advantage=0.0,
            exact_variance=0.0,
            estimator_range=0.0,
            certificate=None,
            step_size=0.0,
            stopped="no improvable state left",
        )
        return nothing, policy

    spent = 0
    if proposal_rollouts is None:
        greedy = exact_greedy(evaluation, keep_ties)
    else:
        proposal = sample_reset_rollouts(evaluation, mu, proposal_rollouts, rng)
        greedy = estimated_greedy(policy, proposal.tries, proposal.successes)
        spent += proposal_rollouts

    weights = estimator_weights(policy, greedy)
    advantage, variance = exact_estimator_moments(evaluation, mu, weights)
    certificate = certify(evaluation, mu, weights, certify_config, rng)
    spent += certificate.rollouts
    alpha = step_size(certificate.lower_bound, mdp.horizon) if certificate.certified else 0.0
    next_policy = mix(policy, greedy, alpha)
    step = CPIStep(
        objective=evaluation.objective,
        next_objective=evaluate(mdp, next_policy).objective,
        reach=reach,
        improvable_mass=improvable_mass(mu, improvable),
        rollouts=spent,
        exact_advantage=advantage,
        exact_variance=variance,
        estimator_range=estimator_range(weights),
        certificate=certificate,
        step_size=alpha,
        stopped="" if certificate.certified else "no improvement certified within max_rollouts",
    )
    return step, next_policy


def run_cpi(mdp: LayeredMDP, policy: Policy, iterations: int, **iteration) -> list[CPIStep]:
    """Iterate CPI until `iterations` are done or an iteration cannot go on (its `stopped` says why).

    iteration: `cpi_iteration`'s other arguments by name (reset, tau, certify_config, rng, ...), the
    same for every iteration; rng is one stream across them.
    """
    steps = []
    for _ in range(iterations):
        step, policy = cpi_iteration(mdp, policy, **iteration)
        steps.append(step)
        if step.stopped:
            break
    return steps
