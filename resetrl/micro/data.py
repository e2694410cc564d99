"""Training data of the micro model's two skills, all from the project's own generator and checker.

1. Solving: arith_chain problems of the train split, prompted exactly as the trainer prompts them
   (`Runtime.prompt_ids`: the `micro` preset's raw prompt without worked examples), the task's
   reference chain as the target (`Task.training_chain`; `trap_chain` corrupts it on purpose).
2. Localizing: the model's *own* failed chains (sampled from the solver at rollout temperature),
   shown through the chat template with the project's localization prompt, exactly as SRPO asks;
   the target is `\\boxed{k}` with k the step checker's first erroneous thought (`Task.first_error`).
   With probability `noise` the label is replaced by a step drawn uniformly from 1..N: the knob that
   lowers localization accuracy (noise 1 teaches no localization at all).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from tqdm import tqdm

from resetrl.chains import ChainJob, sample_chains
from resetrl.scoring import Scorer
from resetrl.generation.base import GenerationBackend, SamplingParams
from resetrl.prompts import chat_prompt_ids, localization_prompt
from resetrl.sft import Example
from resetrl.tasks.base import Problem, Task
from resetrl.thoughts import BOXED, ChainLimits, format_chain

PromptIds = Callable[[Problem], list[int]]  # Runtime.prompt_ids of the config the model is built for


def solver_examples(task: Task, tokenizer, prompt_ids: PromptIds, problems: list[Problem], seed: int = 0
                    ) -> list[Example]:
    """The task's training chain as the target: its reference chain, or for `trap_chain` a chain
    corrupted at the trap (and slips), drawn from a stream per (build seed, problem), so a problem
    replayed in phase 2 gets the same chain."""
    return [
        (prompt_ids(p), tokenizer(format_chain(task.training_chain(p, random.Random(f"training-chain/{seed}/{p.id}"))),
                                  add_special_tokens=False).input_ids)
        for p in problems
    ]


def localization_answer_ids(tokenizer, step: int) -> list[int]:
    """`\\boxed{k}` then end of turn, so free-text generation stops right after the answer."""
    return tokenizer(f"{BOXED}{step}}}", add_special_tokens=False).input_ids + [tokenizer.eos_token_id]


@dataclass
class FailedChain:
    """A chain the model wrote that the task scores wrong, with the checker's first error (1..N)."""

    problem: Problem
    thoughts: list[str]
    first_error: int


def noisy_label(first_error: int, n_thoughts: int, noise: float, rng: random.Random) -> int:
    """The true first error, or with probability `noise` a step uniform over 1..N."""
    if rng.random() < noise:
        return rng.randint(1, max(1, n_thoughts))
    return first_error


def localization_examples(tokenizer, failures: list[FailedChain], noise: float, seed: int) -> list[Example]:
    rng = random.Random(f"micro/localization-noise/{seed}")
    examples = []
    for failure in failures:
        label = noisy_label(failure.first_error, len(failure.thoughts), noise, rng)
        prompt = chat_prompt_ids(tokenizer, localization_prompt(failure.problem.question, failure.thoughts, "short"))
        examples.append((prompt, localization_answer_ids(tokenizer, label)))
    return examples


def sample_own_failures(backend: GenerationBackend, tokenizer, task: Task, prompt_ids: PromptIds,
                        problems: list[Problem], samples_per_problem: int, sampling: SamplingParams,
                        limits: ChainLimits, chunk: int = 256) -> tuple[list[FailedChain], int]:
    """Sample chains from the model and keep the failed ones whose first error the checker knows.
    Returns (failures, chains sampled)."""
    scorer = Scorer(tokenizer, task)
    failures, total = [], 0
    for start in tqdm(range(0, len(problems), chunk), desc="own chains", unit="chunk"):
        batch = problems[start:start + chunk]
        jobs = [ChainJob(p, prompt_ids(p), samples_per_problem) for p in batch]
        for problem, samples in zip(batch, sample_chains(backend, scorer, jobs, sampling, limits)):
            for sample in samples:
                total += 1
                if sample.reward >= 1.0 or not sample.thoughts:
                    continue
                if sample.first_error:  # the scorer's; 0 / None: the checker cannot place the error, no row
                    failures.append(FailedChain(problem, sample.thoughts, min(sample.first_error, len(sample.thoughts))))
    return failures, total
