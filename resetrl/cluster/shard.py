"""One prompt's rollout, the same on whichever worker runs it, and the merge of a step's prompts.

A prompt's fresh chains, parent choice, localization call and reset continuations run together
(`RolloutCollector` on one problem), seeded from (train.seed, step, prompt index) and started from an
empty prefix cache: its samples depend on nothing else the worker did, so a step gives the same
samples with 1 worker or N, whichever worker drew which prompt, and a prompt retried on another
worker after one died gives the samples it would have given. In the trainer's own process, without
workers, `generation.per_prompt` rolls the prompts out the same way (`roll_each_prompt`); by default
they are batched together and seeded once per step: other draws, faster on a CPU."""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field

import torch

from resetrl.metrics import add_counts
from resetrl.rollout import RolloutResult, build_collector, rollout_parts, rollout_stats
from resetrl.tasks.base import Problem

PHASES = ("fresh", "localize", "reset")


def prompt_seed(seed: int, step: int, index: int) -> int:
    """The seed of prompt `index` (its position in the step's batch) of step `step`."""
    digest = hashlib.sha256(f"{seed}/{step}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch.manual_seed takes up to 2**63 - 1


@dataclass
class PromptRollout:
    index: int  # position in the step's batch
    result: RolloutResult
    counts: dict[str, float] = field(default_factory=dict)  # scorer and backend counters of its calls
    seconds: float = 0.0


class PromptRoller:
    """Rolls out one prompt at a time with the run's backend: the body of a rollout worker."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.layout, self.localizer, self.scorer = rollout_parts(runtime)
        self.collector = build_collector(runtime, self.layout, self.localizer, self.scorer)

    def roll(self, step: int, index: int, problem: Problem) -> PromptRollout:
        started = time.perf_counter()
        rt = self.runtime
        seed = prompt_seed(rt.config.train.seed, step, index)
        torch.manual_seed(seed)
        rt.backend.release_memory()  # another prompt's cached contexts would change this one's arithmetic
        result = self.collector.collect([problem], {problem.id: rt.prompt_ids(problem)}, random.Random(seed), step)
        counts = {**self.scorer.take_stats(), **rt.backend.take_stats()}
        return PromptRollout(index, result, counts, time.perf_counter() - started)


def roll_each_prompt(roller: PromptRoller, step: int, problems: list[Problem]) -> RolloutResult:
    """The step's rollouts in this process, one prompt at a time as a rollout worker rolls them
    (`generation.per_prompt`): the samples any number of Ray workers give for the step."""
    started = time.perf_counter()
    parts = [roller.roll(step, index, problem) for index, problem in enumerate(problems)]
    return merge_rollouts(parts, problems, time.perf_counter() - started)


def merge_rollouts(parts: list[PromptRollout], problems: list[Problem], wall_seconds: float) -> RolloutResult:
    """The step's RolloutResult from its prompts' (any order): groups numbered in prompt order, the
    statistics of the whole step, counters summed. The phase times (time/fresh, time/localize,
    time/reset) are the workers' busy time per phase scaled to the step's wall-clock rollout time,
    so throughput is tokens over wall-clock seconds; time/rollout_busy is the busy time itself."""
    parts = sorted(parts, key=lambda part: part.index)
    merged = RolloutResult([], [], [])
    for part in parts:
        for group in part.result.groups:
            group.id = len(merged.groups)
            for sample in group.samples:
                sample.group_id = group.id
            merged.groups.append(group)
        merged.parents += part.result.parents
        merged.unused += part.result.unused
        merged.choices += part.result.choices
    busy = {phase: sum(part.result.stats.get(f"time/{phase}", 0.0) for part in parts) for phase in PHASES}
    scale = wall_seconds / max(sum(busy.values()), 1e-9)
    merged.stats = rollout_stats(merged, problems, merged.choices,
                                 {phase: seconds * scale for phase, seconds in busy.items()})
    merged.stats["time/rollout_busy"] = sum(part.seconds for part in parts)
    for part in parts:
        add_counts(merged.stats, part.counts)
    return merged
