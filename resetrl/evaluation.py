"""Evaluation: greedy pass@1 with plain chain generation and no resets (docs/method.md section 6), or
sampled pass@1 (`eval.temperature` > 0, `eval.samples` per problem) with greedy as a second figure:
a mean over samples sees effects a greedy answer flips on only at its mode."""

from __future__ import annotations

from pathlib import Path

from resetrl.chains import ChainJob, sample_chains
from resetrl.errors import ResetRLError
from resetrl.generation.base import SamplingParams
from resetrl.scoring import Scorer
from resetrl.tasks import Problem
from resetrl.tasks.checking import CHECK_STATS


def run_config(run_dir: Path, overrides: list[str] = ()):
    """A run folder's own config (its config.yaml), `overrides` (`key=value`) applied on top."""
    from resetrl.config import load_config

    saved = Path(run_dir) / "config.yaml"
    if not saved.exists():
        raise ResetRLError(f"--run {run_dir}: not a run folder (no config.yaml)")
    return load_config(str(saved), None, overrides)


def load_run_weights(run_dir: Path, model) -> None:
    """The weights of a run folder's latest complete checkpoint, into `model`."""
    from resetrl.checkpoint import latest_checkpoint, load_weights

    checkpoint = latest_checkpoint(Path(run_dir))
    if checkpoint is None:
        raise ResetRLError(f"--run {run_dir}: no complete checkpoint in {Path(run_dir) / 'checkpoints'}")
    load_weights(checkpoint, model)
    print(f"resetrl: evaluating {checkpoint}")


def evaluation_runtime(config, run_dir: Path | None = None):
    """The runtime to evaluate: the config's model, or a run's (its LoRA adapter and latest weights)."""
    from resetrl.runtime import build_runtime

    runtime = build_runtime(config, with_lora=run_dir is not None and config.model.lora)
    if run_dir is not None:
        load_run_weights(run_dir, runtime.model)
    return runtime


def test_problems(task, config) -> list[Problem]:
    """The config's evaluation problems (`eval.split`, default the test split; `eval.size`, default
    `task.test_size`); an empty split is an error, not an accuracy over 0 problems."""
    problems = task.problems(config.eval.split, config.eval.size or config.task.test_size, config.task.seed)
    if not problems:
        raise ResetRLError(f"task {task.name!r} has no {config.eval.split} problems: its {config.eval.split} split is empty, so nothing "
                           "could be evaluated (give the task test data)")
    return problems


def evaluate_test_split(runtime) -> tuple[dict[str, float], list[dict]]:
    """`evaluate` on the config's test problems with its `eval.temperature` and `eval.samples`."""
    config = runtime.config
    return evaluate(runtime, test_problems(runtime.task, config), config.eval.temperature, config.eval.samples)


def evaluate(runtime, problems: list[Problem], temperature: float = 0.0, samples: int = 1
             ) -> tuple[dict[str, float], list[dict]]:
    """Accuracy and format figures over `problems`, and one record per problem. With `temperature`
    > 0, `eval/accuracy` is the mean reward of `samples` chains per problem at that temperature
    (rollout top-p) and the greedy figures get the suffix `_greedy`."""
    summary, records = _greedy(runtime, problems)
    if temperature <= 0:
        return summary, records
    scorer = Scorer(runtime.tokenizer, runtime.task, runtime.config.task.score_timeout)
    sampling = SamplingParams(temperature=temperature, top_p=runtime.sampling.top_p, top_k=runtime.sampling.top_k)
    jobs = [ChainJob(p, runtime.prompt_ids(p), samples) for p in problems]
    rewards = []
    for record, scored in zip(records, sample_chains(runtime.backend, scorer, jobs, sampling, runtime.limits, "eval")):
        record["sampled_rewards"] = [sample.reward for sample in scored]
        record["sampled_thoughts"] = [sample.thoughts for sample in scored]  # for the step checker
        rewards += record["sampled_rewards"]
    sampled = {f"{key}_greedy" if key != "eval/n" else key: value for key, value in summary.items()}
    sampled.update({"eval/accuracy": sum(rewards) / max(len(rewards), 1), "eval/samples": float(len(rewards))})
    return sampled, records


def _greedy(runtime, problems: list[Problem]) -> tuple[dict[str, float], list[dict]]:
    scorer = Scorer(runtime.tokenizer, runtime.task, runtime.config.task.score_timeout)
    timeouts_before = CHECK_STATS.timeouts
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
               "eval/thoughts": sum(thoughts) / n, "eval/tokens": sum(tokens) / n, "eval/n": float(len(problems)),
               "eval/check_timeouts": float(CHECK_STATS.timeouts - timeouts_before)}
    return summary, records
