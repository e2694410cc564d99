"""`reasoning_gym:<name>`: any reasoning-gym generator, scored by its own `score_answer`."""

from __future__ import annotations

from resetrl.errors import ResetRLError
from resetrl.tasks.base import TASK_FAMILIES, Problem, Task


@TASK_FAMILIES.register("reasoning_gym")
class ReasoningGymTask(Task):
    """any reasoning-gym generator, scored by its own score_answer"""

    member = "generator"
    splits = "generated; train and test from different seeds"

    def __init__(self, generator: str, **options):
        import reasoning_gym

        self.name = f"reasoning_gym:{generator}"
        self.generator, self.options = generator, options
        self._create = reasoning_gym.create_dataset
        try:
            self._datasets = {}
            self._dataset("test", 1, 0)
        except Exception as error:  # reasoning-gym raises a bare error for unknown names
            raise ResetRLError(f"reasoning-gym cannot create {generator!r}: {error}") from None

    def _dataset(self, split: str, size: int, seed: int):
        key = (split, size, seed)
        if key not in self._datasets:
            split_seed = seed * 2 + (1 if split == "test" else 0)
            self._datasets[key] = self._create(self.generator, size=size, seed=split_seed, **self.options)
        return self._datasets[key]

    def problems(self, split: str, size: int | None, seed: int) -> list[Problem]:
        if split not in ("train", "test"):
            raise ResetRLError(f"{self.name}: unknown split {split!r}; known: test, train")
        dataset = self._dataset(split, size or 500, seed)
        return [
            Problem(id=f"{split}-{index}", question=entry["question"], answer=str(entry["answer"]),
                    meta={"entry": entry, "dataset": dataset})
            for index, entry in enumerate(dataset)
        ]

    def score(self, answer: str | None, problem: Problem) -> float:
        if answer is None:
            return 0.0
        return float(problem.meta["dataset"].score_answer(answer=answer, entry=problem.meta["entry"]))
