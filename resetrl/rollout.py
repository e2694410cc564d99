"""The rollout phase of a step (docs/method.md section 4, items 1-5): fresh chains, parents, resets, groups.

1. Fresh phase: sample chains per prompt, in batches across prompts, topping up only prompts that
   still lack a failure, up to `max_fresh_attempts`. The first failed chain(s) become parents: used
   only to choose the reset point, never trained on.
2. Fallback: a prompt with no failure is trained as one plain GRPO group of the layout's budget.
3. Reset point per parent from the method's localizer; the prefix is thoughts 1..e-1.
4. Reset phase: K continuations per parent from prompt + prefix, all parents batched in one call.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace

from resetrl.chains import ChainJob, sample_chains
from resetrl.errors import ResetRLError
from resetrl.generation.base import GenerationBackend, SamplingParams
from resetrl.groups import TOKEN_BUCKETS, TOKEN_KINDS, Group, Layout
from resetrl.localization import localization_scores
from resetrl.methods import METHODS
from resetrl.registry import Registry
from resetrl.resets import LocateContext, Localizer, ResetPoint, chat_asker, clamp_step, reset_prefix_end
from resetrl.scoring import Sample, Scorer, training_reward
from resetrl.tasks.base import Problem
from resetrl.thoughts import ChainLimits

# A top-up draws at least this many chains for a prompt still short of failures: one chain at a
# time would cost a generation call per chain on prompts the policy nearly always solves.
MIN_TOP_UP = 4

__all__ = ["COLLECTORS", "RolloutCollector", "RolloutResult", "Scorer", "build_collector", "rollout_parts",
           "rollout_stats"]

# How a method builds a step's groups (Method.collector): each entry makes, once per run, from the
# run's runtime, layout, localizer and scorer, an object whose `collect(problems, prompts, rng, step)`
# returns the step's RolloutResult (its random choices drawn from `rng`).
COLLECTORS: Registry = Registry("rollout collector")
COLLECTORS.declare("score", "resetrl.attempts")
COLLECTORS.declare("critique_grpo", "resetrl.attempts")
COLLECTORS.declare("spo_tree", "resetrl.trees")


@dataclass
class RolloutResult:
    groups: list[Group]
    parents: list[Sample]
    unused: list[Sample]  # generated, not trained: spare fresh draws, refinements not kept, a tree's segments
    stats: dict[str, float] = field(default_factory=dict)
    choices: list[ResetPoint] = field(default_factory=list)  # one per parent, in order

    def all_samples(self) -> list[Sample]:
        return [s for g in self.groups for s in g.samples] + self.parents + self.unused


class RolloutCollector:
    def __init__(self, backend: GenerationBackend, scorer: Scorer, layout: Layout,
                 localizer: Localizer | None, locate_context: LocateContext | None,
                 sampling: SamplingParams, limits: ChainLimits, max_fresh_attempts: int = 12,
                 mask_prefix: bool = True, merge_empty_prefix: bool = False, fallback_group: str = "fresh",
                 partial_parents: str = "fallback", localize_offset: int = 0, train_from_thought: int | None = None):
        self.backend, self.scorer, self.layout = backend, scorer, layout
        self.localizer = localizer
        self.locate_context = locate_context  # its rng is the step's (collect)
        self.sampling, self.limits = sampling, limits
        self.max_fresh_attempts, self.mask_prefix = max_fresh_attempts, mask_prefix
        self.merge_empty_prefix = merge_empty_prefix
        self.fallback_group, self.partial_parents = fallback_group, partial_parents
        self.localize_offset = localize_offset
        self.train_from_thought = train_from_thought  # fresh chains trained from this thought on (GRPO-mask)
        self.counts: Counter = Counter()  # the step's fallbacks, by rule (rollout_stats)

    def _draw(self, problems: list[Problem], prompts: dict[str, list[int]], counts: dict[str, int]
              ) -> dict[str, list[Sample]]:
        wanted = [p for p in problems if counts.get(p.id, 0) > 0]
        jobs = [ChainJob(p, prompts[p.id], counts[p.id]) for p in wanted]
        outputs = sample_chains(self.backend, self.scorer, jobs, self.sampling, self.limits)
        return {problem.id: samples for problem, samples in zip(wanted, outputs)}

    def collect(self, problems: list[Problem], prompts: dict[str, list[int]], rng: random.Random | None = None,
                step: int = 0) -> RolloutResult:
        """One step's rollouts of `problems`, as groups of trainable samples, the localizer's random
        choices drawn from `rng` (None: the locate context's own).

        Worked example, one prompt, layout 1x4 (1 parent, 4 fresh, K = 4 continuations):
        - fresh phase: 5 chains drawn (fresh + parents); say c2 fails, with 3 thoughts;
        - c2 becomes the parent (kind "parent", no group: never trained); c1, c3, c4, c5 form group 0
          (kind "fresh", train_start = 0);
        - the localizer answers e = 3: prefix = c2's thoughts 1..2 as its exact tokens,
          c2.response_ids[:reset_prefix_end(c2.spans, 3)];
        - reset phase: 4 continuations of prompt + prefix form group 1 (kind "reset", reset_step 3),
          each with response_ids = prefix + its new tokens and train_start = len(prefix) (the prefix
          is context, not trained: rollout.mask_prefix).
        Advantages are then computed per group; the loss sees 8 samples, each trained from its
        train_start, and never needs to know that a reset happened."""
        timings = {}
        self.counts = Counter()
        context = self.locate_context
        if rng is not None and context is not None:
            context = replace(context, rng=rng)
        started = time.perf_counter()
        drawn = self._fresh_phase(problems, prompts)
        parents, fresh_of, unused = self._choose_parents(problems, prompts, drawn)
        timings["fresh"] = time.perf_counter() - started

        groups: list[Group] = []
        for problem in problems:
            samples = fresh_of[problem.id]
            if samples:
                has_parent = any(parent.problem_id == problem.id for parent in parents)
                kind = "fresh" if has_parent or not self.layout.parents else "fallback"
                groups.append(Group(len(groups), problem.id, kind, samples))
        if self.train_from_thought:  # (fresh groups only: reset groups are added below)
            for sample in (s for g in groups for s in g.samples):
                sample.train_start = reset_prefix_end(sample.spans, self.train_from_thought)

        by_id = {p.id: p for p in problems}
        started = time.perf_counter()
        choices = self._locate(parents, by_id, context)
        timings["localize"] = time.perf_counter() - started
        started = time.perf_counter()
        self._reset_phase(parents, choices, by_id, groups)
        timings["reset"] = time.perf_counter() - started

        for group in groups:
            for sample in group.samples:
                sample.group_id = group.id
        result = RolloutResult(groups, parents, unused, choices=choices)
        result.stats = rollout_stats(result, problems, choices, timings)
        for rule, count in self.counts.items():
            result.stats[f"rollout/{rule}"] = float(count)
        return result

    def _fresh_phase(self, problems: list[Problem], prompts: dict[str, list[int]]) -> dict[str, list[Sample]]:
        """Fresh chains per prompt: enough for parents + the fresh group at once, then top-ups for
        prompts still short of failures, up to max_fresh_attempts chains a prompt."""
        layout = self.layout
        drawn: dict[str, list[Sample]] = {p.id: [] for p in problems}
        first_round = layout.fresh + layout.parents if layout.parents else layout.budget
        counts = {p.id: min(first_round, max(self.max_fresh_attempts, layout.budget)) for p in problems}
        while counts:
            for problem_id, samples in self._draw(problems, prompts, counts).items():
                drawn[problem_id].extend(samples)
            counts = {}
            for problem in problems:
                attempts = len(drawn[problem.id])
                failures = sum(can_be_parent(sample) for sample in drawn[problem.id])
                if failures < layout.parents and attempts < self.max_fresh_attempts:
                    counts[problem.id] = min(self.max_fresh_attempts - attempts, max(first_round, MIN_TOP_UP))
        return drawn

    def _choose_parents(self, problems: list[Problem], prompts: dict[str, list[int]],
                        drawn: dict[str, list[Sample]]) -> tuple[list[Sample], dict[str, list[Sample]], list[Sample]]:
        """(parents, fresh group per prompt, unused draws). The first failed chain(s) with at least one
        thought are parents (an empty chain is never one: it stays a fresh chain with reward 0). A
        prompt with fewer failures than the layout's parents is one plain group of the budget
        (`partial_parents="fallback"`, the reference) or resets what it found ("reset"). A fallback
        group keeps the layout's first `fresh` chains and draws the rest anew (`fallback_group="fresh"`,
        the reference: the 1x4 layout's 4 kept chains + 4 new), or takes the budget from what was
        drawn ("drawn"); a layout without fresh chains (2x4, 1x8) takes what was drawn either way."""
        layout = self.layout
        parents: list[Sample] = []
        fresh_of: dict[str, list[Sample]] = {}
        unused: list[Sample] = []
        shortfall: dict[str, int] = {}
        for problem in problems:
            found = [s for s in drawn[problem.id] if can_be_parent(s)][: layout.parents]
            others = [s for s in drawn[problem.id] if all(s is not parent for parent in found)]
            if found and len(found) < layout.parents and self.partial_parents == "fallback":
                self.counts["partial_parents_fallback"] += 1
                others, found = others + found, []  # the failures join the plain group last, as in the reference
            for parent in found:
                parent.kind = "parent"
            fresh_needed = layout.budget - len(found) * layout.continuations
            kept = fresh_needed
            if layout.parents and not found:
                self.counts["fallback_groups"] += 1
                if self.fallback_group == "fresh" and layout.fresh:
                    kept = min(layout.fresh, fresh_needed)
            fresh_of[problem.id] = others[:kept]
            for sample in others[kept:]:
                sample.kind = "unused"
            unused += others[kept:]
            parents += found
            if len(fresh_of[problem.id]) < fresh_needed:
                shortfall[problem.id] = fresh_needed - len(fresh_of[problem.id])
        if shortfall:
            for problem_id, samples in self._draw(problems, prompts, shortfall).items():
                fresh_of[problem_id] += samples
        return parents, fresh_of, unused

    def _locate(self, parents: list[Sample], by_id: dict[str, Problem], context: LocateContext | None
                ) -> list[ResetPoint]:
        """The reset point of every parent, from the method's localizer (the scorer recorded the step
        checker's true first error beside it, for the oracle and the localization metrics)."""
        if not parents:
            return []
        return self.localizer.locate([by_id[p.problem_id] for p in parents], parents, context)

    def _reset_phase(self, parents: list[Sample], choices: list[ResetPoint], by_id: dict[str, Problem],
                     groups: list[Group]) -> None:
        """The continuations of every parent from its prefix, all in one batched call; one group per
        parent appended to `groups` (or, with merge_empty_prefix, an empty-prefix one joins the fresh group)."""
        jobs = []
        for parent, choice in zip(parents, choices):
            # The reference's SRPO_LOC_OFFSET: reset `localize_offset` thoughts earlier, at least at 1.
            reset_step = clamp_step(max(1, choice.step - self.localize_offset), len(parent.spans))
            parent.reset_step, parent.reset_source, parent.localization = reset_step, choice.source, choice.text
            jobs.append(ChainJob.resuming(by_id[parent.problem_id], parent, reset_step, self.layout.continuations))
        outputs = self._continue(jobs)
        for parent, samples in zip(parents, outputs):
            group = Group(len(groups), parent.problem_id, "reset", reset_step=parent.reset_step)
            for sample in samples:
                if sample.kind == "reset":  # (a fresh replacement of a failed continuation is not)
                    sample.reset_step, sample.reset_source = parent.reset_step, parent.reset_source
                group.samples.append(sample)
            # An empty prefix shares the fresh group's context: optionally one group of 8, not two of 4.
            fresh = next((g for g in groups if g.problem_id == parent.problem_id and g.kind == "fresh"), None)
            if self.merge_empty_prefix and parent.reset_step == 1 and fresh is not None:
                fresh.samples += group.samples
                continue
            groups.append(group)

    def _continue(self, jobs: list[ChainJob]) -> list[list[Sample]]:
        """The continuations of every reset job, in one batched call. Where that call fails, each job
        is tried alone, and a job whose call still fails gets fresh chains from scratch in its slots
        (trained from token 0, in the reset group), as the reference replaces a failed continuation;
        each replacement is counted in rollout/continuation_failed."""
        def resume(some: list[ChainJob]) -> list[list[Sample]]:
            return sample_chains(self.backend, self.scorer, some, self.sampling, self.limits, kind="reset",
                                 train_prefix=not self.mask_prefix)

        try:
            return resume(jobs)
        except Exception as error:  # noqa: BLE001 - any engine failure; the step goes on, counted
            print(f"resetrl: warning: a batched continuation call failed ({error}); retrying job by job")
        outputs = []
        for job in jobs:
            try:
                outputs += resume([job])
            except Exception as error:  # noqa: BLE001
                print(f"resetrl: warning: continuations of {job.problem.id} failed ({error}); fresh chains instead")
                self.counts["continuation_failed"] += job.n
                fresh = ChainJob(job.problem, job.prompt_ids, job.n)
                outputs += sample_chains(self.backend, self.scorer, [fresh], self.sampling, self.limits)
        return outputs


def can_be_parent(sample: Sample) -> bool:
    """A failed chain with at least one thought: what a reset can start from."""
    return sample.reward < 1.0 and bool(sample.thoughts)


def rollout_parts(runtime) -> tuple[Layout, Localizer | None, Scorer]:
    """The run's layout, localizer (None: no resets) and scorer: what the trainer and every rollout
    worker build. The localizer checks that the run's task gives what it needs (the oracle: true
    first errors)."""
    config = runtime.config
    method = METHODS.get(config.method)
    localizer = method.reset_localizer()
    if localizer is not None:
        localizer.check(runtime.task)
    train_from_thought(runtime)  # fails before the run when the task names no decision thought
    layout = method.layout(config.rollout.layout, config.rollout.group_size)
    return layout, localizer, Scorer(runtime.tokenizer, runtime.task, config.task.score_timeout,
                                     training_reward(config.task.reward, config.task.reward_weights))


def locate_context(runtime, rng: random.Random | None = None) -> LocateContext:
    """What training's localizers use, from the rollout section: the policy asked in one chat turn
    (the run's backend; temperature, top-p, token budget and prompt as configured) and `rng`."""
    config = runtime.config.rollout
    top_p = config.localize_top_p if config.localize_top_p is not None else config.top_p
    ask = chat_asker(runtime.backend, runtime.tokenizer, config.resolved_localize_temperature,
                     config.localize_max_tokens, top_p)
    return LocateContext(ask, rng, out_of_range=config.localize_out_of_range, max_tokens=config.localize_max_tokens,
                         prompt=config.localize_prompt)


def build_collector(runtime, layout: Layout, localizer: Localizer | None, scorer: Scorer):
    """The run's method's collector, built once per run: `collect(problems, prompts, rng, step)`
    gives each step's rollouts."""
    method = METHODS.get(runtime.config.method)
    return COLLECTORS.get(method.collector)(runtime, layout, localizer, scorer)


@COLLECTORS.register("resets")
def reset_collector(runtime, layout: Layout, localizer: Localizer | None, scorer: Scorer) -> RolloutCollector:
    """Fresh chains, parents and their reset groups (GRPO: fresh chains alone)."""
    config = runtime.config.rollout
    return RolloutCollector(runtime.backend, scorer, layout, localizer, locate_context(runtime), runtime.sampling,
                            runtime.limits, config.max_fresh_attempts, config.mask_prefix, config.merge_empty_prefix,
                            config.fallback_group, config.partial_parents, config.localize_offset,
                            train_from_thought(runtime))


def train_from_thought(runtime) -> int | None:
    """Where a method that trains only the decision (Method.train_from_decision) starts its loss: the
    task's `decision_step`; None for every other method."""
    if not METHODS.get(runtime.config.method).train_from_decision:
        return None
    step = getattr(runtime.task, "decision_step", None)
    if step is None:
        raise ResetRLError(f"method {runtime.config.method!r} trains only the decision thought, and task "
                           f"{runtime.task.name!r} names none (trap_chain does: its trap)")
    return step


def rollout_stats(result: RolloutResult, problems: list[Problem], choices, timings) -> dict[str, float]:
    """The per-step rollout figures of issue 2, item 8 (every fallback counted)."""
    fresh = [s for g in result.groups if g.kind != "reset" for s in g.samples]
    reset = [s for g in result.groups if g.kind == "reset" for s in g.samples]
    reset_groups = [g for g in result.groups if g.kind == "reset"]
    everything = result.all_samples()
    parents = result.parents
    stats: dict[str, float] = {
        "reward/fresh": _mean([s.reward for s in fresh]),
        "reward/reset": _mean([s.reward for s in reset]),
        "reward/all_trained": _mean([s.reward for s in fresh + reset]),
        "prompts/with_failure": _mean([float(any(p.problem_id == q.id for p in parents)) for q in problems]),
        "prompts/fallback": float(sum(g.kind == "fallback" for g in result.groups)),
        "groups/reset": float(len(reset_groups)),
        "groups/reset_with_success": float(sum(any(s.reward >= 1.0 for s in g.samples) for g in reset_groups)),
        "groups/zero_variance": float(sum(len({s.reward for s in g.samples}) <= 1 for g in result.groups)),
        "groups/total": float(len(result.groups)),
        "tokens/localization": float(sum(c.tokens for c in choices)),
        "chains/no_answer": float(sum(s.answer is None for s in everything)),
        "chains/no_thoughts": float(sum(not s.thoughts for s in everything)),
        "chains/unused": float(len(result.unused)),
    }
    for kind in TOKEN_KINDS:
        if kind != "localization":
            stats[f"tokens/{kind}"] = float(sum(s.new_tokens for s in everything if TOKEN_BUCKETS[s.kind] == kind))
    for phase, seconds in timings.items():
        stats[f"time/{phase}"] = seconds
    if parents:
        lengths = [max(1, len(p.thoughts)) for p in parents]
        stats["reset/step"] = _mean([p.reset_step for p in parents])
        stats["reset/step_relative"] = _mean([p.reset_step / n for p, n in zip(parents, lengths)])
        sources = Counter(p.reset_source.split(":", 1)[-1] for p in parents)
        for source, count in sources.items():
            stats[f"reset/source/{source}"] = float(count)
        known = [p for p in parents if p.first_error]
        if known:
            scores = localization_scores([p.reset_step for p in known], [p.first_error for p in known])
            for key in ("exact", "within_one", "clean_prefix"):
                stats[f"localization/{key}"] = scores[key]
    return stats


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0
