"""Rollout groups as data. A group is a set of samples sharing a context (the prompt, plus a reset
prefix or none); each sample knows from which response token it is trained (`train_start`).
GRPO, RRPO, SRPO and the layouts differ only in how groups are built; advantage and loss code never
needs to know that resets exist."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from resetrl.registry import Registry


@dataclass
class Sample:
    problem_id: str
    kind: str  # fresh | reset | parent | unused | attempt | correction | refinement | segment | leaf (TOKEN_BUCKETS)
    prompt_ids: list[int]
    response_ids: list[int]  # all tokens after the prompt, a reset prefix included
    train_start: int  # first trained response token: 0 for fresh chains, the suffix start for resets
    spans: list[tuple[int, int]]  # thought spans in response_ids
    thoughts: list[str]
    answer: str | None
    reward: float
    stop_reason: str
    new_tokens: int  # tokens this sample cost to generate (a reset's prefix is free)
    group_id: int | None = None
    reset_step: int | None = None  # 1-indexed thought of the parent that was resampled
    reset_source: str | None = None  # how reset_step was chosen, e.g. "self:boxed", "random"
    first_error: int | None = None  # the task's true first erroneous thought (parents), where known
    localization: str | None = None  # a parent's self-localization answer (SRPO), as the policy wrote it
    advantage: float = 0.0
    logprobs: list[float] | None = None  # engine log pi of each response token when sampled (the loss's old_logprobs)
    # Second attempts and trees (SCoRe, Critique-GRPO, SPO-Tree); their defaults leave a sample as above.
    shaped_reward: float | None = None  # what the advantage reads instead of `reward` (SCoRe's shaping)
    reward_kl_coef: float = 0.0  # beta of a KL-to-reference penalty inside the reward (SCoRe), per token / length
    off_policy: bool = False  # sampled under another context than the one it is trained under (a refinement)
    follows: int | None = None  # the group position of the attempt this sample corrects or refines
    tree_path: list[int] | None = None  # the node index at each depth of a tree, root's child first
    segment_starts: list[int] | None = None  # response token where each node of tree_path begins
    segment_advantages: list[float] | None = None  # one advantage per node of tree_path (advantages.py)

    @property
    def trained_tokens(self) -> int:
        return len(self.response_ids) - self.train_start

    @property
    def carries_signal(self) -> bool:
        """Whether the loss on this sample can have a gradient without a KL term in the loss."""
        return self.advantage != 0 or self.reward_kl_coef > 0 or any(self.segment_advantages or ())

    def record(self, step: int) -> dict:
        """One line of rollouts.jsonl (token ids left out; thoughts are the readable form)."""
        row = asdict(self)
        for key in ("prompt_ids", "response_ids", "spans", "logprobs"):
            row.pop(key)
        row["step"] = step
        row["suffix_start"] = self.train_start
        row["response_tokens"] = len(self.response_ids)
        return row


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
