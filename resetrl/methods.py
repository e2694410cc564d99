"""Training methods behind a registry: what GRPO, RRPO, SRPO, the oracle arm and the paper's other
baselines (SCoRe, Critique-GRPO, SPO-Tree) differ in.

A method is data (style.md: "resets are a data structure, not a code path"): which collector builds
a step's groups, how a prompt's rollout budget is laid out, which localizer picks the reset step of
a failed parent, and which estimator and loss it trains with. The trainer, the rollout workers and
`compare` read the entry; nothing else decodes the method's name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from resetrl.groups import LAYOUTS, Layout
from resetrl.registry import Registry
from resetrl.resets import LOCALIZERS, Localizer


@dataclass(frozen=True)
class Method:
    description: str
    localizer: str | None  # a LOCALIZERS name: how a failed parent's reset step is chosen; None = no resets
    own_loss_field: str | None = None  # a train.* field that overrides train.loss for this method only
    own_advantage_field: str | None = None  # a train.* field that overrides train.advantage for this method only
    own_aggregation_field: str | None = None  # a train.* field that overrides train.loss_aggregation
    collector: str = "resets"  # a COLLECTORS name (resetrl/rollout.py): how a step's groups are built
    fixed_loss: str | None = None  # a loss that is part of the method (train.loss does not apply)
    fixed_advantage: str | None = None  # an estimator that is part of the method (train.advantage does not apply)
    own_options: Callable[[Any], dict] | None = None  # the loss's options (and "aggregation") from the whole config
    reward_kl: bool = False  # a KL-to-reference penalty inside the reward: the update needs the reference policy
    # Train each fresh chain only from the task's decision thought on (the task's `decision_step`):
    # GRPO-mask, the attribution control of docs/trap.md, oracle knowledge of where the decision is.
    train_from_decision: bool = False

    def layout(self, layout: str, group_size: int) -> Layout:
        """Without resets the whole budget is one fresh group of `group_size`; with resets, the
        configured layout (rollout.layout)."""
        if self.localizer is None:
            return Layout(parents=0, fresh=group_size, continuations=0)
        return LAYOUTS.get(layout)

    def reset_localizer(self) -> Localizer | None:
        return LOCALIZERS.get(self.localizer)() if self.localizer else None

    def loss(self, train) -> str:
        """The loss name this method trains with, from the config's train section."""
        return self.fixed_loss or self._own_or_shared(train, self.own_loss_field, "loss")

    def loss_options(self, config) -> dict:
        """Keyword options of the method's own loss beyond the shared ones (may hold "aggregation")."""
        return self.own_options(config) if self.own_options else {}

    def aggregation(self, train) -> str | None:
        """The loss aggregation this method asks for (None: the loss's own default)."""
        return self._own_or_shared(train, self.own_aggregation_field, "loss_aggregation")

    def advantage(self, train) -> str:
        """The advantage estimator this method trains with, from the config's train section."""
        return self.fixed_advantage or self._own_or_shared(train, self.own_advantage_field, "advantage")

    @staticmethod
    def _own_or_shared(train, own_field: str | None, shared_field: str):
        """train.<own_field> where this method has one and it is set, else train.<shared_field>."""
        own = getattr(train, own_field) if own_field else None
        return own or getattr(train, shared_field)


METHODS: Registry[Method] = Registry("method")
METHODS.register("grpo")(Method("no resets: every rollout a fresh chain (train.grpo_loss and train.grpo_advantage "
                                "and train.grpo_loss_aggregation may give it the paper's own loss, estimator and aggregation)",
                                None, own_loss_field="grpo_loss", own_advantage_field="grpo_advantage",
                                own_aggregation_field="grpo_loss_aggregation"))
METHODS.register("rrpo")(Method("random reset: the reset step uniform over the parent's thoughts", "random"))
METHODS.register("srpo")(Method("self-localized reset: the policy names its first erroneous thought", "self"))
METHODS.register("oracle")(Method("oracle reset: the task's true first erroneous thought (analysis)", "oracle"))


def _spo_tree_options(config) -> dict:
    """The SPO paper's probability mask and per-sequence mean over kept tokens, or the reference's
    plain token mean (its mask reads a batch key verl never writes)."""
    tree = config.spo_tree
    if tree.probability_mask:
        return {"keep_below_prob": tree.keep_below_prob, "aggregation": "seq-mean-token-mean"}
    return {"aggregation": "token-mean"}


METHODS.register("score")(Method(
    "SCoRe (Kumar et al. 2024): a first attempt and a correction conditioned on it, Stage II reward "
    "shaping (score.alpha), KL to the reference inside the reward, unnormalised advantages, PPO-clip",
    None, collector="score", fixed_loss="clip", fixed_advantage="reward", reward_kl=True,
    own_options=lambda config: {"aggregation": "token-mean"}))
METHODS.register("critique_grpo")(Method(
    "Critique-GRPO (Zhang et al. 2025): fresh chains, one binary-critique refinement kept per group "
    "(off-policy), mean-centred advantages, p / (p + gamma) shaping on its tokens, entropy bonus",
    None, collector="critique_grpo", fixed_loss="shaped_offpolicy", fixed_advantage="mean_only",
    own_options=lambda config: {"shaping_gamma": config.critique_grpo.shaping_gamma,
                                "entropy_coef": config.critique_grpo.entropy_coef,
                                "aggregation": "padded-length-mean"}))
METHODS.register("spo_tree")(Method(
    "SPO-Tree (Guo et al. 2025): token-segment trees (spo_tree.branching), node values from leaf "
    "rewards, sibling-relative segment advantages, PPO-clip with the probability mask",
    None, collector="spo_tree", fixed_loss="clip", fixed_advantage="mean_only", own_options=_spo_tree_options))
# Controls of the phrased trap chain (docs/trap.md): the reset layout without its prefix, and GRPO
# without the prefix's gradient.
METHODS.register("first_reset")(Method("layout control: the reset layout with every reset at thought 1 (no prefix)",
                                       "regenerate"))
METHODS.register("grpo_mask")(Method("attribution control: GRPO trained only from the task's decision thought on "
                                     "(trap_chain: the trap)", None, train_from_decision=True))
