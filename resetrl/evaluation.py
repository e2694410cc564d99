"""Evaluation: greedy pass@1 with plain chain generation and no resets (method.md section 3)."""

from __future__ import annotations

from resetrl.chains import ChainJob, Scorer, sample_chains
from resetrl.generation.base import SamplingParams
from resetrl.tasks import Problem


def evaluate(runtime, problems: list[Problem]) -> tuple[dict[str, float], list[dict]]:
    """Accuracy and format figures over `problems`, and one record per problem."""
    scorer = Scorer(runtime.tokenizer, runtime.task)
    jobs = [ChainJob(p, runtime.prompt_ids(p), 1) for p in problems]
    outputs = sample_chains(runtime.backend, scorer, jobs, SamplingParams(temperature=0.0), runtime.limits, kind="eval")
    records, rewards, answered, thoughts, tokens = [], [], [], [], []
    for problem, (sample,) in zip(problems, outputs):
        rewards.append(sample.reward)
        answered.append(sample.answer is not None)
        thoughts.append(len(sample.thoughts))
        tokens.append(len(sample.response_ids))
        records.append({"problem_id": problem.id, "question": problem.question, "gold": problem.answer,
                        "answer": sample.answer, "reward": sample.reward, "thoughts": sample.thoughts,
                        "stop_reason": sample.stop_reason})
    n = max(len(problems), 1)
    summary = {"eval/accuracy": sum(rewards) / n, "eval/answered": sum(answered) / n,
               "eval/thoughts": sum(thoughts) / n, "eval/tokens": sum(tokens) / n, "eval/n": float(len(problems))}
    return summary, records
