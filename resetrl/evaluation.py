"""Evaluation: greedy pass@1 with plain chain generation and no resets (method.md section 3)."""

from __future__ import annotations

from resetrl.generation.base import ChainRequest, SamplingParams
from resetrl.rollout import Scorer
from resetrl.tasks import Problem


def evaluate(runtime, problems: list[Problem]) -> tuple[dict[str, float], list[dict]]:
    """Accuracy and format figures over `problems`, and one record per problem."""
    scorer = Scorer(runtime.tokenizer, runtime.task)
    prompts = [runtime.prompt_ids(p) for p in problems]
    outputs = runtime.backend.generate_chains(
        [ChainRequest(ids, 1) for ids in prompts], SamplingParams(temperature=0.0), runtime.limits)
    records, rewards, answered, thoughts, tokens = [], [], [], [], []
    for problem, prompt, (chain,) in zip(problems, prompts, outputs):
        sample = scorer.sample(problem, prompt, chain.ids, "eval", chain.stop_reason, len(chain.ids))
        rewards.append(sample.reward)
        answered.append(sample.answer is not None)
        thoughts.append(len(sample.thoughts))
        tokens.append(len(chain.ids))
        records.append({"problem_id": problem.id, "question": problem.question, "gold": problem.answer,
                        "answer": sample.answer, "reward": sample.reward, "thoughts": sample.thoughts,
                        "stop_reason": chain.stop_reason})
    n = max(len(problems), 1)
    summary = {"eval/accuracy": sum(rewards) / n, "eval/answered": sum(answered) / n,
               "eval/thoughts": sum(thoughts) / n, "eval/tokens": sum(tokens) / n, "eval/n": float(len(problems))}
    return summary, records
