"""The scoring stage: the task's score by default, a reward function when given, the same limits."""

import time

from resetrl.scoring import Scorer, training_reward
from resetrl.tasks import create_task


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
