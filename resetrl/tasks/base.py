"""What a task is: problems with gold answers, a scorer, and optionally the true first error."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

from resetrl.errors import ResetRLError
from resetrl.registry import Registry
from resetrl.prompts import GENERIC_EXAMPLES, build_prompt


@dataclass
class Problem:
    id: str
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base class of tasks. Subclasses implement `problems` and `score`; the rest is optional."""

    name = "task"
    splits = "train / test"  # where the split comes from, as `resetrl tasks` states it

    def problems(self, split: str, size: int | None, seed: int) -> list[Problem]:
        """Problems of a split ("train" or "test"); `size` None means all."""
        raise NotImplementedError

    def score(self, answer: str | None, problem: Problem) -> float:
        """Verifiable reward in [0, 1] of an extracted answer (None: the chain gave no answer)."""
        raise NotImplementedError

    def first_error(self, problem: Problem, thoughts: list[str]) -> int | None:
        """1-indexed first erroneous thought, 0 when none is wrong, None when the task cannot tell."""
        return None

    def reference_chain(self, problem: Problem) -> list[str] | None:
        """A correct chain of thoughts for supervised warm-up, when the task can write one."""
        return None

    def training_chain(self, problem: Problem, rng) -> list[str] | None:
        """The chain a model is trained on when it is built for this task (`resetrl micro build`):
        the reference chain, unless the task deliberately corrupts its training data (`trap_chain`)."""
        return self.reference_chain(problem)

    def examples(self) -> list[tuple[str, list[str]]]:
        """Two worked examples (question, thoughts) for the prompt variant that shows them."""
        return GENERIC_EXAMPLES

    def prompt_text(self, problem: Problem, tokenizer, style: str,
                    examples: Sequence[tuple[str, Sequence[str]]] | None,
                    instructions: str = "reference") -> tuple[str, str]:
        """The chain prompt's text and the style it is written in ("raw" gets the tokenizer's special
        tokens, "chat" has its template's): the thought-format prompt of the question in `style`
        (`instructions`: prompts.INSTRUCTION_STYLES), unless the task writes its own (a dataset's
        chat-list prompt)."""
        return build_prompt(problem.question, tokenizer, style, examples, instructions), style


Row = TypeVar("Row")


def seeded_split(rows: Sequence[Row], split: str, test_fraction: float, name: str, size: int | None,
                 seed: int) -> list[Row]:
    """For data without an official split: a fixed disjoint train/test split (the same for every
    run, so test figures compare), then `size` rows of the split in an order shuffled by `seed`."""
    if split not in ("train", "test"):
        raise ResetRLError(f"{name}: unknown split {split!r}; known: test, train")
    order = list(range(len(rows)))
    random.Random(f"{name}/split").shuffle(order)
    cut = round(len(rows) * test_fraction)
    chosen = order[:cut] if split == "test" else order[cut:]
    random.Random(seed).shuffle(chosen)
    return [rows[index] for index in (chosen if size is None else chosen[:size])]


TASKS: Registry[Callable[..., Task]] = Registry("task")
# Families of tasks named `<family>:<member>` (reasoning_gym:chain_sum): the entry is called with the
# member's name and the options; its `member` attribute names what the member is (for `resetrl tasks`).
TASK_FAMILIES: Registry[Callable[..., Task]] = Registry("task family")
