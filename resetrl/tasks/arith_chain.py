"""`arith_chain`: synthetic multi-step arithmetic where the first erroneous thought is known exactly.

"Start with 7. Add 5. Multiply by 3. Subtract 4." Each operation is one thought ("7 + 5 = 12"), the
last thought also holds the answer in \\boxed{}. The step checker compares the number after "=" in
thought i with the true running value after operation i.
"""

from __future__ import annotations

import random
import re

from resetrl.errors import ResetRLError
from resetrl.tasks.base import TASKS, Problem, Task
from resetrl.thoughts import extract_boxed

OPERATIONS = {
    "+": ("Add", lambda value, operand: value + operand),
    "-": ("Subtract", lambda value, operand: value - operand),
    "*": ("Multiply by", lambda value, operand: value * operand),
}
_RESULT = re.compile(r"=\s*(-?\d+)")
# The validation split leaves out the first this many train problems: a micro build's 20,000 solver
# and 1,000 own-chain problems, and any RL train split up to that size.
VALIDATION_CLEAR_OF_TRAIN = 21000


@TASKS.register("arith_chain")
class ArithChain(Task):
    """Synthetic multi-step arithmetic with an exact step checker.

    Knobs: `steps` operations per problem, operands in 1..`operand_max`, start in 1..`start_max`,
    `ops` a string of the allowed operations among + - *."""

    name = "arith_chain"
    splits = ("generated from the seed; train leaves out every test question; validation (eval.split, for "
              "choosing learning rates) leaves out the test questions and the first 21,000 train ones")

    def __init__(self, steps: int = 3, operand_max: int = 9, start_max: int = 9, ops: str = "+-*"):
        if steps < 1 or operand_max < 1 or start_max < 1:
            raise ResetRLError("arith_chain: steps, operand_max and start_max must be >= 1")
        unknown = set(ops) - set(OPERATIONS)
        if not ops or unknown:
            raise ResetRLError(f"arith_chain: ops must be made of + - *, got {ops!r}")
        self.steps, self.operand_max, self.start_max, self.ops = steps, operand_max, start_max, ops

    def _make(self, rng: random.Random, index: int, split: str) -> Problem:
        start = rng.randint(1, self.start_max)
        program = [(rng.choice(self.ops), rng.randint(1, self.operand_max)) for _ in range(self.steps)]
        words = " ".join(f"{OPERATIONS[op][0]} {operand}." for op, operand in program)
        values, value = [], start
        for op, operand in program:
            value = OPERATIONS[op][1](value, operand)
            values.append(value)
        return Problem(
            id=f"{split}-{index}",
            question=f"Start with {start}. {words} What is the result?",
            answer=str(value),
            meta={"start": start, "program": program, "values": values},
        )

    def problems(self, split: str, size: int | None, seed: int) -> list[Problem]:
        if split not in ("train", "test", "examples", "validation"):
            raise ResetRLError(f"arith_chain: unknown split {split!r}; known: examples, test, train, validation")
        size = 1000 if size is None else size
        # Separate random streams per split; train drops any question that is in the test split, and
        # validation (for choosing learning rates) any that is in the test split or among the first
        # VALIDATION_CLEAR_OF_TRAIN of the train stream (what a micro build and an RL run draw).
        stream = {"train": 0, "test": 1, "examples": 2, "validation": 3}[split]
        rng = random.Random(f"arith_chain/{seed}/{stream}")
        excluded = set()
        if split == "train":
            excluded = {p.question for p in self.problems("test", 500, seed)}
        elif split == "validation":
            excluded = {p.question for p in self.problems("train", VALIDATION_CLEAR_OF_TRAIN, seed)}
            excluded |= {p.question for p in self.problems("test", 500, seed)}
        problems: list[Problem] = []
        attempts = 0
        while len(problems) < size and attempts < 50 * size + 100:
            attempts += 1
            problem = self._make(rng, len(problems), split)
            if problem.question not in excluded:
                problems.append(problem)
        return problems

    def score(self, answer: str | None, problem: Problem) -> float:
        if answer is None:
            return 0.0
        try:
            return float(int(answer.strip().replace(" ", "")) == int(problem.answer))
        except ValueError:
            return 0.0

    def reference_chain(self, problem: Problem) -> list[str]:
        thoughts, value = [], problem.meta["start"]
        for (op, operand), result in zip(problem.meta["program"], problem.meta["values"]):
            thoughts.append(f"{value} {op} {operand} = {result}")
            value = result
        thoughts[-1] += f", so the answer is \\boxed{{{value}}}"
        return thoughts

    def first_error(self, problem: Problem, thoughts: list[str]) -> int | None:
        values = problem.meta["values"]
        for index, expected in enumerate(values):
            if index >= len(thoughts):
                # The chain stopped early: the thought that should have done this step is missing;
                # the last thought written is where it went wrong.
                return max(1, len(thoughts))
            found = _RESULT.search(thoughts[index])
            if found is None or int(found.group(1)) != expected:
                return index + 1
        # Every step right: an error can only be in the final answer's thought.
        answer = extract_boxed("\n".join(thoughts))
        if self.score(answer, problem) == 1.0:
            return 0
        return min(len(values) + 1, len(thoughts))

    def examples(self) -> list[tuple[str, list[str]]]:
        return [(p.question, self.reference_chain(p)) for p in self.problems("examples", 2, seed=0)]
