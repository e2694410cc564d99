"""The scoring stage: a generated chain becomes a scored `Sample` (thoughts, spans, answer, reward).

The reward is the task's own score of the chain's `\\boxed{}` answer, unless the run names others
(`task.reward`): each a registered name (`@register_reward("name")`) or `package.module:function`,
imported, in one of three signatures, recognised from the function's parameters:

- resetrl's: `f(problem, completion) -> float`;
- TRL's: `f(prompts, completions, **columns) -> list[float | None]` (called with one sample; the
  row's other columns arrive as keyword lists; None means "not scored" and is counted);
- verl's: `f(data_source, solution_str, ground_truth, extra_info) -> float | {"score": float, ...}`.

Several rewards add up with `task.reward_weights` (TRL's weighted sum). Each runs under the same
time limit; one that raises, runs past it or returns no number scores 0 and is counted.
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from numbers import Real
from typing import Any, Callable

from resetrl.errors import ResetRLError
from resetrl.registry import Registry
from resetrl.tasks.base import Problem, Task
from resetrl.thoughts import extract_boxed, split_thoughts, thought_spans

Reward = Callable[[Problem, str], float]
"""A reward: (the problem, the completion's decoded text) -> reward, 1.0 counting as solved."""

REWARDS: Registry[Reward] = Registry("reward")

SIGNATURES = ("resetrl: f(problem, completion) -> float; "
              "TRL: f(prompts, completions, **columns) -> list[float | None]; "
              "verl: f(data_source, solution_str, ground_truth, extra_info=None) -> float or dict with 'score'")


def register_reward(name: str) -> Callable[[Reward], Reward]:
    """Decorator: `@register_reward("digits") def digits(problem, completion): ...`, then `task.reward=digits`."""
    return REWARDS.register(name)


class NotANumber(Exception):
    """A reward returned something that is not a number (counted as a scorer error)."""


def reward_form(function: Callable, name: str) -> str:
    """Which of the three signatures `function` has: "resetrl", "trl" or "verl"; any other, or one
    that fits two, is an error naming the three."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        raise ResetRLError(f"reward {name!r}: its signature cannot be read; write it as one of: {SIGNATURES}") from None
    by_keyword = {n for n, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    positional = [p for p in parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in parameters.values() if p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    forms = []
    if "completions" in by_keyword:
        forms.append("trl")
    if {"solution_str", "ground_truth"} <= by_keyword:
        forms.append("verl")
    if not forms and len(positional) >= 2 and len(required) <= 2 and all(p in positional[:2] for p in required):
        forms.append("resetrl")
    if len(forms) != 1:
        why = f"it fits both {' and '.join(forms)}" if forms else "its parameters fit none of them"
        raise ResetRLError(f"reward {name!r}{inspect.signature(function)}: {why}; write it as one of: {SIGNATURES}")
    return forms[0]


def import_reward(spec: str) -> Callable:
    """`package.module:function` imported (the current folder is on the path, as for `python -m`)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ResetRLError(f"reward {spec!r}: write package.module:function, or a registered name")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ModuleNotFoundError, or the module itself failing to import
        raise ResetRLError(f"reward {spec!r}: cannot import {module_name} ({type(error).__name__}: {error})") from None
    function = module
    for part in attribute.split("."):
        function = getattr(function, part, None)
    if not callable(function):
        raise ResetRLError(f"reward {spec!r}: {module_name} has no function {attribute}")
    return function


@dataclass
class RewardFunction:
    """One reward of the run, called as resetrl calls rewards: (problem, completion) -> float, or
    None when the function did not score the sample (TRL's None)."""

    name: str
    function: Callable
    form: str  # resetrl | trl | verl
    weight: float = 1.0

    def __call__(self, problem: Problem, completion: str, completion_ids: list[int] | None = None) -> float | None:
        meta = problem.meta
        if self.form == "resetrl":
            return _number(self.function(problem, completion), self.name)
        if self.form == "verl":
            ground_truth = meta.get("ground_truth", problem.answer)
            value = self.function(data_source=meta.get("data_source"), solution_str=completion,
                                  ground_truth=ground_truth, extra_info=meta.get("extra_info"))
            if isinstance(value, dict):
                if "score" not in value:
                    raise NotANumber(f"returned a dict without 'score' (keys: {', '.join(map(str, value))})")
                value = value["score"]
            return _number(value, self.name)
        # TRL: a batch of one; a chat prompt gets its completion as a message list, as TRL gives it.
        prompt = meta.get("prompt", problem.question)
        chat = isinstance(prompt, list)
        columns = {key: [value] for key, value in
                   meta.get("columns", {"question": problem.question, "answer": problem.answer}).items()}
        if completion_ids is not None:
            columns["completion_ids"] = [completion_ids]
        values = self.function(prompts=[prompt], completions=[[{"role": "assistant", "content": completion}]
                                                              if chat else completion],
                               **_accepted(self.function, columns))
        if not isinstance(values, (list, tuple)) or len(values) != 1:
            raise NotANumber(f"returned {_shown(values)}, not a list with one reward per completion")
        return None if values[0] is None else _number(values[0], self.name)


def _accepted(function: Callable, columns: dict[str, Any]) -> dict[str, Any]:
    """The columns `function` takes: all of them with **kwargs, else only those it names."""
    parameters = inspect.signature(function).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return columns
    return {key: value for key, value in columns.items() if key in parameters}


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _number(value: Any, name: str) -> float:
    if isinstance(value, Real) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    try:  # a 0-d tensor or numpy scalar
        if hasattr(value, "item") and isinstance(value.item(), Real) and not math.isnan(value.item()):
            return float(value.item())
    except (TypeError, ValueError):
        pass
    raise NotANumber(f"returned {_shown(value)}, not a number")


def load_reward(spec: str) -> RewardFunction:
    """A registered name, or `package.module:function` imported; its signature recognised."""
    if ":" in spec:
        function = import_reward(spec)
    elif spec in REWARDS:
        function = REWARDS.get(spec)
    else:
        known = ", ".join(REWARDS.names()) or "none registered"
        raise ResetRLError(f"unknown reward {spec!r}; known: {known}; or give package.module:function")
    return RewardFunction(spec, function, reward_form(function, spec))


def training_reward(spec: str | list[str] | None, weights: list[float] | None = None) -> "Rewards | None":
    """The rewards `task.reward` names, weighted by `task.reward_weights` (default 1 each); None (the
    default) is the task's own score."""
    if spec is None:
        if weights is not None:
            raise ResetRLError("task.reward_weights needs task.reward (the rewards it weighs)")
        return None
    specs = [spec] if isinstance(spec, str) else list(spec)
    if not specs:
        raise ResetRLError("task.reward is an empty list; give at least one reward, or null for the task's score")
    if weights is not None and len(weights) != len(specs):
        raise ResetRLError(f"task.reward_weights has {len(weights)} weight(s) for {len(specs)} reward(s)")
    parts = [load_reward(name) for name in specs]
    for part, weight in zip(parts, weights or [1.0] * len(parts)):
        part.weight = float(weight)
    return Rewards(parts)


@dataclass
class Rewards:
    """The run's rewards, summed with their weights. Calling it gives that sum (a function of
    (problem, completion), like any reward); the Scorer calls the parts one by one instead, so a
    failing one is counted and the others still score."""

    parts: list[RewardFunction]

    @property
    def __name__(self) -> str:
        return " + ".join(part.name for part in self.parts)

    def __call__(self, problem: Problem, completion: str) -> float:
        values = [part(problem, completion) for part in self.parts]
        return sum(part.weight * value for part, value in zip(self.parts, values) if value is not None)


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


@dataclass
class Sample:
    """A generated chain, scored (`Scorer.sample`): its tokens, thoughts, answer and reward, and
    from which response token it is trained; rollouts and groups fill in the rest."""

    problem_id: str
    kind: str  # fresh | reset | parent | unused | attempt | correction | refinement | segment | leaf (TOKEN_BUCKETS)
    prompt_ids: list[int]
    response_ids: list[int]  # all tokens after the prompt, a reset prefix included
    train_start: int  # first trained response token: 0 for fresh chains, the suffix start for resets
    spans: list[tuple[int, int]]  # thought spans in response_ids
    thoughts: list[str]
    answer: str | None
    reward: float
    stop_reason: str
    new_tokens: int  # tokens this sample cost to generate (a reset's prefix is free)
    group_id: int | None = None
    reset_step: int | None = None  # 1-indexed thought of the parent that was resampled
    reset_source: str | None = None  # how reset_step was chosen, e.g. "self:boxed", "random"
    first_error: int | None = None  # the task's true first erroneous thought (0: none), where the task knows it
    localization: str | None = None  # a parent's self-localization answer (SRPO), as the policy wrote it
    advantage: float = 0.0
    logprobs: list[float] | None = None  # engine log pi of each response token when sampled (the loss's old_logprobs)
    # Second attempts and trees (SCoRe, Critique-GRPO, SPO-Tree); their defaults leave a sample as above.
    shaped_reward: float | None = None  # what the advantage reads instead of `reward` (SCoRe's shaping)
    reward_kl_coef: float = 0.0  # beta of a KL-to-reference penalty inside the reward (SCoRe), per token / length
    off_policy: bool = False  # sampled under another context than the one it is trained under (a refinement)
    follows: int | None = None  # the group position of the attempt this sample corrects or refines
    tree_path: list[int] | None = None  # the node index at each depth of a tree, root's child first
    segment_starts: list[int] | None = None  # response token where each node of tree_path begins
    segment_advantages: list[float] | None = None  # one advantage per node of tree_path (advantages.py)

    @property
    def trained_tokens(self) -> int:
        return len(self.response_ids) - self.train_start

    @property
    def carries_signal(self) -> bool:
        """Whether the loss on this sample can have a gradient without a KL term in the loss."""
        return self.advantage != 0 or self.reward_kl_coef > 0 or any(self.segment_advantages or ())

    def record(self, step: int) -> dict:
        """One line of rollouts.jsonl (token ids left out; thoughts are the readable form)."""
        row = asdict(self)
        for key in ("prompt_ids", "response_ids", "spans", "logprobs"):
            row.pop(key)
        row["step"] = step
        row["suffix_start"] = self.train_start
        row["response_tokens"] = len(self.response_ids)
        return row


class Scorer:
    """Turns generated ids into a scored Sample: thoughts, spans, answer, reward. The reward is the
    run's rewards (`training_reward`) of (problem, completion) when given, else the task's score of
    the boxed answer. A reward that raises, runs past `score_timeout` seconds or returns no number
    gives 0, counted (`take_stats`), and the run goes on; a TRL reward's None adds nothing, counted
    in reward/score_unscored."""

    def __init__(self, tokenizer, task: Task, score_timeout: float = 10.0, reward: Rewards | Reward | None = None):
        self.tokenizer, self.task, self.score_timeout = tokenizer, task, score_timeout
        self.custom_reward = reward
        self.decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)
        self.failures = {"errors": 0, "timeouts": 0}
        if isinstance(reward, Rewards) and any(part.form == "trl" for part in reward.parts):
            self.failures["unscored"] = 0

    def reward(self, answer: str | None, problem: Problem, completion: str = "",
               completion_ids: list[int] | None = None) -> float:
        if isinstance(self.custom_reward, Rewards):
            total = 0.0
            for part in self.custom_reward.parts:
                value = self._guarded(lambda: part(problem, completion, completion_ids), f"reward {part.name!r}",
                                      answer, problem)
                if value is None:
                    self.failures["unscored"] += 1
                else:
                    total += part.weight * value
            return total
        if self.custom_reward is not None:
            name = f"reward {getattr(self.custom_reward, '__name__', self.custom_reward)!r}"
            return self._guarded(lambda: float(self.custom_reward(problem, completion)), name, answer, problem)
        return self._guarded(lambda: float(self.task.score(answer, problem)), f"task {self.task.name!r} scorer",
                             answer, problem)

    def _guarded(self, call: Callable[[], float | None], who: str, answer: str | None, problem: Problem
                 ) -> float | None:
        """`call()` under the time limit; 0.0 (counted, warned once per step) when it fails."""
        try:
            with time_limit(self.score_timeout):
                return call()
        except ScoreTimeout:
            kind, reason = "timeouts", f"ran past task.score_timeout={self.score_timeout:g} s"
        except NotANumber as error:
            kind, reason = "errors", str(error)
        except Exception as error:
            kind, reason = "errors", f"raised {type(error).__name__}: {error}"
        if not (self.failures["errors"] or self.failures["timeouts"]):  # once per step: the count is in the metrics
            print(f"resetrl: warning: {who} {reason} on answer {answer!r} of problem "
                  f"{problem.id}; scored 0 (reward/score_{kind})")
        self.failures[kind] += 1
        return 0.0

    def take_stats(self) -> dict[str, float]:
        """Scorer failures since the last call: reward/score_errors, reward/score_timeouts (and
        reward/score_unscored with a TRL reward)."""
        stats = {f"reward/score_{kind}": float(count) for kind, count in self.failures.items()}
        self.failures = {kind: 0 for kind in self.failures}
        return stats

    def sample(self, problem: Problem, prompt_ids: list[int], response_ids: list[int], kind: str,
               stop_reason: str, new_tokens: int, train_start: int = 0) -> Sample:
        """The scored sample of a chain: its thoughts, spans, answer, reward and, where the task's step
        checker knows it, its first erroneous thought (the oracle's reset point, the localization metrics)."""
        text = self.decode(response_ids)
        answer = extract_boxed(text)
        thoughts = split_thoughts(text)
        return Sample(
            problem_id=problem.id, kind=kind, prompt_ids=prompt_ids, response_ids=response_ids,
            train_start=train_start, spans=thought_spans(response_ids, self.decode),
            thoughts=thoughts, answer=answer, reward=self.reward(answer, problem, text, response_ids),
            stop_reason=stop_reason, new_tokens=new_tokens, first_error=self.task.first_error(problem, thoughts),
        )
