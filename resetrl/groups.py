"""Rollout groups as data. A group is a set of samples sharing a context (the prompt, plus a reset
prefix or none); each sample knows from which response token it is trained (`train_start`).
GRPO, RRPO, SRPO and the layouts differ only in how groups are built; advantage and loss code never
needs to know that resets exist. A group's `Sample`s are scored chains (resetrl/scoring.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from resetrl.registry import Registry
from resetrl.scoring import Sample


@dataclass
class Group:
    id: int
    problem_id: str
    kind: str  # fresh | reset | fallback (plain GRPO group of a prompt where no failure was found)
    samples: list[Sample] = field(default_factory=list)
    reset_step: int | None = None


@dataclass(frozen=True)
class Layout:
    """How a prompt's rollout budget is spent: `parents` failed chains to reset from, `fresh` chains
    trained as group G1, `continuations` (K) per reset group. Budget = fresh + parents * K."""

    parents: int
    fresh: int
    continuations: int

    @property
    def budget(self) -> int:
        return self.fresh + self.parents * self.continuations


# Which tokens/* figure a sample's generated tokens count in, by its kind: every generated token is
# counted once (a reset prefix or a tree's shared segment is re-entered, not generated again).
TOKEN_BUCKETS = {"fresh": "fresh", "parent": "fresh", "unused": "fresh", "attempt": "fresh", "reset": "reset",
                 "correction": "correction", "refinement": "correction", "segment": "tree", "leaf": "tree"}
TOKEN_KINDS = ("fresh", "reset", "correction", "tree", "localization")  # every tokens/<kind> of a step


LAYOUTS: Registry[Layout] = Registry("layout")
LAYOUTS.register("1x4")(Layout(parents=1, fresh=4, continuations=4))  # reference code's main layout
LAYOUTS.register("2x4")(Layout(parents=2, fresh=0, continuations=4))
LAYOUTS.register("1x8")(Layout(parents=1, fresh=0, continuations=8))
