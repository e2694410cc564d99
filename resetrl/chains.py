"""Sampling and scoring chains: the one entry point every sampler of the project goes through.

Training rollouts (fresh chains and reset continuations), evaluation, Thought-ICS, the micro
testbed's data and its measurements all ask `sample_chains` for scored `Sample`s, so a generation
backend added once (HF, vLLM) serves all of them, and a chain is read (thoughts, spans, answer,
reward, engine log-probabilities) the same way everywhere.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from resetrl.generation.base import ChainRequest, GenerationBackend, SamplingParams
from resetrl.groups import Sample
from resetrl.tasks.base import Problem, Task
from resetrl.thoughts import ChainLimits, extract_boxed, split_thoughts, thought_spans


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
    """Turns generated ids into a scored Sample: thoughts, spans, answer, reward. A task scorer that
    raises or runs past `score_timeout` seconds gives reward 0, counted (`take_stats`), and the run
    goes on."""

    def __init__(self, tokenizer, task: Task, score_timeout: float = 10.0):
        self.tokenizer, self.task, self.score_timeout = tokenizer, task, score_timeout
        self.decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)
        self.failures = {"errors": 0, "timeouts": 0}

    def reward(self, answer: str | None, problem: Problem) -> float:
        try:
            with time_limit(self.score_timeout):
                return float(self.task.score(answer, problem))
        except ScoreTimeout:
            kind, reason = "timeouts", f"ran past task.score_timeout={self.score_timeout:g} s"
        except Exception as error:
            kind, reason = "errors", f"raised {type(error).__name__}: {error}"
        if not any(self.failures.values()):  # once per step: the count is in the metrics
            print(f"resetrl: warning: task {self.task.name!r} scorer {reason} on answer {answer!r} of problem "
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
            thoughts=split_thoughts(text), answer=answer, reward=self.reward(answer, problem),
            stop_reason=stop_reason, new_tokens=new_tokens,
        )


@dataclass
class ChainJob:
    """`n` chains for `problem` after its prompt, continuing `prefix_ids` (the first `prefix_thoughts`
    thoughts of a parent, its exact tokens) when resuming from a reset point."""

    problem: Problem
    prompt_ids: list[int]
    n: int
    prefix_ids: list[int] = field(default_factory=list)
    prefix_thoughts: int = 0
    prefix_logprobs: list[float] | None = None  # the parent's, for a prefix that is trained on

    def request(self) -> ChainRequest:
        return ChainRequest(self.prompt_ids + self.prefix_ids, self.n, prefix_thoughts=self.prefix_thoughts,
                            prefix_tokens=len(self.prefix_ids))


def sample_chains(backend: GenerationBackend, scorer: Scorer, jobs: list[ChainJob], sampling: SamplingParams,
                  limits: ChainLimits, kind: str = "fresh", train_prefix: bool = False) -> list[list[Sample]]:
    """Each job's n scored samples, from one batched backend call. A resumed sample's response is
    prefix + new tokens; it is trained from the suffix start unless `train_prefix`."""
    outputs = backend.generate_chains([job.request() for job in jobs], sampling, limits) if jobs else []
    samples = []
    for job, chains in zip(jobs, outputs):
        row = []
        for chain in chains:
            sample = scorer.sample(job.problem, job.prompt_ids, job.prefix_ids + chain.ids, kind, chain.stop_reason,
                                   len(chain.ids), train_start=0 if train_prefix else len(job.prefix_ids))
            sample.logprobs = _joined_logprobs(job, chain.logprobs)
            row.append(sample)
        samples.append(row)
    return samples


def _joined_logprobs(job: ChainJob, new: list[float] | None) -> list[float] | None:
    """Log-probabilities of the whole response (prefix + new tokens); the prefix's are only known when
    the parent's were passed (a prefix that is not trained on needs none: NaN placeholders)."""
    if new is None:
        return None
    if not job.prefix_ids:
        return list(new)
    prefix = job.prefix_logprobs if job.prefix_logprobs is not None else [float("nan")] * len(job.prefix_ids)
    return list(prefix) + list(new)
