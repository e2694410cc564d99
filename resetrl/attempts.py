"""Second attempts: SCoRe's corrections and Critique-GRPO's refinements (docs/methods.md).

A second attempt is sampled after a context that holds a first attempt (SCoRe: the question prompt,
the attempt and a hedged request to correct it; Critique-GRPO: a request holding the question, the
attempt and a binary critique), then trained under the plain question prompt, as the reference
trains it. Its engine log-probabilities belong to that other context, so they are dropped and the
trainer computes the old ones under the prompt it trains with.
"""

from __future__ import annotations

import time
from collections import Counter

from resetrl.chains import ChainJob, sample_chains
from resetrl.groups import Group
from resetrl.prompts import CORRECTION_INSTRUCTION, chat_prompt_ids, refinement_prompt
from resetrl.rollout import COLLECTORS, RolloutResult, rollout_stats
from resetrl.scoring import Sample
from resetrl.tasks.base import Problem


class SecondAttempts:
    """What both collectors share: the run's backend and scorer, and sampling one chain after each
    of several contexts, re-homed under the question prompt."""

    def __init__(self, runtime, scorer, group_size: int):
        self.runtime, self.scorer, self.group_size = runtime, scorer, group_size
        self.counts: Counter = Counter()  # the step's (reset by each collect)

    def draw(self, problems: list[Problem], prompts: dict[str, list[int]], counts: dict[str, int]) -> dict[str, list[Sample]]:
        """`counts[id]` fresh chains for each problem, in one batched call."""
        wanted = [p for p in problems if counts.get(p.id, 0) > 0]
        jobs = [ChainJob(p, prompts[p.id], counts[p.id]) for p in wanted]
        rows = sample_chains(self.runtime.backend, self.scorer, jobs, self.runtime.sampling, self.runtime.limits)
        return {problem.id: row for problem, row in zip(wanted, rows)}

    def follow_up(self, problems: list[Problem], contexts: list[list[int]], prompts: list[list[int]],
                  kind: str) -> list[Sample]:
        """One chain after each context (one batched call), as a sample trained under its prompt."""
        jobs = [ChainJob(problem, context, 1) for problem, context in zip(problems, contexts)]
        rt = self.runtime
        samples = [row[0] for row in sample_chains(rt.backend, self.scorer, jobs, rt.sampling, rt.limits, kind=kind)]
        for sample, prompt in zip(samples, prompts):
            sample.prompt_ids, sample.logprobs, sample.off_policy = prompt, None, True
        return samples

    def context_room(self, fixed_tokens: int) -> int | None:
        """How many tokens of a first attempt fit in a context beside `fixed_tokens` others, leaving
        room for a whole chain (the engine's context length); None when unbounded."""
        longest = getattr(self.runtime.backend, "max_model_len", None) or getattr(
            getattr(self.runtime.model, "config", None), "max_position_embeddings", None)
        if not longest:
            return None
        return max(0, longest - self.runtime.limits.max_total_tokens - fixed_tokens)

    def fitted(self, attempt: list[int], fixed_tokens: int) -> list[int]:
        """`attempt` cut from its end until it fits beside `fixed_tokens` (counted when cut)."""
        room = self.context_room(fixed_tokens)
        if room is not None and len(attempt) > room:
            self.counts["first_attempt_cut"] += 1
            return attempt[:room]
        return attempt

    def result(self, groups: list[Group], unused: list[Sample], problems: list[Problem], timings: dict) -> RolloutResult:
        for group in groups:
            for sample in group.samples:
                sample.group_id = group.id
        result = RolloutResult(groups, [], unused)
        result.stats = rollout_stats(result, problems, [], timings)
        for rule, count in self.counts.items():
            result.stats[f"rollout/{rule}"] = float(count)
        return result


def shape_score_rewards(first: Sample, second: Sample | None, alpha: float, stage_one: bool, config) -> None:
    """SCoRe's shaped rewards and KL coefficients (Kumar et al. 2024, sections 4.1-4.2). Stage II:
    y1 gets R(y1), y2 gets R(y2) + alpha (R(y2) - R(y1)); Stage I: y1 gets 0, y2 gets R(y2), and y1's
    KL coefficient is the larger Stage I one."""
    first.shaped_reward = 0.0 if stage_one else first.reward
    first.reward_kl_coef = config.stage1_kl_first if stage_one else config.kl_first
    if second is not None:
        second.shaped_reward = second.reward if stage_one else second.reward + alpha * (second.reward - first.reward)
        second.reward_kl_coef = config.kl_second


class ScoreCollector(SecondAttempts):
    """SCoRe's rollouts: per prompt, pairs (y1, y2) in slot order until group_size samples. y1 is a
    fresh chain; one with no thought takes a slot alone (a wrong first attempt) and the next y1 is
    drawn; otherwise y2 is sampled after the question prompt + y1 + the hedged correction request
    (y1 cut from its end until the context fits). One group per prompt."""

    def collect(self, problems: list[Problem], prompts: dict[str, list[int]], rng=None, step: int = 0) -> RolloutResult:
        """Step `step`'s pairs (its number picks Stage I or II; no random choice of its own: `rng` is unused)."""
        self.counts = Counter()
        config = self.runtime.config.score
        stage_one = step <= config.stage1_steps
        instruction = self.runtime.tokenizer(CORRECTION_INSTRUCTION, add_special_tokens=False).input_ids
        slots: dict[str, list[Sample]] = {p.id: [] for p in problems}
        started = time.perf_counter()
        while True:
            # Each pair fills two slots: draw as many first attempts as the prompt's open slots need.
            counts = {p.id: -(-(self.group_size - len(slots[p.id])) // 2) for p in problems
                      if len(slots[p.id]) < self.group_size}
            if not counts:
                break
            drawn = self.draw(problems, prompts, counts)
            firsts = [(p, first) for p in problems for first in drawn.get(p.id, [])]
            paired = [(p, s) for p, s in firsts if s.thoughts]
            contexts = [prompts[p.id] + self.fitted(first.response_ids, len(prompts[p.id]) + len(instruction))
                        + instruction for p, first in paired]
            seconds = self.follow_up([p for p, _ in paired], contexts, [prompts[p.id] for p, _ in paired], "correction")
            second_of = {id(first): second for (_, first), second in zip(paired, seconds)}
            for problem, first in firsts:
                first.kind = "attempt"
                second = second_of.get(id(first))
                shape_score_rewards(first, second, config.alpha, stage_one, config)
                slots[problem.id].append(first)
                if second is None:
                    self.counts["score/no_thought_first"] += 1
                    continue
                second.follows = len(slots[problem.id]) - 1
                slots[problem.id].append(second)
        groups, unused = [], []
        for problem in problems:
            kept = slots[problem.id][:self.group_size]
            for sample in slots[problem.id][self.group_size:]:
                sample.kind = "unused" if sample.kind == "attempt" else sample.kind
                unused.append(sample)
            groups.append(Group(len(groups), problem.id, "attempts", kept))
        return self.result(groups, unused, problems, {"fresh": time.perf_counter() - started})



class CritiqueCollector(SecondAttempts):
    """Critique-GRPO's rollouts: per prompt, group_size fresh chains, each scored (no thought =
    wrong) and each refined once after a binary critique. The first correct refinement in chain
    order is kept, else the first; the group is that refinement (off-policy) + the first
    group_size - 1 chains (the last chain is dropped, as in the reference)."""

    def collect(self, problems: list[Problem], prompts: dict[str, list[int]], rng=None, step: int = 0) -> RolloutResult:
        """The step's refined groups (no random choice of its own: `rng` and `step` are unused)."""
        self.counts = Counter()
        tokenizer = self.runtime.tokenizer
        started = time.perf_counter()
        drawn = self.draw(problems, prompts, {p.id: self.group_size for p in problems})
        chains = [(p, chain) for p in problems for chain in drawn[p.id]]
        contexts = []
        for problem, chain in chains:
            def request(solution_ids: list[int]) -> list[int]:
                return chat_prompt_ids(tokenizer, refinement_prompt(
                    problem.question, self.scorer.decode(solution_ids), chain.reward >= 1.0 and bool(chain.thoughts)))

            # The request's own tokens fixed, the chain's text cut from its end until the context fits
            # (again where its text, re-tokenized inside the request, came out longer).
            solution = self.fitted(chain.response_ids, len(request([])))
            context, room = request(solution), self.context_room(0)
            while room is not None and len(context) > room and solution:
                solution = solution[:max(0, len(solution) - (len(context) - room))]
                context = request(solution)
            contexts.append(context)
        refinements = self.follow_up([p for p, _ in chains], contexts, [prompts[p.id] for p, _ in chains], "refinement")
        groups, unused, position = [], [], 0
        for problem in problems:
            own = refinements[position:position + len(drawn[problem.id])]
            position += len(own)
            kept_index = next((i for i, r in enumerate(own) if r.reward >= 1.0), 0)
            kept = own[kept_index]
            originals = drawn[problem.id][:self.group_size - 1]
            if kept_index < len(originals):
                kept.follows = 1 + kept_index
            self.counts["critique/refinement_correct"] += float(kept.reward >= 1.0)
            for dropped in drawn[problem.id][self.group_size - 1:]:
                dropped.kind = "unused"
            unused += drawn[problem.id][self.group_size - 1:] + [r for r in own if r is not kept]
            groups.append(Group(len(groups), problem.id, "refined", [kept, *originals]))
        return self.result(groups, unused, problems, {"fresh": time.perf_counter() - started})


@COLLECTORS.register("score")
def score_collector(runtime, layout, localizer, scorer) -> ScoreCollector:
    return ScoreCollector(runtime, scorer, runtime.config.rollout.group_size)


@COLLECTORS.register("critique_grpo")
def critique_collector(runtime, layout, localizer, scorer) -> CritiqueCollector:
    return CritiqueCollector(runtime, scorer, runtime.config.rollout.group_size)
