"""Evaluation: greedy pass@1, and sampled pass@1 with greedy as the second figure."""

import pytest

from resetrl.config import load_config
from resetrl.errors import ResetRLError
from resetrl.evaluation import evaluate
from resetrl.runtime import build_runtime
from tests.conftest import ScriptedBackend


class RecordingBackend(ScriptedBackend):
    """The scripted backend, remembering the sampling parameters and chains per request of each call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def generate_chains(self, requests, sampling, limits):
        self.calls.append((sampling.temperature, [r.n for r in requests]))
        return super().generate_chains(requests, sampling, limits)


@pytest.fixture(scope="module")
def runtime():
    config = load_config(preset="smoke", overrides=["task.options={steps: 3}"])
    runtime = build_runtime(config)
    runtime.problems = runtime.task.problems("test", 200, 0)
    runtime.backend = RecordingBackend(runtime.tokenizer, runtime.problems, p_right=0.5, seed=0)
    return runtime


def test_greedy_evaluation_is_one_greedy_chain_per_problem(runtime):
    runtime.backend.calls.clear()
    summary, records = evaluate(runtime, runtime.problems[:10])
    assert runtime.backend.calls == [(0.0, [1] * 10)]
    assert "eval/accuracy_greedy" not in summary and summary["eval/n"] == 10 and len(records) == 10


def test_sampled_evaluation_averages_samples_and_keeps_greedy(runtime):
    runtime.backend.calls.clear()
    summary, records = evaluate(runtime, runtime.problems, temperature=0.7, samples=4)
    assert runtime.backend.calls == [(0.0, [1] * 200), (0.7, [4] * 200)]
    assert summary["eval/samples"] == 800 and summary["eval/n"] == 200
    rewards = [r for record in records for r in record["sampled_rewards"]]
    assert len(rewards) == 800 and summary["eval/accuracy"] == pytest.approx(sum(rewards) / 800)
    # the scripted chains are right half of the time: the sampled mean sees it, greedy is a second figure
    assert summary["eval/accuracy"] == pytest.approx(0.5, abs=0.06)
    assert summary["eval/accuracy_greedy"] == pytest.approx(sum(r["reward"] for r in records) / 200)
    assert {"eval/answered_greedy", "eval/tokens_greedy"} <= set(summary)
    assert all(len(record["sampled_thoughts"]) == 4 for record in records)


def test_bad_eval_settings_fail_at_load_time():
    from resetrl.errors import ResetRLError

    with pytest.raises(ResetRLError, match="eval.samples"):
        load_config(preset="smoke", overrides=["eval.samples=0"])
    with pytest.raises(ResetRLError, match="eval.temperature"):
        load_config(preset="smoke", overrides=["eval.temperature=-1"])


def test_an_empty_test_split_is_an_error_not_an_accuracy_over_nothing(tmp_path):
    from resetrl.config import load_config
    from resetrl.runtime import build_runtime
    from resetrl.trainer import Trainer

    runtime = build_runtime(load_config(preset="smoke"))
    split = runtime.task.problems
    runtime.task.problems = lambda name, size, seed: [] if name == "test" else split(name, size, seed)
    with pytest.raises(ResetRLError, match="task 'arith_chain' has no test problems: its test split is empty"):
        Trainer(runtime.config, tmp_path / "run", runtime=runtime)
    assert not (tmp_path / "run").exists()
