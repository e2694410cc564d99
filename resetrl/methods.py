"""Training methods behind a registry: what GRPO, RRPO, SRPO and the oracle arm differ in.

A method is data (style.md: "resets are a data structure, not a code path"): how a prompt's rollout
budget is laid out, which localizer picks the reset step of a failed parent, and which loss it
trains with. The trainer, the rollout workers and `compare` read the entry; nothing else decodes the
method's name."""

from __future__ import annotations

from dataclasses import dataclass

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
        return self._own_or_shared(train, self.own_loss_field, "loss")

    def aggregation(self, train) -> str | None:
        """The loss aggregation this method asks for (None: the loss's own default)."""
        return self._own_or_shared(train, self.own_aggregation_field, "loss_aggregation")

    def advantage(self, train) -> str:
        """The advantage estimator this method trains with, from the config's train section."""
        return self._own_or_shared(train, self.own_advantage_field, "advantage")

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
# Controls of the phrased trap chain (docs/trap.md): the reset layout without its prefix, and GRPO
# without the prefix's gradient.
METHODS.register("first_reset")(Method("layout control: the reset layout with every reset at thought 1 (no prefix)",
                                       "regenerate"))
METHODS.register("grpo_mask")(Method("attribution control: GRPO trained only from the task's decision thought on "
                                     "(trap_chain: the trap)", None, train_from_decision=True))
