"""The generation engine of Thought-ICS: the trainer's backend, prompts, stop rules and scorer, wrapped
so that every ICS method asks for chains and free-text answers in one batched call per round.

An `Attempt` is one chain for one problem: its token ids, its steps (thoughts, or text segments for
unstructured chains), its answer, reward and the task's true first error. Structured chains are
scored by the trainer's `Scorer`, so thoughts, spans and answers are read exactly as in training.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Literal

from resetrl.chains import ChainJob, sample_chains
from resetrl.generation.base import GenerationBackend, SamplingParams
from resetrl.resets import chat_asker, clamp_step
from resetrl.scoring import Sample, Scorer
from resetrl.tasks.base import Problem, Task
from resetrl.thoughts import ChainLimits

Level = Literal["L1", "L2", "L3"]
LEVELS: tuple[str, ...] = ("L1", "L2", "L3")


@dataclass
class ICSSettings:
    """Knobs of a Thought-ICS run (Paper B, section "Thought-ICS"; docs/method.md section 7).

    The defaults are Paper B's reference code: the first chain at temperature 1.0, resamples at 0.7,
    verifier and localizer at 0.3, top-p 0.9 and top-k 50 on every call, 1024 verification tokens,
    its L3 prompts and verdict parser (docs/ics.md, "Reference settings")."""

    level: Level = "L2"  # L1 oracle verify + localizer sees the answer; L2 oracle verify; L3 autonomous
    max_iters: int = 10  # L: verify/localize/resample rounds (Paper B: 10)
    temperature: float = 1.0  # first chain (and every majority-vote sample)
    resample_temperature: float = 0.7  # chains resampled after a localization
    localize_temperature: float = 0.3  # localizer
    localize_max_tokens: int = 256  # token cap of a localization or quote answer
    localize_prompt: str = "reference"  # the localization prompt (below L3): reference | short
    localize_out_of_range: str = "prose"  # a boxed step outside 1..N: prose (reference) | clamp
    verify_temperature: float = 0.3  # self-verification (L3)
    verify_max_tokens: int = 1024  # token cap of a verification answer
    verify_samples: int = 1  # k verification samples per check (L3)
    verify_gate: str = "majority"  # any | majority | unanimous: how k YES/NO votes become a verdict
    votes: int | None = None  # samples of the majority-vote baseline; None = max_iters + 1 (same budget)
    top_p: float = 0.9  # chains
    top_k: int = 50
    ask_top_p: float = 0.9  # verifier and localizer
    ask_top_k: int = 50
    verify_prompt: str = "reference"  # L3: reference (a reviewer, shown the final answer) | first-person
    verdict_parser: str = "reference"  # reference | exact (verification.VERDICT_PARSERS)
    localize_prompt_l3: str = "reference"  # L3 localizer: reference (neutral) | note (says wrong, then hedges)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        from resetrl.ics.verification import VERDICT_PARSERS, VERIFY_GATES, VERIFY_PROMPTS  # they build on this module

        VERIFY_GATES.get(self.verify_gate)
        VERDICT_PARSERS.get(self.verdict_parser)
        for name, value, known in (("verify_prompt", self.verify_prompt, VERIFY_PROMPTS),
                                   ("localize_prompt_l3", self.localize_prompt_l3, ("reference", "note"))):
            if value not in known:
                raise ValueError(f"{name} must be one of {', '.join(known)}, got {value!r}")
        if self.max_iters < 0 or self.verify_samples < 1:
            raise ValueError("max_iters must be >= 0 and verify_samples >= 1")

    def sampling(self, temperature: float) -> SamplingParams:
        """Sampling of a chain (first or resampled) at `temperature`."""
        return SamplingParams(temperature, self.top_p, self.top_k)

    def ask_sampling(self, temperature: float) -> SamplingParams:
        """Sampling of a verifier or localizer answer at `temperature`."""
        return SamplingParams(temperature, self.ask_top_p, self.ask_top_k)

    @property
    def majority_votes(self) -> int:
        return self.votes or self.max_iters + 1


@dataclass
class Attempt(Sample):
    """One chain for one problem: a scored `Sample` with its decoded text. Structured chains are
    scored by the trainer's `Scorer` (thoughts, spans, answer and reward as in training); an
    unstructured chain's `thoughts` are its text segments and it has no spans. `first_error` is the
    task's true first erroneous step (1-indexed; 0 none, None unknown); `train_start` is the length
    of the prefix a resumed chain kept."""

    text: str = ""
    structured: bool = True
    resumed_from: int | None = None  # step it was resampled from (1 = from scratch); None = first chain

    @classmethod
    def of(cls, sample: Sample, text: str, resumed_from: int | None = None) -> "Attempt":
        """The attempt of a sampled chain (its fields, the scorer's first_error too, taken over as they are)."""
        values = {f.name: getattr(sample, f.name) for f in fields(Sample)}
        return cls(**values, text=text, resumed_from=resumed_from)

    @property
    def steps(self) -> list[str]:
        """Thoughts (structured) or text segments (unstructured): what a localizer numbers."""
        return self.thoughts

    @property
    def prefix_tokens(self) -> int:
        return self.train_start

    @property
    def correct(self) -> bool:
        return self.reward >= 1.0

    def record(self) -> dict:
        return {"steps": self.steps, "answer": self.answer, "reward": self.reward,
                "first_error": self.first_error, "stop_reason": self.stop_reason,
                "new_tokens": self.new_tokens, "resumed_from": self.resumed_from,
                "prefix_tokens": self.prefix_tokens, **({} if self.structured else {"text": self.text})}


@dataclass
class ChainEngine:
    """Backend + tokenizer + task + the trainer's prompt, bundled for ICS.

    `prompt_ids(problem)` is the run's chain prompt (`Runtime.prompt_ids`): the same thought format,
    prompt style and worked examples the model was trained and evaluated with."""

    backend: GenerationBackend
    tokenizer: object
    task: Task
    limits: ChainLimits
    prompt_ids: Callable[[Problem], list[int]]
    prompt_style: str = "raw"
    examples: list[tuple[str, list[str]]] | None = None

    def __post_init__(self) -> None:
        self.scorer = Scorer(self.tokenizer, self.task)
        self.tokens = {"chains": 0, "localize": 0, "verify": 0}

    @classmethod
    def from_runtime(cls, runtime) -> "ChainEngine":
        return cls(runtime.backend, runtime.tokenizer, runtime.task, runtime.limits, runtime.prompt_ids,
                   runtime.config.format.prompt_style, runtime.examples)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # -- structured (thought) chains ------------------------------------------------------------

    def structured_attempt(self, sample: Sample, resumed_from: int | None = None) -> Attempt:
        """An Attempt from a sample scored by the trainer's `Scorer` (thoughts, spans and answer as in training)."""
        return Attempt.of(sample, self.decode(sample.response_ids), resumed_from)

    def sample_chains(self, problems: list[Problem], prompts: list[list[int]], n: int,
                      sampling: SamplingParams) -> list[list[Attempt]]:
        """n fresh thought chains per problem after its prompt, in one batched call."""
        jobs = [ChainJob(problem, prompt, n) for problem, prompt in zip(problems, prompts)]
        attempts = []
        for samples in sample_chains(self.backend, self.scorer, jobs, sampling, self.limits, "ics"):
            self.tokens["chains"] += sum(s.new_tokens for s in samples)
            attempts.append([self.structured_attempt(s) for s in samples])
        return attempts

    def resume_chains(self, problems: list[Problem], parents: list[Attempt], reset_steps: list[int],
                      sampling: SamplingParams) -> list[Attempt]:
        """Keep thoughts 1..e-1 of each parent and resample the rest (docs/method.md section 7: `prefix(chain,
        e-1) + generate(q, prefix)`); the prefix is re-entered as the parent's own tokens."""
        reset_steps = [clamp_step(step, len(parent.spans)) for parent, step in zip(parents, reset_steps)]
        jobs = [ChainJob.resuming(problem, parent, step, 1) for problem, parent, step in zip(problems, parents, reset_steps)]
        attempts = []
        for step, (sample,) in zip(reset_steps, sample_chains(self.backend, self.scorer, jobs, sampling, self.limits, "ics")):
            self.tokens["chains"] += sample.new_tokens
            attempts.append(self.structured_attempt(sample, resumed_from=step))
        return attempts

    # -- free text (localization, verification, quotes) -----------------------------------------

    def ask(self, user_texts: list[str], sampling: SamplingParams, max_new_tokens: int,
            purpose: str) -> list[tuple[str, int]]:
        """One chat turn per text (the SRPO localizer's channel); each answer decoded, with its length."""
        answers = chat_asker(self.backend, self.tokenizer, sampling.temperature, max_new_tokens,
                             sampling.top_p, sampling.top_k)(user_texts)
        self.tokens[purpose] = self.tokens.get(purpose, 0) + sum(tokens for _, tokens in answers)
        return answers
