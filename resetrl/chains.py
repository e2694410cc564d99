"""Sampling scored chains: the one entry point every sampler of the project goes through.

Training rollouts (fresh chains and reset continuations), evaluation, Thought-ICS, the micro
testbed's data and its measurements all ask `sample_chains` for scored `Sample`s, so a generation
backend added once (HF, vLLM) serves all of them, and a chain is read (thoughts, spans, answer,
reward, engine log-probabilities) the same way everywhere; the reading and the reward are the
scoring stage, `resetrl.scoring`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from resetrl.generation.base import ChainRequest, GenerationBackend, SamplingParams
from resetrl.resets import reset_prefix_end
from resetrl.scoring import Sample, Scorer
from resetrl.tasks.base import Problem
from resetrl.thoughts import ChainLimits


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

    @classmethod
    def resuming(cls, problem: Problem, parent: Sample, reset_step: int, n: int) -> "ChainJob":
        """`n` chains resuming `parent` at thought `reset_step` (1-indexed, within the chain:
        resets.clamp_step): its thoughts 1..e-1 kept as its exact tokens, with their
        log-probabilities where it has them, the rest resampled. Training's reset continuations and
        Thought-ICS's corrections are both built here."""
        prefix_end = reset_prefix_end(parent.spans, reset_step)
        return cls(problem, parent.prompt_ids, n, prefix_ids=parent.response_ids[:prefix_end],
                   prefix_thoughts=reset_step - 1,
                   prefix_logprobs=parent.logprobs[:prefix_end] if parent.logprobs else None)

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
