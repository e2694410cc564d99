"""Group building with a scripted backend: layouts, parents, fallbacks, suffix masks."""

import random

import pytest

from resetrl.generation.base import SamplingParams
from resetrl.groups import LAYOUTS
from resetrl.methods import METHODS
from resetrl.resets import LOCALIZERS, LocateContext, chat_asker
from resetrl.rollout import RolloutCollector, Scorer
from resetrl.tasks import create_task
from resetrl.prompts import build_prompt
from resetrl.thoughts import ChainLimits
from tests.conftest import ScriptedBackend


def collect(tokenizer, method="srpo", layout="1x4", p_right=0.5, n_problems=4, answers=("\\boxed{2}",), seed=0,
            strategy=None, mask_prefix=True, merge_empty_prefix=False):
    task = create_task("arith_chain", steps=3)
    problems = task.problems("train", n_problems, seed=0)
    backend = ScriptedBackend(tokenizer, problems, p_right=p_right, seed=seed, localization_answers=answers)
    localizer = LOCALIZERS.get(strategy)() if strategy else METHODS.get(method).reset_localizer()
    context = LocateContext(chat_asker(backend, tokenizer, 0.3, 256), random.Random(seed))
    collector = RolloutCollector(
        backend, Scorer(tokenizer, task), METHODS.get(method).layout(layout, 8),
        localizer, context,
        SamplingParams(), ChainLimits(), max_fresh_attempts=12, mask_prefix=mask_prefix,
        merge_empty_prefix=merge_empty_prefix)
    prompts = {p.id: tokenizer(build_prompt(p.question, tokenizer)).input_ids for p in problems}
    return collector.collect(problems, prompts), backend, problems


@pytest.mark.parametrize("layout", LAYOUTS.names())
def test_layout_budget_and_parent_excluded(tokenizer, layout):
    result, _, problems = collect(tokenizer, layout=layout)
    trained = [s for g in result.groups for s in g.samples]
    for problem in problems:
        assert sum(s.problem_id == problem.id for s in trained) == LAYOUTS.get(layout).budget
    parent_ids = {id(p) for p in result.parents}
    assert not parent_ids & {id(s) for s in trained}
    assert all(p.kind == "parent" and p.reward < 1 for p in result.parents)
    reset_groups = [g for g in result.groups if g.kind == "reset"]
    assert all(len(g.samples) == LAYOUTS.get(layout).continuations for g in reset_groups)


def test_suffix_mask_covers_exactly_the_continuation(tokenizer):
    result, _, _ = collect(tokenizer, layout="1x4")
    by_problem = {p.problem_id: p for p in result.parents}
    checked = 0
    for group in result.groups:
        if group.kind != "reset":
            assert all(s.train_start == 0 for s in group.samples)
            continue
        parent = by_problem[group.problem_id]
        prefix_end = parent.spans[group.reset_step - 2][1] if group.reset_step >= 2 else 0
        for sample in group.samples:
            assert sample.train_start == prefix_end
            assert sample.response_ids[:prefix_end] == parent.response_ids[:prefix_end]
            assert sample.prompt_ids == parent.prompt_ids
            # the reset prefix holds exactly thoughts 1..e-1 of the parent
            assert sample.thoughts[: group.reset_step - 1] == parent.thoughts[: group.reset_step - 1]
            checked += 1
    assert checked > 0


def test_no_mask_variant_trains_the_prefix(tokenizer):
    result, _, _ = collect(tokenizer, mask_prefix=False)
    assert all(s.train_start == 0 for g in result.groups for s in g.samples)


def test_fallback_to_grpo_group_when_no_failure(tokenizer):
    result, backend, problems = collect(tokenizer, p_right=1.0)
    assert not result.parents
    assert [g.kind for g in result.groups] == ["fallback"] * len(problems)
    assert all(len(g.samples) == 8 for g in result.groups)
    assert result.stats["prompts/fallback"] == len(problems)
    assert result.stats["prompts/with_failure"] == 0.0
    # 12 attempts were made per prompt looking for a failure; 4 of them were not needed
    assert result.stats["chains/unused"] == 4 * len(problems)


def test_grpo_is_one_group_of_eight(tokenizer):
    result, backend, problems = collect(tokenizer, method="grpo")
    assert [len(g.samples) for g in result.groups] == [8] * len(problems)
    assert not result.parents and backend.chain_calls == 1 and backend.text_calls == 0


def test_two_by_four_with_a_single_failure_fills_budget_with_fresh(tokenizer):
    # p_right high: many prompts find one failure in 12 but not two.
    result, _, problems = collect(tokenizer, layout="2x4", p_right=0.9, n_problems=8, seed=3)
    for problem in problems:
        parents = [p for p in result.parents if p.problem_id == problem.id]
        groups = [g for g in result.groups if g.problem_id == problem.id]
        fresh = sum(len(g.samples) for g in groups if g.kind != "reset")
        assert fresh == 8 - 4 * len(parents)


def test_reset_choice_recorded_and_localization_counted(tokenizer):
    answers = ("\\boxed{2}", "\\boxed{0}", "I don't know", "\\boxed{7}")
    result, backend, problems = collect(tokenizer, p_right=0.0, answers=answers)
    sources = [p.reset_source for p in result.parents]
    assert sources == ["self:boxed", "self:no_error->1", "self:unparsed->1", "self:clamped"]
    assert [p.reset_step for p in result.parents] == [2, 1, 1, 3]
    assert result.stats["reset/source/no_error->1"] == 1 and result.stats["reset/source/unparsed->1"] == 1
    assert result.stats["tokens/localization"] > 0


def test_localization_call_failure_falls_back_to_first_thought(tokenizer):
    result, _, _ = collect(tokenizer, p_right=0.0, answers=("RAISE",))
    assert all(p.reset_step == 1 and p.reset_source == "self:call_failed->1" for p in result.parents)


def test_oracle_resets_at_true_first_error(tokenizer):
    result, _, _ = collect(tokenizer, method="oracle", p_right=0.0)
    assert result.parents
    for parent in result.parents:
        assert parent.first_error >= 1 and parent.reset_step == parent.first_error
    assert result.stats["localization/exact"] == 1.0


def test_random_reset_in_range(tokenizer):
    result, _, _ = collect(tokenizer, method="rrpo", p_right=0.0, n_problems=8)
    assert all(1 <= p.reset_step <= len(p.thoughts) for p in result.parents)
    assert len({p.reset_step for p in result.parents}) > 1


def test_chain_without_thoughts_or_answer_scores_zero(tokenizer):
    task = create_task("arith_chain")
    problem = task.problems("test", 1, seed=0)[0]
    scorer = Scorer(tokenizer, task)
    empty = scorer.sample(problem, [1], [], "fresh", "eos", 0)
    assert (empty.reward, empty.thoughts, empty.answer) == (0.0, [], None)
    no_answer = scorer.sample(problem, [1], tokenizer("3 + 4 = 7</thought>\n", add_special_tokens=False).input_ids,
                              "fresh", "max_thoughts", 5)
    assert no_answer.reward == 0.0 and no_answer.answer is None and len(no_answer.thoughts) == 1
