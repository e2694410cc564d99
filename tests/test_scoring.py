"""The scoring stage: the task's score by default, a reward function when given, the same limits."""

import time

from resetrl.scoring import Scorer, training_reward
from resetrl.tasks import Problem, create_task
from resetrl.tasks.arith_chain import ArithChain
from resetrl.tasks.math_data import MATH500
from tests.conftest import metric_rows
from tests.test_trainer import scripted_trainer


def test_a_reward_function_replaces_the_tasks_score_under_the_same_limits(tokenizer):
    task = create_task("arith_chain", steps=1)
    problem = task.problems("test", 1, 0)[0]
    wrong = f"{problem.question} </thought> \\boxed{{{int(problem.answer) + 1}}}"
    ids = tokenizer(wrong, add_special_tokens=False).input_ids
    default = Scorer(tokenizer, task).sample(problem, [1], ids, "fresh", "stop", len(ids))
    assert default.reward == 0.0 and default.answer == str(int(problem.answer) + 1)

    seen = []

    def length_reward(problem_, completion):
        seen.append((problem_.id, completion))
        return len(completion) / 1000

    sample = Scorer(tokenizer, task, reward=length_reward).sample(problem, [1], ids, "fresh", "stop", len(ids))
    completion = tokenizer.decode(ids, skip_special_tokens=True)
    assert seen == [(problem.id, completion)] and sample.reward == len(completion) / 1000
    assert sample.answer == default.answer and sample.thoughts == default.thoughts  # read the same way

    def broken(problem_, completion):
        raise KeyError("x")

    def slow(problem_, completion):
        time.sleep(5)
        return 1.0

    scorer = Scorer(tokenizer, task, score_timeout=0.3, reward=broken)
    assert scorer.reward(None, problem, completion) == 0.0
    scorer.custom_reward = slow
    assert scorer.reward(None, problem, completion) == 0.0
    assert scorer.take_stats() == {"reward/score_errors": 1.0, "reward/score_timeouts": 1.0}
    assert training_reward(None) is None


def test_the_scorer_records_the_tasks_first_error_on_every_sample(tokenizer):
    task = create_task("arith_chain", steps=3)
    problem = task.problems("test", 1, 0)[0]
    right = task.reference_chain(problem)
    wrong = [right[0], "1 + 1 = 3", *right[2:]]
    scorer = Scorer(tokenizer, task)

    def scored(thoughts, kind):
        ids = tokenizer(" </thought> ".join(thoughts) + " </thought>", add_special_tokens=False).input_ids
        return scorer.sample(problem, [1], ids, kind, "stop", len(ids))

    assert scored(right, "fresh").first_error == 0  # every thought right: none
    assert scored(wrong, "fresh").first_error == scored(wrong, "parent").first_error == 2
    assert scored(wrong, "fresh").record(1)["first_error"] == 2  # written to rollouts.jsonl

    class NoChecker(type(task)):
        def first_error(self, problem_, thoughts):
            return None

    blind = Scorer(tokenizer, NoChecker(steps=3)).sample(problem, [1], [2, 3], "fresh", "stop", 2)
    assert blind.first_error is None


class FlakyTask(ArithChain):
    """arith_chain whose scorer raises on every 3rd answer and hangs on every 5th (and that, like a
    reasoning-gym task, does not know first errors: arith_chain's step checker calls its scorer)."""

    calls = 0

    def first_error(self, problem, thoughts):
        return None

    def score(self, answer, problem):
        FlakyTask.calls += 1
        if FlakyTask.calls % 3 == 0:
            raise ZeroDivisionError("a bug in the reward function")
        if FlakyTask.calls % 5 == 0:
            time.sleep(600)
        return super().score(answer, problem)


def test_a_scorer_that_raises_or_hangs_scores_zero_is_counted_and_the_run_goes_on(tmp_path, capsys):
    trainer = scripted_trainer(tmp_path, steps=2, overrides=["task.score_timeout=0.2"])
    trainer.scorer.task = trainer.runtime.task = FlakyTask(steps=3)
    started = time.perf_counter()
    trainer.run()
    assert time.perf_counter() - started < 120
    rows = metric_rows(tmp_path)[1:]
    assert sum(row["reward/score_errors"] for row in rows) > 0
    assert sum(row["reward/score_timeouts"] for row in rows) > 0
    out = capsys.readouterr().out
    assert "raised ZeroDivisionError: a bug in the reward function" in out
    assert "ran past task.score_timeout=0.2 s" in out


def test_an_answer_checker_that_hangs_is_cut_at_its_limit(tokenizer, monkeypatch):
    """math-verify runs in a worker process (resetrl/tasks/checking.py); a caller stuck waiting for it
    is cut at the scorer's limit, and the worker, whose reply would answer the next check, is killed."""
    from resetrl.tasks import checking

    assert checking.math_equal("1", "1") == 1.0  # the worker is up
    waits = []
    monkeypatch.setattr(checking._Worker, "_read", lambda self, seconds: waits.append(seconds) or time.sleep(600))
    # 2 s, not less: on a loaded machine a shorter limit can fire before the request is even sent.
    scorer = Scorer(tokenizer, MATH500(), score_timeout=2.0)
    started = time.perf_counter()
    assert scorer.reward("1", Problem(id="p", question="q", answer="1")) == 0.0
    assert time.perf_counter() - started < 30
    assert waits and checking._WORKER.process is None  # it was waiting for a reply, and the worker is gone
    assert scorer.take_stats() == {"reward/score_errors": 0.0, "reward/score_timeouts": 1.0}
