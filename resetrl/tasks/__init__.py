"""Tasks behind a registry: `create_task("arith_chain", steps=3)`, `create_task("reasoning_gym:chain_sum")`."""

from __future__ import annotations

import inspect
from typing import Callable

from resetrl.errors import ResetRLError
from resetrl.registry import did_you_mean
from resetrl.tasks import (  # noqa: F401  (register the built-in tasks and task families)
    arith_chain, choice_data, code_data, dataset, math_data, reasoning_gym_task, trap_chain,
)
from resetrl.tasks.base import TASK_FAMILIES, TASKS, Problem, Task


def task_factory(name: str) -> tuple[Callable[..., Task], str | None]:
    """(the registry entry that makes task `name`, the member's name for a `<family>:<member>` name);
    an unknown name is an error listing every known one."""
    family, separator, member = name.partition(":")
    if separator and family in TASK_FAMILIES:
        return TASK_FAMILIES.get(family), member
    if name not in TASKS:
        raise ResetRLError(f"unknown task {name!r}; known: {', '.join(task_names())}"
                           + did_you_mean(name, task_names()))
    return TASKS.get(name), None


def task_options(name: str) -> list[str] | None:
    """The knobs task `name` takes (its constructor's keyword arguments); None when any are passed
    through (a reasoning-gym generator takes its own config)."""
    factory, member = task_factory(name)
    if member is not None:
        return None
    parameters = inspect.signature(factory).parameters.values()
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_task_options(name: str, options: dict) -> None:
    """An option the task does not take is an error that lists the task's knobs."""
    known = task_options(name)
    unknown = [key for key in options if known is not None and key not in known]
    if unknown:
        knobs = ", ".join(known) if known else "none"
        raise ResetRLError(f"task {name!r} has no option(s) {', '.join(unknown)}; its options: {knobs}")


def create_task(name: str, **options) -> Task:
    factory, member = task_factory(name)
    if member is not None:
        return factory(member, **options)
    check_task_options(name, options)
    return factory(**options)


def task_names() -> list[str]:
    """Every task name, a family as `<family>:<member>` (reasoning_gym:<generator>)."""
    return TASKS.names() + [f"{family}:<{TASK_FAMILIES.get(family).member}>" for family in TASK_FAMILIES.names()]


__all__ = ["Problem", "Task", "TASKS", "TASK_FAMILIES", "check_task_options", "create_task", "task_factory",
           "task_names", "task_options"]
