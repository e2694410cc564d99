"""SPO-Tree rollouts (Guo et al., "Segment Policy Optimization", 2025, section 5; docs/methods.md).

Per prompt a tree of token segments: `branching[0]` segments of `segment_tokens` tokens from the
prompt, each with `branching[1]` children, and so on; the last depth's children run to the chain's
end. Every leaf is one trained trajectory (its ancestors' segments + its own), trained from token 0,
and knows its path through the tree and where each node's segment starts, so the advantage code can
value every node by its leaves. A segment is cut by token count, not at a thought boundary; a
segment whose chain ended (an answer, end-of-sequence) has leaves that add no token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from resetrl.chains import ChainJob, sample_chains
from resetrl.groups import Group
from resetrl.rollout import COLLECTORS, RolloutResult, rollout_stats
from resetrl.scoring import Sample
from resetrl.tasks.base import Problem
from resetrl.thoughts import THOUGHT_END


@dataclass
class Node:
    problem: Problem
    path: tuple[int, ...]
    sample: Sample | None  # the chain so far (None at the root)

    @property
    def prefix(self) -> list[int]:
        return self.sample.response_ids if self.sample else []


class TreeCollector:
    def __init__(self, runtime, scorer, branching: list[int], segment_tokens: int):
        self.runtime, self.scorer = runtime, scorer
        self.branching, self.segment_tokens = list(branching), segment_tokens

    def collect(self, problems: list[Problem], prompts: dict[str, list[int]], rng=None, step: int = 0) -> RolloutResult:
        """The step's trees (no random choice of its own: `rng` and `step` are unused)."""
        started = time.perf_counter()
        rt = self.runtime
        frontier = [Node(problem, (), None) for problem in problems]
        segments: list[Sample] = []
        for depth, children in enumerate(self.branching):
            last = depth == len(self.branching) - 1
            # Inner depths stop after exactly one segment more (no room rule: a cut mid-thought is fine).
            limits = rt.limits if last else replace(
                rt.limits, max_total_tokens=min(rt.limits.max_total_tokens, (depth + 1) * self.segment_tokens),
                room_for_thought=False)
            growing = [node for node in frontier if self._continues(node)]
            jobs = [ChainJob(node.problem, prompts[node.problem.id], children, prefix_ids=node.prefix,
                             prefix_thoughts=self.scorer.decode(node.prefix).count(THOUGHT_END),
                             prefix_logprobs=node.sample.logprobs if node.sample else None) for node in growing]
            grown = dict(zip(map(id, growing), sample_chains(rt.backend, self.scorer, jobs, rt.sampling, limits,
                                                            kind="leaf" if last else "segment", train_prefix=True)))
            next_frontier = []
            for node in frontier:
                samples = grown.get(id(node)) or [self._ended_copy(node, last) for _ in range(children)]
                for index, sample in enumerate(samples):
                    next_frontier.append(Node(node.problem, node.path + (index,), sample))
            if not last:
                segments += [node.sample for node in next_frontier]
            frontier = next_frontier
        groups = []
        for problem in problems:
            leaves = [node for node in frontier if node.problem.id == problem.id]
            for node in leaves:
                node.sample.tree_path = list(node.path)
                node.sample.segment_starts = [depth * self.segment_tokens for depth in range(len(node.path))]
            groups.append(Group(len(groups), problem.id, "tree", [node.sample for node in leaves]))
        for group in groups:
            for sample in group.samples:
                sample.group_id = group.id
        result = RolloutResult(groups, [], segments)
        result.stats = rollout_stats(result, problems, [], {"fresh": time.perf_counter() - started})
        return result

    def _continues(self, node: Node) -> bool:
        """The root, or a segment cut at its token count (its chain not over)."""
        return node.sample is None or (node.sample.stop_reason == "max_tokens"
                                       and node.sample.new_tokens == self.segment_tokens
                                       and len(node.prefix) < self.runtime.limits.max_total_tokens)

    def _ended_copy(self, node: Node, last: bool) -> Sample:
        """A child of a node whose chain has ended: the same chain, no token added."""
        sample = node.sample
        copy = self.scorer.sample(node.problem, sample.prompt_ids, list(sample.response_ids), "leaf" if last else "segment",
                                  sample.stop_reason, 0)
        copy.logprobs = list(sample.logprobs) if sample.logprobs is not None else None
        return copy


@COLLECTORS.register("spo_tree")
def tree_collector(runtime, layout, localizer, scorer) -> TreeCollector:
    config = runtime.config.spo_tree
    return TreeCollector(runtime, scorer, config.branching, config.segment_tokens)
