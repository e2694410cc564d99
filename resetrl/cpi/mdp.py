"""Finite-horizon decision problems shaped like reasoning, and their exact dynamic programs.

A problem is a *layered* MDP: states are grouped by step h = 0..H, an action at step h moves the
chain to a state of step h + 1, and the states of step H are terminal with a 0/1 reward (the
verifier's verdict). Policies are tables pi[h][s, a]. Everything here is exact: values, advantages,
state occupancies and reach probabilities come from backward/forward passes over the layers
(docs/method.md section 8: the quantities CPI's bounds are stated in).

The pivot-chain family
----------------------
`pivot_chain(horizon=H, num_actions=|Y|, p, success_sound, success_error)` builds the problem the
CPI lab studies. A chain has H steps; at each step the policy picks one of |Y| continuations.

- Most steps are *routine*: every continuation is an equally valid way to go on (they lead to the
  same next state), so every action has advantage exactly 0 there.
- With probability p the problem has one *pivotal* step, at a position k drawn uniformly from
  0..H-1. At the pivot, continuation 0 is sound and the other |Y| - 1 commit an error that no later
  step can undo (the chain is *derailed*).
- The terminal 0/1 reward is 1 with probability `success_sound` for a chain that never derailed
  (what is left is luck no step controls: slips, a noisy verifier) and `success_error` for a
  derailed one (a lucky guess).

States at step h (indices into the layer):

    0            on-track: no pivot ahead (a routine problem, or the pivot was passed soundly)
    1            derailed: the pivot was passed with an error
    2 + j        pivot ahead at step h + j, j = 0..H-1-h; j = 0 is the pivot itself

The terminal layer has the two states on-track and derailed. With Delta = success_sound -
success_error, the pivot's sound action has advantage (1 - pi(sound|pivot)) * Delta and no other
state has a nonzero advantage. So for tau < (1 - pi(sound|pivot)) * Delta the improvable states
(some action has advantage > tau) are exactly the pivots, and a trajectory of *any* policy passes
through one with probability p: reaching the pivot is decided by the problem, not by the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from resetrl.errors import ResetRLError

# A policy is one table per step: policy[h][s, a] = pi(a | state s of step h).
Policy = list[np.ndarray]

# Advantages closer to 0 than this are ties (routine states have exactly equal Q-values).
TIE_TOLERANCE = 1e-12

ON_TRACK, DERAILED, PIVOT_AHEAD = 0, 1, 2
SOUND_ACTION = 0


@dataclass(frozen=True)
class LayeredMDP:
    """A finite-horizon MDP with terminal 0/1 reward.

    initial: (n_0,) distribution of the first state.
    transitions: H arrays; transitions[h][s, a, s'] = P(state s' at step h+1 | state s at step h, a).
    success: (n_H,) probability that the terminal reward is 1 in each terminal state.
    state_names: for each step 0..H, a readable name per state (for reports).
    """

    initial: np.ndarray
    transitions: list[np.ndarray]
    success: np.ndarray
    state_names: list[list[str]]

    @property
    def horizon(self) -> int:
        return len(self.transitions)

    @property
    def num_actions(self) -> int:
        return self.transitions[0].shape[1]

    def layer_sizes(self) -> list[int]:
        return [len(names) for names in self.state_names]


@dataclass(frozen=True)
class PivotChain:
    """A member of the pivot-chain family (module docstring) with the parameters that built it."""

    mdp: LayeredMDP
    p: float
    success_sound: float
    success_error: float

    def pivot_mask(self) -> list[np.ndarray]:
        """Per step h < H, which states are pivots (index PIVOT_AHEAD, pivot at this very step)."""
        masks = []
        for size in self.mdp.layer_sizes()[:-1]:
            mask = np.zeros(size, dtype=bool)
            mask[PIVOT_AHEAD] = True
            masks.append(mask)
        return masks


@dataclass(frozen=True)
class Evaluation:
    """Exact quantities of one policy on one problem.

    values[h][s] = V^pi_h(s) for h = 0..H; q_values[h][s, a] = Q^pi_h(s, a) for h < H;
    occupancy[h][s] = d^pi_h(s), the probability that the chain is in s at step h;
    objective = J(pi) = E_{s_0}[V^pi_0(s_0)], the probability of a correct final answer.
    """

    policy: Policy
    values: list[np.ndarray]
    q_values: list[np.ndarray]
    occupancy: list[np.ndarray]
    objective: float

    @property
    def advantages(self) -> list[np.ndarray]:
        """A^pi_h(s, a) = Q^pi_h(s, a) - V^pi_h(s)."""
        return [q - v[:, None] for q, v in zip(self.q_values, self.values)]


def pivot_chain(
    horizon: int,
    num_actions: int,
    p: float,
    success_sound: float = 0.9,
    success_error: float = 0.1,
) -> PivotChain:
    """Build the pivot-chain problem described in the module docstring."""
    if horizon < 1:
        raise ResetRLError(f"horizon must be at least 1, got {horizon}")
    if num_actions < 2:
        raise ResetRLError(f"num_actions must be at least 2 (a sound and a wrong one), got {num_actions}")
    if not 0.0 < p <= 1.0:
        raise ResetRLError(f"p (probability of reaching the pivot) must be in (0, 1], got {p}")
    for name, value in (("success_sound", success_sound), ("success_error", success_error)):
        if not 0.0 <= value <= 1.0:
            raise ResetRLError(f"{name} must be a probability in [0, 1], got {value}")
    if success_sound <= success_error:
        raise ResetRLError(
            f"success_sound ({success_sound}) must exceed success_error ({success_error}), "
            "or no state is improvable"
        )

    def layer_size(h: int) -> int:
        return 2 + (horizon - h)  # on-track, derailed, pivot ahead at h..H-1

    initial = np.zeros(layer_size(0))
    initial[ON_TRACK] = 1.0 - p
    initial[PIVOT_AHEAD:] = p / horizon  # pivot position uniform over the H steps

    transitions = []
    for h in range(horizon):
        next_size = layer_size(h + 1) if h + 1 < horizon else 2
        step = np.zeros((layer_size(h), num_actions, next_size))
        step[ON_TRACK, :, ON_TRACK] = 1.0
        step[DERAILED, :, DERAILED] = 1.0
        # The pivot at this step: the sound action keeps the chain on track, any other derails it.
        step[PIVOT_AHEAD, SOUND_ACTION, ON_TRACK] = 1.0
        step[PIVOT_AHEAD, SOUND_ACTION + 1 :, DERAILED] = 1.0
        # A pivot further ahead comes one step closer, whatever the action.
        for ahead in range(1, horizon - h):
            step[PIVOT_AHEAD + ahead, :, PIVOT_AHEAD + ahead - 1] = 1.0
        transitions.append(step)

    names = []
    for h in range(horizon + 1):
        layer = ["on-track", "derailed"]
        if h < horizon:
            layer += ["pivot"] + [f"pivot in {j}" for j in range(1, horizon - h)]
        names.append(layer)
    mdp = LayeredMDP(initial, transitions, np.array([success_sound, success_error]), names)
    return PivotChain(mdp, p, success_sound, success_error)


def uniform_policy(mdp: LayeredMDP) -> Policy:
    """pi(a|s) = 1/|Y| everywhere: the starting policy of every CPI run in the lab."""
    return [np.full((size, mdp.num_actions), 1.0 / mdp.num_actions) for size in mdp.layer_sizes()[:-1]]


def evaluate(mdp: LayeredMDP, policy: Policy) -> Evaluation:
    """Exact values (backward pass) and state occupancies (forward pass) of `policy`.

    V_H = success; Q_h(s, a) = sum_s' P_h(s'|s, a) V_{h+1}(s'); V_h(s) = sum_a pi_h(a|s) Q_h(s, a).
    d_0 = initial; d_{h+1}(s') = sum_{s,a} d_h(s) pi_h(a|s) P_h(s'|s, a).
    """
    values: list[np.ndarray] = [np.empty(0)] * (mdp.horizon + 1)
    q_values: list[np.ndarray] = [np.empty(0)] * mdp.horizon
    values[mdp.horizon] = mdp.success.astype(float)
    for h in reversed(range(mdp.horizon)):
        q_values[h] = mdp.transitions[h] @ values[h + 1]
        values[h] = np.sum(policy[h] * q_values[h], axis=1)

    occupancy = [mdp.initial.astype(float)]
    for h in range(mdp.horizon):
        state_action = occupancy[h][:, None] * policy[h]
        occupancy.append(np.einsum("sa,sat->t", state_action, mdp.transitions[h]))
    objective = float(mdp.initial @ values[0])
    return Evaluation(policy, values, q_values, occupancy, objective)


def optimal_objective(mdp: LayeredMDP) -> float:
    """max_pi J(pi) by backward induction with V*_h(s) = max_a Q*_h(s, a)."""
    values = mdp.success.astype(float)
    for h in reversed(range(mdp.horizon)):
        values = (mdp.transitions[h] @ values).max(axis=1)
    return float(mdp.initial @ values)


def improvable_mask(evaluation: Evaluation, tau: float) -> list[np.ndarray]:
    """Per step, which states are improvable: some action has advantage > tau (docs/method.md section 8)."""
    return [advantage.max(axis=1) > tau for advantage in evaluation.advantages]


def reach_probability(mdp: LayeredMDP, policy: Policy, mask: list[np.ndarray]) -> float:
    """P(a trajectory of `policy` visits at least one state in `mask`): the lab's p.

    Forward pass over the probability mass that has not yet visited a masked state.
    """
    not_yet = mdp.initial.astype(float)
    reached = 0.0
    for h in range(mdp.horizon):
        reached += float(not_yet[mask[h]].sum())
        not_yet = np.where(mask[h], 0.0, not_yet)
        not_yet = np.einsum("sa,sat->t", not_yet[:, None] * policy[h], mdp.transitions[h])
    return reached


def rollout(
    mdp: LayeredMDP,
    policy: Policy,
    start_step: int,
    start_states: np.ndarray,
    first_actions: np.ndarray | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate chains step by step from `start_states` at `start_step` (one chain per entry).

    The first action is `first_actions` when given (a reset rollout tries a chosen action), else
    drawn from the policy. Returns the visited states, shape (num_chains, H + 1 - start_step), and
    the 0/1 terminal rewards. The lab's measurements use the exact law of these outcomes
    (estimate.py); this simulator is what that law is checked against.
    """
    states = np.asarray(start_states, dtype=np.int64)
    visited = [states]
    for h in range(start_step, mdp.horizon):
        if h == start_step and first_actions is not None:
            actions = np.asarray(first_actions, dtype=np.int64)
        else:
            actions = _sample_rows(policy[h][states], rng)
        states = _sample_rows(mdp.transitions[h][states, actions], rng)
        visited.append(states)
    rewards = (rng.random(len(states)) < mdp.success[states]).astype(np.int64)
    return np.stack(visited, axis=1), rewards


def _sample_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of `probabilities` (inverse CDF)."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    return np.minimum((draws >= cumulative).sum(axis=1), probabilities.shape[1] - 1)
