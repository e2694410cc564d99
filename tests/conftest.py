"""Shared test fixtures: the tiny model and a scripted generation backend.

The scripted backend writes arith_chain chains with a chosen first error, so tests control exactly
which chains fail and where, and check the pipeline's bookkeeping against that."""

from __future__ import annotations

import os
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

from resetrl.generation.base import GeneratedChain, GenerationBackend
from resetrl.models.tiny import build_tiny
from resetrl.tasks import create_task
from resetrl.thoughts import BOXED, THOUGHT_END, format_chain


def chaotic_tiny(seed: int = 2, std: float = 0.3, thought_scale: float = 3.0, boxed_scale: float = 2.0):
    """The tiny model with large random weights and loud delimiter embeddings: greedy chains that
    close thoughts, box answers and hit every cap, instead of one token repeated."""
    model, tokenizer = build_tiny()
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0, std)
        embeddings = model.get_input_embeddings().weight
        for text, scale in ((THOUGHT_END, thought_scale), (BOXED, boxed_scale)):
            embeddings[tokenizer(text, add_special_tokens=False).input_ids] *= scale
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def tiny():
    return build_tiny()


@pytest.fixture(scope="session")
def tokenizer(tiny):
    return tiny[1]


class ScriptedBackend(GenerationBackend):
    """Chains for arith_chain questions: right with probability `p_right`, else wrong from a random
    step on. Continuations from a prefix keep the prefix and write the rest the same way.
    `localization_answers` are returned (cycled) for free-text calls."""

    def __init__(self, tokenizer, problems, p_right=0.5, seed=0, localization_answers=("\\boxed{2}",),
                 token_logprob=None):
        self.tokenizer, self.p_right = tokenizer, p_right
        self.token_logprob = token_logprob  # reported for every token (as an engine would), or none
        self.task = create_task("arith_chain")
        torch.manual_seed(seed)
        self.localization_answers = list(localization_answers)
        self.text_calls = 0
        self.chain_calls = 0
        self.by_question = {p.question: p for p in problems}

    def _problem_for(self, context_text: str):
        for question, problem in self.by_question.items():
            if question in context_text:
                return problem
        raise AssertionError("unknown question in context")

    def _wrong_from(self, problem, prefix_thoughts: int) -> int | None:
        """The first wrong step of the next chain, or None for a right one."""
        # torch's RNG, so a trainer's per-step seeding makes the script reproducible too
        if torch.rand(1).item() >= self.p_right:
            return int(torch.randint(prefix_thoughts + 1, len(problem.meta["program"]) + 1, (1,)))
        return None

    def _chain(self, problem, prefix_thoughts: int) -> list[str]:
        """The correct chain, or one whose step `wrong_from` is off by one and carried forward."""
        from resetrl.tasks.arith_chain import OPERATIONS

        wrong_from = self._wrong_from(problem, prefix_thoughts)
        thoughts, value = [], problem.meta["start"]
        for index, (op, operand) in enumerate(problem.meta["program"], start=1):
            result = OPERATIONS[op][1](value, operand) + (1 if index == wrong_from else 0)
            thoughts.append(f"{value} {op} {operand} = {result}")
            value = result
        thoughts[-1] += f", so the answer is \\boxed{{{value}}}"
        return thoughts[prefix_thoughts:]

    def generate_chains(self, requests, sampling, limits):
        self.chain_calls += 1
        results = []
        for request in requests:
            text = self.tokenizer.decode(request.context_ids)
            problem = self._problem_for(text)
            chains = []
            for _ in range(request.n):
                ids = self.tokenizer(format_chain(self._chain(problem, request.prefix_thoughts)),
                                     add_special_tokens=False).input_ids
                logprobs = None if self.token_logprob is None else [self.token_logprob] * len(ids)
                chains.append(GeneratedChain(ids=ids, stop_reason="answer", logprobs=logprobs))
            results.append(chains)
        return results

    def generate_text(self, prompts, sampling, max_new_tokens):
        outputs = []
        for _ in prompts:
            answer = self.localization_answers[self.text_calls % len(self.localization_answers)]
            self.text_calls += 1
            if answer == "RAISE":
                raise RuntimeError("scripted failure")
            outputs.append(self.tokenizer(answer, add_special_tokens=False).input_ids)
        return outputs


def metric_rows(run_dir) -> list[dict]:
    """A run's metrics.jsonl, one dict per line."""
    import json

    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def checkpoint_weights(folder) -> dict[str, torch.Tensor]:
    """The model weights a checkpoint folder holds."""
    from safetensors.torch import load_file

    return load_file(folder / "model" / "model.safetensors")


def one_line_error(capsys) -> str:
    """What a command wrote to stderr, after checking that it is no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err
