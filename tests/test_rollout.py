"""Group building with a scripted backend: layouts, parents, fallbacks, suffix masks."""

import random

import pytest

from resetrl.generation.base import GeneratedChain, SamplingParams
from resetrl.groups import LAYOUTS
from resetrl.methods import METHODS
from resetrl.resets import LOCALIZERS, LocateContext, chat_asker
from resetrl.rollout import RolloutCollector, Scorer
from resetrl.tasks import create_task
from resetrl.prompts import build_prompt
from resetrl.thoughts import ChainLimits
from tests.conftest import ScriptedBackend


def collect(tokenizer, method="srpo", layout="1x4", p_right=0.5, n_problems=4, answers=("\\boxed{2}",), seed=0,
            strategy=None, mask_prefix=True, merge_empty_prefix=False, backend=None, out_of_range="prose", **rules):
    task = create_task("arith_chain", steps=3)
    problems = task.problems("train", n_problems, seed=0)
    backend = (backend or ScriptedBackend)(tokenizer, problems, p_right=p_right, seed=seed, localization_answers=answers)
    localizer = LOCALIZERS.get(strategy)() if strategy else METHODS.get(method).reset_localizer()
    context = LocateContext(chat_asker(backend, tokenizer, 0.3, 256), random.Random(seed), out_of_range=out_of_range)
    collector = RolloutCollector(
        backend, Scorer(tokenizer, task), METHODS.get(method).layout(layout, 8),
        localizer, context,
        SamplingParams(), ChainLimits(), max_fresh_attempts=12, mask_prefix=mask_prefix,
        merge_empty_prefix=merge_empty_prefix, **rules)
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
    """Rule 5: no failure in 12 draws -> the first 4 kept chains plus 4 new fresh draws form the group."""
    result, backend, problems = collect(tokenizer, p_right=1.0)
    assert not result.parents
    assert [g.kind for g in result.groups] == ["fallback"] * len(problems)
    assert all(len(g.samples) == 8 for g in result.groups)
    assert result.stats["prompts/fallback"] == len(problems) == result.stats["rollout/fallback_groups"]
    assert result.stats["prompts/with_failure"] == 0.0
    # 12 drawn per prompt looking for a failure, 4 kept, 8 unused; 4 more drawn anew
    assert result.stats["chains/unused"] == 8 * len(problems)
    # fallback_group=drawn: resetrl's earlier rule, the budget taken from what was drawn (one call fewer)
    new_draws_calls = backend.chain_calls
    result, backend, problems = collect(tokenizer, p_right=1.0, fallback_group="drawn")
    assert all(len(g.samples) == 8 for g in result.groups) and backend.chain_calls == new_draws_calls - 1
    assert result.stats["chains/unused"] == 4 * len(problems)


def test_grpo_is_one_group_of_eight(tokenizer):
    result, backend, problems = collect(tokenizer, method="grpo")
    assert [len(g.samples) for g in result.groups] == [8] * len(problems)
    assert not result.parents and backend.chain_calls == 1 and backend.text_calls == 0


def test_two_by_four_with_a_single_failure_is_one_plain_group(tokenizer):
    """Rule 6: 2x4 with exactly one failure -> one plain group of 8, the failure in it (last)."""
    # p_right high: many prompts find one failure in 12 but not two.
    result, _, problems = collect(tokenizer, layout="2x4", p_right=0.9, n_problems=8, seed=3)
    assert result.stats["rollout/partial_parents_fallback"] >= 1
    for problem in problems:
        parents = [p for p in result.parents if p.problem_id == problem.id]
        groups = [g for g in result.groups if g.problem_id == problem.id]
        assert len(parents) in (0, 2)
        if not parents:
            assert [(g.kind, len(g.samples)) for g in groups] == [("fallback", 8)]
    # partial_parents=reset: resetrl's earlier rule, a reset group plus fresh chains
    result, _, problems = collect(tokenizer, layout="2x4", p_right=0.9, n_problems=8, seed=3, partial_parents="reset")
    assert any(sum(p.problem_id == q.id for p in result.parents) == 1 for q in problems)
    for problem in problems:
        parents = [p for p in result.parents if p.problem_id == problem.id]
        groups = [g for g in result.groups if g.problem_id == problem.id]
        fresh = sum(len(g.samples) for g in groups if g.kind != "reset")
        assert fresh == 8 - 4 * len(parents)


def test_reset_choice_recorded_and_localization_counted(tokenizer):
    answers = ("\\boxed{2}", "\\boxed{0}", "I don't know", "\\boxed{7}")
    result, backend, problems = collect(tokenizer, p_right=0.0, answers=answers)
    sources = [p.reset_source for p in result.parents]
    assert sources == ["self:boxed", "self:no_error->1", "self:unparsed->1", "self:out_of_range->1"]
    assert [p.reset_step for p in result.parents] == [2, 1, 1, 1]
    assert result.stats["reset/source/no_error->1"] == 1 and result.stats["reset/source/unparsed->1"] == 1
    assert result.stats["reset/source/out_of_range->1"] == 1
    assert result.stats["tokens/localization"] > 0
    result, _, _ = collect(tokenizer, p_right=0.0, answers=answers, out_of_range="clamp")
    assert [(p.reset_step, p.reset_source) for p in result.parents][3] == (3, "self:clamped")


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


class EmptyFirstBackend(ScriptedBackend):
    """Every prompt's first fresh chain is empty (no thought), the rest as scripted."""

    def generate_chains(self, requests, sampling, limits):
        results = super().generate_chains(requests, sampling, limits)
        if self.chain_calls == 1:
            for chains in results:
                chains[0] = GeneratedChain(ids=[], stop_reason="eos")
        return results


def test_a_chain_without_thoughts_is_never_a_parent(tokenizer):
    """Rule 7: an empty chain fails but is not reset from: it stays in G1 with reward 0."""
    result, _, problems = collect(tokenizer, p_right=0.0, backend=EmptyFirstBackend)
    assert len(result.parents) == len(problems)
    assert all(parent.thoughts for parent in result.parents)
    fresh = [s for g in result.groups if g.kind == "fresh" for s in g.samples]
    assert sum(not s.thoughts and s.reward == 0.0 for s in fresh) == len(problems)


class FailingContinuations(ScriptedBackend):
    """Continuation calls (a reset prefix) raise; fresh draws work."""

    def generate_chains(self, requests, sampling, limits):
        if any(request.prefix_tokens for request in requests):
            raise RuntimeError("engine died")
        return super().generate_chains(requests, sampling, limits)


def test_a_failed_continuation_call_becomes_fresh_chains(tokenizer):
    """Rule 8: a continuation that fails gets a fresh chain from scratch in its slot (trained from
    token 0, inside G2), counted; the step goes on."""
    # oracle resets after the first thought, so every reset has a prefix; rrpo's e = 1 would not
    result, _, problems = collect(tokenizer, method="oracle", p_right=0.0, backend=FailingContinuations)
    reset_groups = [g for g in result.groups if g.kind == "reset"]
    with_prefix = [g for g in reset_groups if g.reset_step > 1]
    assert with_prefix and result.stats["rollout/continuation_failed"] == 4 * len(with_prefix)
    for group in with_prefix:
        assert len(group.samples) == 4
        assert all(s.kind == "fresh" and s.train_start == 0 and s.reset_step is None for s in group.samples)


def test_localize_offset_resets_earlier(tokenizer):
    """Rule 22: SRPO_LOC_OFFSET: N thoughts earlier than localized, at least 1."""
    result, _, _ = collect(tokenizer, p_right=0.0, answers=("\\boxed{3}",), localize_offset=1)
    assert [p.reset_step for p in result.parents] == [2] * len(result.parents)
    result, _, _ = collect(tokenizer, p_right=0.0, answers=("\\boxed{3}",), localize_offset=5)
    assert [p.reset_step for p in result.parents] == [1] * len(result.parents)


def test_an_answer_cut_at_its_token_budget_is_counted_apart(tokenizer):
    """Item 6: an unusable answer that filled the localization budget was cut before its box
    ("truncated->1"), told apart from one that ended without a usable box ("unparsed->1")."""
    task = create_task("arith_chain", steps=3)
    problem = task.problems("train", 1, seed=0)[0]
    chain = Scorer(tokenizer, task).sample(problem, [1], tokenizer("1 + 1 = 3</thought>\n2</thought>\n",
                                                                    add_special_tokens=False).input_ids, "fresh", "eos", 5)
    answers = iter([("Let me check every step carefully, starting", 16), ("I cannot tell", 4)])
    context = LocateContext(lambda texts: [next(answers) for _ in texts], max_tokens=16)
    points = LOCALIZERS.get("self")().locate([problem, problem], [chain, chain], context)
    assert [(p.step, p.source) for p in points] == [(1, "self:truncated->1"), (1, "self:unparsed->1")]


def test_first_reset_is_the_reset_layout_with_an_empty_prefix(tokenizer):
    """The layout control: the same parent search and groups of 4 + 4, every reset at thought 1."""
    result, _, problems = collect(tokenizer, method="first_reset", p_right=0.3)
    assert result.parents and all(p.reset_step == 1 and p.reset_source == "regenerate" for p in result.parents)
    resets = [g for g in result.groups if g.kind == "reset"]
    assert resets and all(len(g.samples) == 4 and all(s.train_start == 0 for s in g.samples) for g in resets)


def test_grpo_mask_trains_each_fresh_chain_from_the_decision_thought(tokenizer):
    result, _, problems = collect(tokenizer, method="grpo", train_from_thought=3)
    plain = {id(s) for g in result.groups for s in g.samples}
    checked = 0
    for sample in (s for g in result.groups for s in g.samples):
        if len(sample.spans) >= 3:  # the loss starts where thought 3 starts, after thoughts 1-2
            assert sample.train_start == sample.spans[1][1] > 0
            checked += 1
        elif sample.spans:  # a chain that stopped earlier: its last thought
            assert sample.train_start == (sample.spans[-2][1] if len(sample.spans) >= 2 else 0)
    assert checked > 0 and len(plain) == 8 * len(problems)


def test_grpo_mask_needs_a_task_that_names_its_decision(tokenizer):
    from types import SimpleNamespace

    from resetrl.errors import ResetRLError
    from resetrl.rollout import train_from_thought

    config = SimpleNamespace(method="grpo_mask")
    assert train_from_thought(SimpleNamespace(config=config, task=create_task("trap_chain", steps=12))) == 12
    assert train_from_thought(SimpleNamespace(config=SimpleNamespace(method="grpo"), task=None)) is None
    with pytest.raises(ResetRLError, match="names none"):
        train_from_thought(SimpleNamespace(config=config, task=create_task("arith_chain")))
