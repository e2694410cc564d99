"""Thought-ICS loop with a scripted generator: the three exits, variants S and A, levels, fallbacks,
the baselines that share the loop, verification parsing and gates, and the summary figures."""

from __future__ import annotations

import pytest

from resetrl.ics.engine import ChainEngine, ICSSettings
from resetrl.ics.loop import Iteration, Trajectory
from resetrl.ics.methods import ICS_METHODS, initial_chains, run_method
from resetrl.ics.metrics import comparison_table, localization_table, summarize
from resetrl.ics.verification import gate, parse_verdict
from resetrl.tasks import create_task
from resetrl.prompts import build_prompt
from resetrl.thoughts import ChainLimits, format_chain
from tests.conftest import ScriptedBackend


class ICSBackend(ScriptedBackend):
    """Arith chains whose correctness follows a per-problem schedule (then stays at the last entry);
    a wrong chain is off by one from its first resampled step on. Free-text calls are answered by
    kind: verification (`verdicts`), quotes (`quotes`) or step localization (`localizations`), each
    cycled; every prompt is kept in `prompts_seen`."""

    def __init__(self, tokenizer, problems, schedule=(False,), verdicts=("\\boxed{NO}",),
                 localizations=("\\boxed{2}",), quotes=("\\boxed{NONE}",)):
        super().__init__(tokenizer, problems)
        self.schedule = {p.question: list(schedule) for p in problems}
        self.answers = {"verify": list(verdicts), "quote": list(quotes), "localize": list(localizations)}
        self.calls = {kind: 0 for kind in self.answers}
        self.prompts_seen: list[str] = []

    def _wrong_from(self, problem, prefix_thoughts):
        queue = self.schedule[problem.question]
        right = queue.pop(0) if len(queue) > 1 else queue[0]
        return None if right else prefix_thoughts + 1

    def generate_text(self, prompts, sampling, max_new_tokens):
        outputs = []
        for prompt in prompts:
            text = self.tokenizer.decode(prompt)
            self.prompts_seen.append(text)
            kind = "verify" if "\\boxed{YES}" in text else "quote" if "Copy the first erroneous" in text else "localize"
            answers = self.answers[kind]
            outputs.append(self.tokenizer(answers[self.calls[kind] % len(answers)], add_special_tokens=False).input_ids)
            self.calls[kind] += 1
        return outputs


def make_engine(tokenizer, n_problems=2, **backend_options):
    task = create_task("arith_chain", steps=3)
    problems = task.problems("test", n_problems, seed=0)
    backend = ICSBackend(tokenizer, problems, **backend_options)
    engine = ChainEngine(backend, tokenizer, task, ChainLimits(),
                         lambda p: tokenizer(build_prompt(p.question, tokenizer)).input_ids)
    return engine, backend, problems


def test_scripted_chains_have_the_scheduled_first_error(tokenizer):
    engine, _, problems = make_engine(tokenizer, schedule=(True, False))
    right, wrong = initial_chains(engine, ICSSettings(), problems[:1]) + initial_chains(engine, ICSSettings(), problems[:1])
    assert right.correct and right.first_error == 0 and len(right.steps) == 3
    assert not wrong.correct and wrong.first_error == 1


def test_exit_verified_at_first_chain(tokenizer):
    engine, backend, problems = make_engine(tokenizer, schedule=(True,))
    trajectories = run_method("thought-ics", engine, ICSSettings(level="L2", max_iters=5), problems, progress=False)
    assert all(t.exit == "verified" and len(t.iterations) == 1 for t in trajectories)
    assert backend.calls["localize"] == 0  # oracle verification: no localizer call needed


def test_exit_disagree_when_localizer_finds_no_error(tokenizer):
    engine, backend, problems = make_engine(tokenizer, schedule=(False,), verdicts=("\\boxed{NO}",),
                                            localizations=("All steps hold. \\boxed{0}",))
    trajectories = run_method("thought-ics", engine, ICSSettings(level="L3", max_iters=5), problems, progress=False)
    for trajectory in trajectories:
        assert trajectory.exit == "disagree" and len(trajectory.iterations) == 1
        assert trajectory.iterations[0].located.source == "no_error"
    # Paper B's code asks at L3 with a neutral prompt (tests/test_ics_reference.py checks its content)
    assert "\\boxed{0} if the reasoning is correct" in backend.prompts_seen[-1]
    # the earlier prompt (says the answer is wrong, then hedges) stays as `localize_prompt_l3: note`
    engine, backend, problems = make_engine(tokenizer, schedule=(False,), localizations=("\\boxed{0}",))
    settings = ICSSettings(level="L3", max_iters=5, localize_prompt_l3="note")
    assert all(t.exit == "disagree" for t in run_method("thought-ics", engine, settings, problems, progress=False))
    assert "If every step is justified, end with \\boxed{0}" in backend.prompts_seen[-1]


def test_exit_max_iterations_keeps_the_clean_prefix(tokenizer):
    engine, backend, problems = make_engine(tokenizer, schedule=(False,), localizations=("\\boxed{2}",))
    trajectories = run_method("thought-ics", engine, ICSSettings(level="L2", max_iters=3), problems, progress=False)
    for trajectory in trajectories:
        assert trajectory.exit == "max_iterations" and len(trajectory.iterations) == 4
        assert trajectory.iterations[-1].verdict is None  # the last resample is returned unchecked
        for before, after in zip(trajectory.iterations, trajectory.iterations[1:]):
            assert before.located.step == 2 and after.attempt.resumed_from == 2
            assert after.attempt.steps[0] == before.attempt.steps[0]  # thought 1 kept as tokens
            assert after.attempt.response_ids[:after.attempt.prefix_tokens] == \
                before.attempt.response_ids[:after.attempt.prefix_tokens]
            assert after.attempt.new_tokens < len(after.attempt.response_ids)


def test_variants_s_and_a_from_the_same_trajectory(tokenizer):
    # Wrong, then right; the self-verifier says NO every time, so the loop ends at max_iterations:
    # S returns the (right) final chain, A falls back to the (wrong) first one.
    engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(False, True), verdicts=("\\boxed{NO}",),
                                      localizations=("\\boxed{1}",))
    (trajectory,) = run_method("thought-ics", engine, ICSSettings(level="L3", max_iters=1), problems, progress=False)
    assert trajectory.exit == "max_iterations"
    assert trajectory.selected["S"].correct and not trajectory.selected["A"].correct
    # The same chains, but the verifier certifies the second: both variants return it.
    engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(False, True),
                                      verdicts=("\\boxed{NO}", "\\boxed{YES}"), localizations=("\\boxed{1}",))
    (trajectory,) = run_method("thought-ics", engine, ICSSettings(level="L3", max_iters=4), problems, progress=False)
    assert trajectory.exit == "verified" and len(trajectory.iterations) == 2
    assert trajectory.selected["S"].correct and trajectory.selected["A"].correct


def test_l2_no_error_and_unparsed_fall_back_to_scratch(tokenizer):
    engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(False,),
                                      localizations=("\\boxed{0}", "no idea"))
    (trajectory,) = run_method("thought-ics", engine, ICSSettings(level="L2", max_iters=2), problems, progress=False)
    assert [it.located.source for it in trajectory.iterations[:2]] == ["no_error->1", "unparsed->1"]
    assert trajectory.iterations[1].attempt.resumed_from == 1 and trajectory.exit == "max_iterations"


def test_l1_localizer_sees_the_answer_l2_does_not(tokenizer):
    for level, shown in (("L1", True), ("L2", False)):
        engine, backend, problems = make_engine(tokenizer, n_problems=1, schedule=(False,))
        run_method("thought-ics", engine, ICSSettings(level=level, max_iters=1), problems, progress=False)
        prompt = backend.prompts_seen[0]
        assert ("the correct final answer is " + problems[0].answer in prompt) is shown
        assert "Step 1:" in prompt and "first erroneous step" in prompt  # the trainer's localization prompt


@pytest.mark.parametrize("method", ["regen", "self-refine"])
def test_baselines_share_the_loop_without_localizer(tokenizer, method):
    engine, backend, problems = make_engine(tokenizer, schedule=(False, False, True))
    trajectories = run_method(method, engine, ICSSettings(level="L2", max_iters=4), problems, progress=False)
    for trajectory in trajectories:
        assert trajectory.exit == "verified" and len(trajectory.iterations) == 3
        assert all(it.attempt.resumed_from == 1 and it.attempt.prefix_tokens == 0 for it in trajectory.iterations[1:])
    assert backend.calls["localize"] == 0
    if method == "self-refine":
        assert any("A previous attempt at this problem" in tokenizer.decode(request) for request in [
            it.attempt.prompt_ids for it in trajectories[0].iterations[1:]])


def test_oracle_localization_resets_at_the_true_first_error(tokenizer):
    engine, backend, problems = make_engine(tokenizer, n_problems=1, schedule=(False, True))
    (trajectory,) = run_method("oracle-ics", engine, ICSSettings(level="L2", max_iters=3), problems, progress=False)
    assert trajectory.iterations[0].located.step == trajectory.first.first_error == 1
    assert trajectory.exit == "verified" and backend.calls["localize"] == 0
    assert summarize([trajectory])["localize/exact"] == 1.0


def test_majority_vote_uses_the_budget_and_votes(tokenizer):
    engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(False, True, True))
    (trajectory,) = run_method("majority", engine, ICSSettings(max_iters=2), problems, progress=False)
    assert len(trajectory.iterations) == 3 and trajectory.exit == "vote"
    assert trajectory.selected["S"].correct and trajectory.selected["A"] is trajectory.selected["S"]
    # a tie (wrong answers repeat: each is off by one at thought 1) goes to the earliest answer
    engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(False, True, True, False))
    (trajectory,) = run_method("majority", engine, ICSSettings(max_iters=3), problems, progress=False)
    assert trajectory.selected["S"] is trajectory.first and not trajectory.first.correct


def test_shared_initial_chains(tokenizer):
    engine, _, problems = make_engine(tokenizer, schedule=(True,))
    initial = initial_chains(engine, ICSSettings(), problems)
    for method in ("thought-ics", "regen", "self-refine", "majority"):
        trajectories = ICS_METHODS.get(method)(engine, ICSSettings(max_iters=2, votes=2), problems, initial, False)
        assert [t.first for t in trajectories] == initial


def test_exact_verdict_parser():
    # `verdict_parser: exact` (resetrl's earlier parser; the reference's is in test_ics_reference.py)
    assert parse_verdict("All good.\n\\boxed{YES}", "exact") is True
    assert parse_verdict("\\boxed{no}", "exact") is False
    assert parse_verdict("\\boxed{\\text{Yes}.}", "exact") is True
    assert parse_verdict("Step 2 is wrong, so NO", "exact") is False
    assert parse_verdict("\\boxed{YES} ... on reflection \\boxed{NO}", "exact") is False  # the last box counts
    assert parse_verdict("there is no doubt", "exact") is None  # lower-case prose is not a verdict
    assert parse_verdict("\\boxed{42}", "exact") is None


def test_verification_gates():
    votes = [True, False, None]
    assert gate(votes, "any") and not gate(votes, "majority") and not gate(votes, "unanimous")
    assert gate([True, True, None], "majority") and not gate([True, True, None], "unanimous")
    assert gate([True, True], "unanimous") and not gate([None], "any")


def test_self_verification_with_k_samples(tokenizer):
    # k = 3 votes per check, cycled YES, YES, NO: majority certifies, unanimous does not.
    for rule, exit_kind in (("majority", "verified"), ("unanimous", "max_iterations")):
        engine, backend, problems = make_engine(tokenizer, n_problems=1, schedule=(False,),
                                                verdicts=("\\boxed{YES}", "\\boxed{YES}", "\\boxed{NO}"))
        settings = ICSSettings(level="L3", max_iters=1, verify_samples=3, verify_gate=rule)
        (trajectory,) = run_method("thought-ics", engine, settings, problems, progress=False)
        assert trajectory.exit == exit_kind and trajectory.iterations[0].verdict.votes == [True, True, False]
        assert backend.calls["verify"] == 3


def test_summary_counts_transitions_exits_and_localization(tokenizer):
    engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(False, True))
    (fixed,) = run_method("thought-ics", engine, ICSSettings(level="L2", max_iters=3), problems, progress=False)
    engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(True,))
    (kept,) = run_method("thought-ics", engine, ICSSettings(level="L2", max_iters=3), problems, progress=False)
    broken = Trajectory(kept.problem, "thought-ics", [Iteration(kept.first), Iteration(fixed.first)], "disagree")
    broken.select()
    summary = summarize([fixed, kept, broken])
    assert summary["accuracy/initial"] == pytest.approx(2 / 3)
    assert summary["accuracy/S"] == pytest.approx(2 / 3) and summary["accuracy/A"] == pytest.approx(1.0)
    assert summary["wrong_to_right/S"] == 1 and summary["right_to_wrong/S"] == 1
    assert summary["wrong_to_right/A"] == 1 and summary["right_to_wrong/A"] == 0
    assert summary["exits/verified"] == 2 and summary["exits/disagree"] == 1
    # the localizer answered \boxed{2}; the first chain's true first error is thought 1: not clean
    assert summary["localize/n"] == 1 and summary["localize/exact"] == 0.0 and summary["localize/clean_prefix"] == 0.0
    assert summary["fix_rate/dirty_prefix"] == 1.0 and summary["fix_rate/clean_prefix"] is None
    assert "| thought-ics |" in comparison_table({"thought-ics": summary}, "S")
    assert "| thought-ics | 1 | 0.0 |" in localization_table({"thought-ics": summary, "regen": {}})
    # Unstructured chains (token-ics: one segment each) are trivially localized: blank, not 100%.
    for iteration in fixed.iterations:
        iteration.attempt.structured = False
    unstructured = summarize([fixed])
    assert unstructured["localize/n"] == 1 and unstructured["localize/exact"] is None
    assert unstructured["fix_rate/dirty_prefix"] is None and unstructured["fix_rate/clean_prefix_n"] == 0
    assert "| token-ics | 1 | - | - | - | - (n=0) | - (n=0) |" in localization_table({"token-ics": unstructured})


def test_settings_reject_bad_values():
    with pytest.raises(ValueError):
        ICSSettings(level="L4")
    with pytest.raises(ValueError):
        ICSSettings(verify_gate="most")
    assert ICSSettings(max_iters=4).majority_votes == 5 and ICSSettings(votes=3).majority_votes == 3
