"""Tasks behind a registry: `create_task("arith_chain", steps=3)`, `create_task("reasoning_gym:chain_sum")`."""

from __future__ import annotations

from resetrl.errors import ResetRLError
from resetrl.tasks import arith_chain, math_data, trap_chain  # noqa: F401  (register the built-in tasks)
from resetrl.tasks.base import TASKS, Problem, Task

REASONING_GYM_PREFIX = "reasoning_gym:"


def create_task(name: str, **options) -> Task:
    if name.startswith(REASONING_GYM_PREFIX):
        from resetrl.tasks.reasoning_gym_task import ReasoningGymTask

        return ReasoningGymTask(name[len(REASONING_GYM_PREFIX):], **options)
    if name not in TASKS:
        raise ResetRLError(f"unknown task {name!r}; known: {', '.join(task_names())}")
    factory = TASKS.get(name)
    try:
        return factory(**options)
    except TypeError as error:
        raise ResetRLError(f"task {name!r}: bad options {options}: {error}") from None


def task_names() -> list[str]:
    return TASKS.names() + [REASONING_GYM_PREFIX + "<generator>"]


__all__ = ["Problem", "Task", "TASKS", "create_task", "task_names"]
