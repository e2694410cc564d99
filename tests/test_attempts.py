"""SCoRe's and Critique-GRPO's rollouts with a scripted backend: counts, kinds, which context each
second attempt was sampled after and which prompt it is trained under, shaped rewards, advantages."""

import pytest

from resetrl.advantages import assign_advantages
from resetrl.attempts import CritiqueCollector, ScoreCollector, shape_score_rewards
from resetrl.config import ScoreConfig, load_config
from resetrl.generation.base import GeneratedChain
from resetrl.methods import METHODS
from resetrl.prompts import CORRECTION_INSTRUCTION, CRITIQUES, chat_prompt_ids, refinement_prompt
from resetrl.runtime import build_runtime
from resetrl.scoring import Sample
from tests.conftest import ScriptedBackend


class RecordingBackend(ScriptedBackend):
    """Records every chain context; optionally answers the first chain of every fresh request
    with no thought at all (an empty chain)."""

    def __init__(self, *args, empty_first=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.contexts, self.lengths, self.empty_first = [], [], empty_first

    def generate_chains(self, requests, sampling, limits):
        outputs = super().generate_chains(requests, sampling, limits)
        for request, chains in zip(requests, outputs):
            text = self.tokenizer.decode(request.context_ids)
            self.contexts.append(text)
            self.lengths.append(len(request.context_ids))
            if self.empty_first and "There may be an error" not in text:
                chains[0] = GeneratedChain(ids=[], stop_reason="eos", logprobs=None)
        return outputs


def runtime_for(method, n_problems=3, overrides=(), **backend_options):
    config = load_config(preset="smoke", overrides=[f"method={method}", "task.options={steps: 3}", *overrides])
    runtime = build_runtime(config)
    problems = runtime.task.problems("train", n_problems, 0)
    runtime.backend = RecordingBackend(runtime.tokenizer, problems, p_right=0.5, token_logprob=-0.5, **backend_options)
    return runtime, problems, {p.id: runtime.prompt_ids(p) for p in problems}


@pytest.mark.parametrize("empty_first", [False, True])
def test_score_pairs_first_attempts_with_corrections(empty_first):
    runtime, problems, prompts = runtime_for("score", empty_first=empty_first)
    collector = ScoreCollector(runtime, _scorer(runtime), group_size=8)
    result = collector.collect(problems, prompts, step=1)
    assert len(result.groups) == len(problems)
    for group in result.groups:
        assert len(group.samples) == 8 and group.kind == "attempts"
        for position, sample in enumerate(group.samples):
            assert sample.prompt_ids == prompts[group.problem_id] and sample.train_start == 0
            if sample.kind == "correction":
                first = group.samples[sample.follows]
                assert sample.follows == position - 1 and first.kind == "attempt" and first.thoughts
                assert sample.logprobs is None and sample.off_policy  # sampled after another context
                assert sample.shaped_reward == sample.reward + 10 * (sample.reward - first.reward)
                assert sample.reward_kl_coef == 0.01
            else:
                assert sample.kind == "attempt" and sample.shaped_reward == sample.reward
                assert sample.reward_kl_coef == 0.01 and (sample.logprobs is not None or not sample.thoughts)
                # An attempt with no thought takes its slot alone; the others are followed by their correction.
                if position + 1 < 8:
                    assert (group.samples[position + 1].kind == "correction") == bool(sample.thoughts)
    if not empty_first:  # every first attempt has thoughts: one batched call for them, one for the corrections
        assert runtime.backend.chain_calls == 2
    corrections = [c for c in runtime.backend.contexts if "There may be an error" in c]
    assert corrections and all("Q:" in c for c in corrections)  # question prompt + attempt + request
    if empty_first:
        assert result.stats["rollout/score/no_thought_first"] >= len(problems)
        assert any(not s.thoughts and s.kind == "attempt" for g in result.groups for s in g.samples)
    generated = sum(s.new_tokens for s in result.all_samples())
    assert result.stats["tokens/fresh"] + result.stats["tokens/correction"] == generated
    assert result.stats["tokens/correction"] > 0


def test_score_stage_one_and_the_unnormalised_advantage():
    first = _sample(reward=1.0)
    second = _sample(reward=0.0)
    config = ScoreConfig(alpha=10)
    shape_score_rewards(first, second, 10, stage_one=False, config=config)
    assert (first.shaped_reward, second.shaped_reward) == (1.0, -10.0)
    shape_score_rewards(first, second, 10, stage_one=True, config=config)
    assert (first.shaped_reward, second.shaped_reward) == (0.0, 0.0)
    assert (first.reward_kl_coef, second.reward_kl_coef) == (0.1, 0.01)
    second.reward = 1.0
    first.reward = 0.0
    shape_score_rewards(first, second, 10, stage_one=False, config=config)
    assert second.shaped_reward == 11.0
    from resetrl.groups import Group

    group = Group(0, "p", "attempts", [first, second])
    assign_advantages([group], METHODS.get("score").advantage(None))
    assert [s.advantage for s in group.samples] == [0.0, 11.0]  # no baseline, no normalisation


def test_score_stage_one_runs_for_its_steps():
    runtime, problems, prompts = runtime_for("score", overrides=["score.stage1_steps=2"])
    for step, stage_one in ((2, True), (3, False)):
        result = ScoreCollector(runtime, _scorer(runtime), 8).collect(problems, prompts, step=step)
        firsts = [s for g in result.groups for s in g.samples if s.kind == "attempt"]
        assert all((s.shaped_reward == 0.0) == stage_one or s.reward == 0.0 for s in firsts)
        assert all(s.reward_kl_coef == (0.1 if stage_one else 0.01) for s in firsts)


def test_critique_keeps_one_refinement_with_seven_originals():
    runtime, problems, prompts = runtime_for("critique_grpo", n_problems=4)
    collector = CritiqueCollector(runtime, _scorer(runtime), group_size=8)
    result = collector.collect(problems, prompts, step=1)
    refinement_contexts = [c for c in runtime.backend.contexts if "Critique:" in c]
    assert len(refinement_contexts) == 4 * 8  # one refinement of every chain
    for group in result.groups:
        kept, originals = group.samples[0], group.samples[1:]
        assert len(originals) == 7 and all(s.kind == "fresh" and not s.off_policy for s in originals)
        assert kept.kind == "refinement" and kept.off_policy and kept.logprobs is None
        assert kept.prompt_ids == prompts[group.problem_id] and kept.train_start == 0
        refinements = [s for s in result.unused if s.problem_id == group.problem_id and s.kind == "refinement"]
        assert len(refinements) == 7
        # The first correct refinement in chain order, else the first (follows: its chain's position).
        kept_index = kept.follows - 1 if kept.follows else 7
        assert all(r.reward < 1.0 for r in refinements[:kept_index])
        if kept.reward < 1.0:
            assert all(r.reward < 1.0 for r in refinements) and kept_index == 0
        dropped = [s for s in result.unused if s.problem_id == group.problem_id and s.kind == "unused"]
        assert len(dropped) == 1  # the 8th chain
    assign_advantages(result.groups, METHODS.get("critique_grpo").advantage(None))
    for group in result.groups:
        rewards = [s.reward for s in group.samples]
        assert [s.advantage for s in group.samples] == pytest.approx([r - sum(rewards) / 8 for r in rewards])
    assert result.stats["tokens/correction"] == sum(s.new_tokens for s in result.all_samples() if s.kind == "refinement")


def test_critique_prompt_says_only_correct_or_incorrect():
    runtime, problems, prompts = runtime_for("critique_grpo", n_problems=1)
    CritiqueCollector(runtime, _scorer(runtime), 8).collect(problems, prompts, step=1)
    shown = [c for c in runtime.backend.contexts if "Critique:" in c]
    assert all((CRITIQUES[True] in c) != (CRITIQUES[False] in c) for c in shown)
    assert all(problems[0].answer not in c.split("Critique:")[1] for c in shown)


@pytest.mark.parametrize("method", ["score", "critique_grpo"])
def test_a_long_first_attempt_is_cut_until_the_context_fits(method):
    runtime, problems, prompts = runtime_for(method, n_problems=2)
    # Room for 10 tokens of the first attempt beside the longest fixed part of a second context.
    if method == "score":
        fixed = max(map(len, prompts.values())) + len(runtime.tokenizer(CORRECTION_INSTRUCTION, add_special_tokens=False).input_ids)
    else:
        fixed = max(len(chat_prompt_ids(runtime.tokenizer, refinement_prompt(p.question, "", correct)))
                    for p in problems for correct in (True, False))
    longest = fixed + runtime.limits.max_total_tokens + 10
    runtime.model.config.max_position_embeddings = longest
    try:
        collector = (ScoreCollector if method == "score" else CritiqueCollector)(runtime, _scorer(runtime), 8)
        result = collector.collect(problems, prompts, step=1)
    finally:
        runtime.model.config.max_position_embeddings = 4096
    marker = "There may be an error" if method == "score" else "Critique:"
    second = [n for n, text in zip(runtime.backend.lengths, runtime.backend.contexts) if marker in text]
    assert second and max(second) <= longest - runtime.limits.max_total_tokens
    assert result.stats["rollout/first_attempt_cut"] > 0


def _scorer(runtime):
    from resetrl.rollout import rollout_parts

    return rollout_parts(runtime)[2]


def _sample(reward: float) -> Sample:
    return Sample("p", "attempt", [1], [2, 3], 0, [(0, 2)], ["x"], None, reward, "answer", 2)
