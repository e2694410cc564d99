"""chains.py: the one entry point for scored chains, and the one job builder for resuming a parent."""

import math

from resetrl.chains import ChainJob, sample_chains
from resetrl.generation.base import SamplingParams
from resetrl.scoring import Scorer
from resetrl.tasks import create_task
from resetrl.thoughts import ChainLimits
from tests.conftest import ScriptedBackend


def _setup(tokenizer, token_logprob=None, p_right=0.0):
    task = create_task("arith_chain", steps=3)
    problem = task.problems("train", 1, 0)[0]
    backend = ScriptedBackend(tokenizer, [problem], p_right=p_right, token_logprob=token_logprob)
    prompt_ids = tokenizer(problem.question, add_special_tokens=False).input_ids
    return problem, backend, Scorer(tokenizer, task), prompt_ids


def test_fresh_chains_are_scored_and_trained_whole(tokenizer):
    problem, backend, scorer, prompt_ids = _setup(tokenizer, token_logprob=-0.5, p_right=1.0)
    [row] = sample_chains(backend, scorer, [ChainJob(problem, prompt_ids, 2)], SamplingParams(), ChainLimits())
    assert len(row) == 2 and backend.chain_calls == 1
    for sample in row:
        assert sample.reward == 1.0 and sample.train_start == 0 and len(sample.spans) == 3
        assert sample.logprobs == [-0.5] * len(sample.response_ids)


def test_resuming_keeps_the_parents_exact_prefix_and_trains_the_rest(tokenizer):
    problem, backend, scorer, prompt_ids = _setup(tokenizer, token_logprob=-0.25)
    [[parent]] = sample_chains(backend, scorer, [ChainJob(problem, prompt_ids, 1)], SamplingParams(), ChainLimits())
    job = ChainJob.resuming(problem, parent, reset_step=3, n=4)  # thoughts 1-2 kept, 3 resampled
    prefix_end = parent.spans[1][1]
    assert job.prefix_ids == parent.response_ids[:prefix_end] and job.prefix_thoughts == 2
    assert job.prefix_logprobs == parent.logprobs[:prefix_end]
    assert job.request().context_ids == prompt_ids + job.prefix_ids
    [continuations] = sample_chains(backend, scorer, [job], SamplingParams(), ChainLimits(), kind="reset")
    assert len(continuations) == 4
    for sample in continuations:
        assert sample.response_ids[:prefix_end] == parent.response_ids[:prefix_end]
        assert sample.train_start == prefix_end and sample.kind == "reset"
        assert len(sample.logprobs) == len(sample.response_ids)  # the parent's, then the engine's
    trained_from_the_start = sample_chains(backend, scorer, [job], SamplingParams(), ChainLimits(), train_prefix=True)
    assert all(sample.train_start == 0 for sample in trained_from_the_start[0])


def test_a_prefix_without_log_probabilities_gets_placeholders(tokenizer):
    problem, backend, scorer, prompt_ids = _setup(tokenizer, token_logprob=-0.25)
    [[parent]] = sample_chains(backend, scorer, [ChainJob(problem, prompt_ids, 1)], SamplingParams(), ChainLimits())
    parent.logprobs = None
    [[sample]] = sample_chains(backend, scorer, [ChainJob.resuming(problem, parent, 2, 1)], SamplingParams(),
                               ChainLimits())
    prefix_end = parent.spans[0][1]
    assert all(math.isnan(value) for value in sample.logprobs[:prefix_end])
    assert sample.logprobs[prefix_end:] == [-0.25] * (len(sample.response_ids) - prefix_end)


def test_no_jobs_calls_no_backend(tokenizer):
    _, backend, scorer, _ = _setup(tokenizer)
    assert sample_chains(backend, scorer, [], SamplingParams(), ChainLimits()) == [] and backend.chain_calls == 0
