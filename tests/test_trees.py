"""SPO-Tree: the tree's structure with a scripted backend that honours the token cap, and segment
advantages on hand-made rewards against the formulas (V(node) = mean of its leaves' rewards,
A(node) = V(node) - mean V over it and its siblings)."""

import itertools

import pytest

from resetrl.advantages import assign_advantages
from resetrl.config import load_config
from resetrl.generation.base import GeneratedChain
from resetrl.groups import Group
from resetrl.methods import METHODS
from resetrl.rollout import rollout_parts
from resetrl.runtime import build_runtime
from resetrl.scoring import Sample
from resetrl.trees import TreeCollector
from tests.conftest import ScriptedBackend


class CappedBackend(ScriptedBackend):
    """Scripted chains cut at the request's token budget (max_total_tokens less the prefix), as an
    engine cuts them; records each request's prefix length."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prefix_tokens = []

    def generate_chains(self, requests, sampling, limits):
        outputs = super().generate_chains(requests, sampling, limits)
        for request, chains in zip(requests, outputs):
            self.prefix_tokens.append(request.prefix_tokens)
            cap = limits.max_total_tokens - request.prefix_tokens
            for index, chain in enumerate(chains):
                if len(chain.ids) > cap:
                    chains[index] = GeneratedChain(chain.ids[:cap], "max_tokens", chain.logprobs[:cap])
        return outputs


def collect(branching=(2, 4), segment_tokens=6, n_problems=3):
    config = load_config(preset="smoke", overrides=["method=spo_tree", "task.options={steps: 3}",
                                                    "format.max_total_tokens=200"])
    runtime = build_runtime(config)
    problems = runtime.task.problems("train", n_problems, 0)
    runtime.backend = CappedBackend(runtime.tokenizer, problems, p_right=0.5, token_logprob=-0.25)
    prompts = {p.id: runtime.prompt_ids(p) for p in problems}
    collector = TreeCollector(runtime, rollout_parts(runtime)[2], list(branching), segment_tokens)
    return collector.collect(problems, prompts), runtime, prompts


def test_tree_structure_counts_and_shared_segments():
    result, runtime, prompts = collect()
    segments = result.unused
    assert len(result.groups) == 3 and len(segments) == 3 * 2
    assert all(s.kind == "segment" and len(s.response_ids) == 6 and s.stop_reason == "max_tokens" for s in segments)
    for group in result.groups:
        assert group.kind == "tree" and len(group.samples) == 8
        own = [s for s in segments if s.problem_id == group.problem_id]
        assert sorted(tuple(s.tree_path) for s in group.samples) == list(itertools.product(range(2), range(4)))
        for leaf in group.samples:
            segment = own[leaf.tree_path[0]]
            # A leaf is its segment's exact tokens + its own, trained whole under the plain prompt.
            assert leaf.response_ids[:6] == segment.response_ids and leaf.train_start == 0
            assert leaf.prompt_ids == prompts[group.problem_id] and leaf.kind == "leaf"
            assert leaf.segment_starts == [0, 6] and leaf.new_tokens == len(leaf.response_ids) - 6
            assert leaf.logprobs == [-0.25] * len(leaf.response_ids)  # the segment's engine log-probs carried
    assert runtime.backend.prefix_tokens.count(0) == 3 and runtime.backend.prefix_tokens.count(6) == 6
    # Every generated token once: the shared segments once, each leaf's own tokens once.
    assert result.stats["tokens/tree"] == sum(s.new_tokens for s in segments) + sum(
        s.new_tokens for g in result.groups for s in g.samples)
    assert result.stats["tokens/fresh"] == 0


def test_three_level_tree():
    result, _, _ = collect(branching=(2, 2, 2), segment_tokens=4, n_problems=1)
    (group,) = result.groups
    assert len(group.samples) == 8 and len(result.unused) == 2 + 4
    assert all(leaf.segment_starts == [0, 4, 8] for leaf in group.samples)
    by_path = {tuple(leaf.tree_path): leaf for leaf in group.samples}
    assert by_path[(1, 0, 0)].response_ids[:8] == by_path[(1, 0, 1)].response_ids[:8]


def test_a_segment_that_ends_its_chain_has_leaves_without_new_tokens():
    result, _, _ = collect(segment_tokens=500, n_problems=1)  # the whole chain fits in the first segment
    (group,) = result.groups
    assert all(leaf.new_tokens == 0 for leaf in group.samples)
    assert [leaf.response_ids for leaf in group.samples[:4]] == [result.unused[0].response_ids] * 4


def leaves(rewards_by_path: dict) -> list[Sample]:
    samples = []
    for path, reward in rewards_by_path.items():
        sample = Sample("p", "leaf", [1], [2] * 10, 0, [], [], None, reward, "answer", 1)
        sample.tree_path, sample.segment_starts = list(path), [0, 5]
        samples.append(sample)
    return samples


def test_segment_advantages_on_hand_made_rewards():
    rewards = {(0, 0): 1.0, (0, 1): 0.0, (0, 2): 0.0, (0, 3): 0.0, (1, 0): 1.0, (1, 1): 1.0, (1, 2): 1.0, (1, 3): 0.0}
    group = Group(0, "p", "tree", leaves(rewards))
    assign_advantages([group], METHODS.get("spo_tree").advantage(None))
    values = {0: 0.25, 1: 0.75}  # V(first segment) = mean of its leaves
    for leaf in group.samples:
        first, child = leaf.tree_path
        siblings = [rewards[(first, j)] for j in range(4)]
        assert leaf.segment_advantages == pytest.approx([values[first] - 0.5, rewards[(first, child)] - sum(siblings) / 4])
        assert leaf.advantage == leaf.segment_advantages[-1]
        assert leaf.carries_signal


def test_a_flat_group_is_untouched_by_the_tree_rule():
    group = Group(0, "p", "fresh", [Sample("p", "fresh", [1], [2], 0, [], [], None, r, "answer", 1) for r in (1.0, 0.0)])
    assign_advantages([group], "mean_only")
    assert [s.advantage for s in group.samples] == [0.5, -0.5] and group.samples[0].segment_advantages is None
