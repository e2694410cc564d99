"""Tasks behind a registry: `create_task("arith_chain", steps=3)`, `create_task("reasoning_gym:chain_sum")`."""

from __future__ import annotations

import inspect

from resetrl.errors import ResetRLError
from resetrl.tasks import (  # noqa: F401  (register the built-in tasks)
    arith_chain, choice_data, code_data, math_data, trap_chain,
)
from resetrl.tasks.base import TASKS, Problem, Task

REASONING_GYM_PREFIX = "reasoning_gym:"


def task_options(name: str) -> list[str] | None:
    """The knobs task `name` takes (its constructor's keyword arguments); None when any are passed
    through (a reasoning-gym generator takes its own config)."""
    if name.startswith(REASONING_GYM_PREFIX):
        return None
    if name not in TASKS:
        raise ResetRLError(f"unknown task {name!r}; known: {', '.join(task_names())}")
    parameters = inspect.signature(TASKS.get(name)).parameters.values()
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_task_options(name: str, options: dict) -> None:
    """An option the task does not take is an error that lists the task's knobs."""
    known = task_options(name)
    unknown = [key for key in options if known is not None and key not in known]
    if unknown:
        knobs = ", ".join(known) if known else "none"
        raise ResetRLError(f"task {name!r} has no option(s) {', '.join(unknown)}; its options: {knobs}")


def create_task(name: str, **options) -> Task:
    if name.startswith(REASONING_GYM_PREFIX):
        from resetrl.tasks.reasoning_gym_task import ReasoningGymTask

        return ReasoningGymTask(name[len(REASONING_GYM_PREFIX):], **options)
    check_task_options(name, options)
    return TASKS.get(name)(**options)


def task_names() -> list[str]:
    return TASKS.names() + [REASONING_GYM_PREFIX + "<generator>"]


__all__ = ["Problem", "Task", "TASKS", "check_task_options", "create_task", "task_names", "task_options"]
