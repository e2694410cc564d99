"""`trap_chain`: long chains of easy steps with one *trap*, the regime where resets should pay.

"Start with 7. Add 2. Subtract 3. ... What is the result?" with H = `steps` easy operations (+ and -
with operands 1..`operand_max`). The problems and the step checker are `arith_chain`'s: rewards and
first errors always use the true values.

What makes the trap is the solver's *training data* (`training_chain`, used by `resetrl micro build`):
at thought `trap_step` (default the last) the written result is wrong with probability `trap_wrong`
(default 0.6), and at every other thought with probability `slip_noise` (default 0). A wrong result
is the true one plus 1, and the chain continues consistently from it, so the solver learns one
decision it gets right about 40% of the time and steps it nearly always gets right. `slip_noise` sets
how often a chain reaches the trap with a clean prefix (docs/method.md section 8: a random reset lands on
the improvable state with probability about 1/H, the true first error always does).

`phrasings` S (default 0: none) opens every thought of the training chain with one of S equivalent
connectives ("Next, 7 + 2 = 9"), drawn uniformly and independently per thought: entropy in the
prefix that the reward does not depend on (the phrased trap chain, docs/trap.md). S = 1 is the null
with the same chain lengths: always "Then,". The question, checker, answer and reward are unchanged.
"""

from __future__ import annotations

import random
import re

from resetrl.errors import ResetRLError
from resetrl.tasks.arith_chain import OPERATIONS, ArithChain
from resetrl.tasks.base import TASKS, Problem

WRONG_OFFSET = 1  # a corrupted result is the true result plus this
_FIRST_NUMBER = re.compile(r"-?\d")
# The equivalent openings of a phrased thought; `phrasings` S uses the first S.
CONNECTIVES = ("Then,", "Next,", "So,", "Now,", "After that,", "Continuing,", "We get", "Step:")


@TASKS.register("trap_chain")
class TrapChain(ArithChain):
    """arith_chain with `+ -` only, and a trap in the solver's training data.

    Knobs: `steps` (H, default 8), `operand_max` (3), `start_max` (9), `trap_step` (1..H, default H),
    `trap_wrong` (probability that the training chain is wrong at the trap, 0.6), `slip_noise`
    (probability that it is wrong at any other step, 0), `phrasings` (connectives a training
    thought opens with, 0..8; 0 = none)."""

    name = "trap_chain"

    def __init__(self, steps: int = 8, operand_max: int = 3, start_max: int = 9, trap_step: int | None = None,
                 trap_wrong: float = 0.6, slip_noise: float = 0.0, phrasings: int = 0):
        super().__init__(steps=steps, operand_max=operand_max, start_max=start_max, ops="+-")
        self.trap_step = steps if trap_step is None else trap_step
        if not 1 <= self.trap_step <= steps:
            raise ResetRLError(f"trap_chain: trap_step must be in 1..steps ({steps}), got {trap_step}")
        for knob, value in (("trap_wrong", trap_wrong), ("slip_noise", slip_noise)):
            if not 0 <= value <= 1:
                raise ResetRLError(f"trap_chain: {knob} must be in [0, 1], got {value}")
        if not 0 <= phrasings <= len(CONNECTIVES):
            raise ResetRLError(f"trap_chain: phrasings must be in 0..{len(CONNECTIVES)}, got {phrasings}")
        self.trap_wrong, self.slip_noise, self.phrasings = trap_wrong, slip_noise, phrasings

    @property
    def decision_step(self) -> int:
        """The thought where the task's one hard decision is made (GRPO-mask trains from here)."""
        return self.trap_step

    @property
    def connectives(self) -> tuple[str, ...]:
        return CONNECTIVES[:self.phrasings]

    def corruption_rate(self, step: int) -> float:
        """Probability that the training chain writes a wrong result at thought `step` (1-indexed)."""
        return self.trap_wrong if step == self.trap_step else self.slip_noise

    def training_chain(self, problem: Problem, rng: random.Random) -> list[str]:
        """A chain as the solver's training data holds it: each result wrong with its step's
        corruption rate, every later step computed from the value actually written, then (with
        `phrasings`) each thought's connective. The connectives are drawn after the corruptions, so
        every S corrupts the same problems."""
        thoughts, value = [], problem.meta["start"]
        for step, (op, operand) in enumerate(problem.meta["program"], start=1):
            result = OPERATIONS[op][1](value, operand)
            if rng.random() < self.corruption_rate(step):
                result += WRONG_OFFSET
            thoughts.append(f"{value} {op} {operand} = {result}")
            value = result
        thoughts[-1] += f", so the answer is \\boxed{{{value}}}"
        if self.phrasings:
            thoughts = [f"{rng.choice(self.connectives)} {thought}" for thought in thoughts]
        return thoughts


def connective_of(thought: str) -> str:
    """The opening a thought was written with: its text before the first number ("" for none)."""
    found = _FIRST_NUMBER.search(thought)
    return (thought[:found.start()] if found else thought).strip()
