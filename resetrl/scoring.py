"""The scoring stage: a generated chain becomes a scored `Sample` (thoughts, spans, answer, reward).

The reward is the task's own score of the chain's `\\boxed{}` answer, unless the run names another:
a plain function `reward(problem, completion) -> float` (as TRL's `reward_funcs`), registered by
name (`@register_reward("name")`, then `task.reward=name`) or passed to `resetrl.train`. Either one
runs under the same time limit; one that raises or runs past it scores 0 and is counted.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable

from resetrl.groups import Sample
from resetrl.registry import Registry
from resetrl.tasks.base import Problem, Task
from resetrl.thoughts import extract_boxed, split_thoughts, thought_spans

Reward = Callable[[Problem, str], float]
"""A reward: (the problem, the completion's decoded text) -> reward, 1.0 counting as solved."""

REWARDS: Registry[Reward] = Registry("reward")


def register_reward(name: str) -> Callable[[Reward], Reward]:
    """Decorator: `@register_reward("digits") def digits(problem, completion): ...`, then `task.reward=digits`."""
    return REWARDS.register(name)


def training_reward(name: str | None) -> Reward | None:
    """The reward `task.reward` names; None (the default) is the task's own score."""
    return None if name is None else REWARDS.get(name)


class ScoreTimeout(BaseException):
    """A task's scorer ran past its time limit (a BaseException: a scorer's own `except Exception`
    must not swallow it)."""


class _Watchdog:
    """One daemon thread that signals the main thread (SIGUSR1) while a deadline is overdue. Arming
    is a float assignment (a timer thread per call cost 100 us a score). SIGUSR1, not SIGALRM:
    math-verify sets and clears SIGALRM for its own limits."""

    poll_seconds = 0.05

    def __init__(self):
        self.deadline: float | None = None
        self.pid = os.getpid()  # a forked child has no watchdog thread: it starts its own
        signal.signal(signal.SIGUSR1, self._expire)
        threading.Thread(target=self._watch, name="resetrl-score-watchdog", daemon=True).start()

    def _watch(self) -> None:
        main = threading.main_thread().ident
        while True:
            time.sleep(self.poll_seconds)
            deadline = self.deadline
            if deadline is not None and time.monotonic() > deadline:
                signal.pthread_kill(main, signal.SIGUSR1)

    def _expire(self, signum, frame) -> None:
        # A signal meant for a block that has ended, or for an earlier one, finds no overdue deadline.
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ScoreTimeout


_watchdog: _Watchdog | None = None


@contextmanager
def time_limit(seconds: float):
    """Raise ScoreTimeout in the block once `seconds` of wall-clock time have passed (to within
    0.05 s). Only in the main thread (elsewhere no limit); code stuck inside one C call stops when
    it returns."""
    global _watchdog
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _watchdog is None or _watchdog.pid != os.getpid():
        _watchdog = _Watchdog()
    _watchdog.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _watchdog.deadline = None


class Scorer:
    """Turns generated ids into a scored Sample: thoughts, spans, answer, reward. The reward is
    `reward(problem, completion)` when given, else the task's score of the boxed answer. A reward
    that raises or runs past `score_timeout` seconds gives 0, counted (`take_stats`), and the run
    goes on."""

    def __init__(self, tokenizer, task: Task, score_timeout: float = 10.0, reward: Reward | None = None):
        self.tokenizer, self.task, self.score_timeout = tokenizer, task, score_timeout
        self.custom_reward = reward
        self.decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)
        self.failures = {"errors": 0, "timeouts": 0}

    def reward(self, answer: str | None, problem: Problem, completion: str = "") -> float:
        try:
            with time_limit(self.score_timeout):
                if self.custom_reward is not None:
                    return float(self.custom_reward(problem, completion))
                return float(self.task.score(answer, problem))
        except ScoreTimeout:
            kind, reason = "timeouts", f"ran past task.score_timeout={self.score_timeout:g} s"
        except Exception as error:
            kind, reason = "errors", f"raised {type(error).__name__}: {error}"
        if not any(self.failures.values()):  # once per step: the count is in the metrics
            scorer = (f"reward {getattr(self.custom_reward, '__name__', self.custom_reward)!r}"
                      if self.custom_reward is not None else f"task {self.task.name!r} scorer")
            print(f"resetrl: warning: {scorer} {reason} on answer {answer!r} of problem "
                  f"{problem.id}; scored 0 (reward/score_{kind})")
        self.failures[kind] += 1
        return 0.0

    def take_stats(self) -> dict[str, float]:
        """Scorer failures since the last call: reward/score_errors, reward/score_timeouts."""
        stats = {f"reward/score_{kind}": float(count) for kind, count in self.failures.items()}
        self.failures = {kind: 0 for kind in self.failures}
        return stats

    def sample(self, problem: Problem, prompt_ids: list[int], response_ids: list[int], kind: str,
               stop_reason: str, new_tokens: int, train_start: int = 0) -> Sample:
        text = self.decode(response_ids)
        answer = extract_boxed(text)
        return Sample(
            problem_id=problem.id, kind=kind, prompt_ids=prompt_ids, response_ids=response_ids,
            train_start=train_start, spans=thought_spans(response_ids, self.decode),
            thoughts=split_thoughts(text), answer=answer, reward=self.reward(answer, problem, text),
            stop_reason=stop_reason, new_tokens=new_tokens,
        )
