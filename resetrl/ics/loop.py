"""The self-correction loop of Thought-ICS (Paper B; docs/method.md section 7), shared by its baselines.

```
chain <- generate(q)
repeat up to L times:
    if verify(chain): return chain            # exit "verified"
    e <- localize(chain)                      # 1-indexed step; 0 = "no error found"
    if e == 0: return chain                   # exit "disagree" (verifier and localizer disagree)
    chain <- prefix(chain, e-1) + generate(q, prefix)
return chain                                  # exit "max_iterations"
```

A `Corrector` supplies `first`, `locate` and `resume`; Thought-ICS, full regeneration, Token-ICS and
Self-Refine differ only there. All problems still in the loop move through a round together, so each
round is one batched call per stage. Thought-ICS-S returns the final chain; Thought-ICS-A returns the
first chain unless the loop exited "verified" (Paper B's confidence safeguard).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tqdm import tqdm

from resetrl.ics.engine import Attempt
from resetrl.ics.verification import Verdict
from resetrl.resets import ResetPoint
from resetrl.tasks.base import Problem

EXITS: tuple[str, ...] = ("verified", "disagree", "max_iterations")


@dataclass
class Iteration:
    attempt: Attempt
    verdict: Verdict | None = None  # None: this chain was not verified (the last one of a loop)
    located: ResetPoint | None = None  # where the correction resumed; None: none followed this chain

    def record(self, index: int) -> dict:
        return {"iteration": index, **self.attempt.record(),
                "verdict": self.verdict.record() if self.verdict else None,
                "localized": self.located.record() if self.located else None}


@dataclass
class Trajectory:
    """Every chain of one problem under one method, how the loop ended, and the chain each variant
    returns ("S": the final chain, "A": the first unless verified)."""

    problem: Problem
    method: str
    iterations: list[Iteration]
    exit: str = "max_iterations"
    selected: dict[str, Attempt] = field(default_factory=dict)

    @property
    def first(self) -> Attempt:
        return self.iterations[0].attempt

    def select(self) -> None:
        final = self.iterations[-1].attempt
        self.selected = {"S": final, "A": final if self.exit == "verified" else self.first}

    def record(self) -> dict:
        return {"problem_id": self.problem.id, "question": self.problem.question, "gold": self.problem.answer,
                "method": self.method, "exit": self.exit,
                "answer_initial": self.first.answer, "reward_initial": self.first.reward,
                **{f"answer_{v}": a.answer for v, a in self.selected.items()},
                **{f"reward_{v}": a.reward for v, a in self.selected.items()},
                "iterations": [it.record(index) for index, it in enumerate(self.iterations)]}


class Corrector:
    """One self-correction method: how the first chain is made, where to resume, how to resume."""

    name = "corrector"

    def first(self, problems: list[Problem]) -> list[Attempt]:
        raise NotImplementedError

    def locate(self, problems: list[Problem], attempts: list[Attempt]) -> list[ResetPoint]:
        raise NotImplementedError

    def resume(self, problems: list[Problem], attempts: list[Attempt], located: list[ResetPoint]) -> list[Attempt]:
        raise NotImplementedError


def correction_loop(corrector: Corrector, verifier, problems: list[Problem], max_iters: int,
                    initial: list[Attempt] | None = None, progress: bool = True) -> list[Trajectory]:
    """Run the loop for every problem; `initial` reuses given first chains (so methods compared on
    the same problems also start from the same chains)."""
    first = initial if initial is not None else corrector.first(problems)
    trajectories = [Trajectory(p, corrector.name, [Iteration(a)]) for p, a in zip(problems, first)]
    active = list(range(len(problems)))
    bar = tqdm(total=max_iters, desc=corrector.name, unit="round", disable=not progress)
    for _ in range(max_iters):
        if not active:
            break
        current = [trajectories[i].iterations[-1] for i in active]
        verdicts = verifier.verify([problems[i] for i in active], [it.attempt for it in current])
        unverified = []
        for i, iteration, verdict in zip(active, current, verdicts):
            iteration.verdict = verdict
            if verdict.verified:
                trajectories[i].exit = "verified"
            else:
                unverified.append(i)
        located = corrector.locate([problems[i] for i in unverified],
                                   [trajectories[i].iterations[-1].attempt for i in unverified])
        to_resume = []
        for i, where in zip(unverified, located):
            trajectories[i].iterations[-1].located = where
            if where.step == 0:
                trajectories[i].exit = "disagree"
            else:
                to_resume.append((i, where))
        resumed = corrector.resume([problems[i] for i, _ in to_resume],
                                   [trajectories[i].iterations[-1].attempt for i, _ in to_resume],
                                   [where for _, where in to_resume]) if to_resume else []
        for (i, _), attempt in zip(to_resume, resumed):
            trajectories[i].iterations.append(Iteration(attempt))
        active = [i for i, _ in to_resume]
        bar.update(1)
        bar.set_postfix(active=len(active))
    bar.close()
    for i in active:
        trajectories[i].exit = "max_iterations"
    for trajectory in trajectories:
        trajectory.select()
    return trajectories
