"""The Python API: the README's example, run as written, and the API's error cases."""

import json
import re
from pathlib import Path

import pytest
import yaml

import resetrl
from resetrl.errors import ResetRLError
from resetrl.scoring import REWARDS
from resetrl.tasks.base import TASKS

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The python block of the README's "Python API" section."""
    section = README.read_text().split("## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def registries():
    """What the example registers is removed again, so that it can run twice in one session."""
    tasks, rewards = dict(TASKS._entries), dict(REWARDS._entries)
    yield
    TASKS._entries, REWARDS._entries = tasks, rewards


def test_readme_example_trains_evaluates_and_reads_rollouts(tmp_path, monkeypatch, registries, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    run = tmp_path / "runs" / "api-example"

    summary = namespace["summary"]
    assert summary["steps"] == 2 and [step for step, _ in summary["eval_curve"]] == [0, 2]
    assert 0.0 <= summary["final_accuracy"] <= 1.0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["task"] == {**saved["task"], "name": "double", "options": {"max_n": 5}, "reward": "mentions_answer"}
    # The registered task's training problems, rewarded by the function passed to train().
    rollouts = namespace["rollouts"]
    assert rollouts and {row["step"] for row in rollouts} == {1}
    assert all(row["problem_id"].startswith("train-") for row in rollouts)
    assert {row["reward"] for row in rollouts} <= {0.0, 1.0}
    assert REWARDS.get("mentions_answer") is namespace["mentions_answer"]
    assert len(resetrl.read_rollouts(run)) > len(rollouts)  # both steps
    # The trained run evaluated on the task's test problems, scored by the task (not the reward).
    evaluation = namespace["evaluation"]
    assert evaluation["eval/n"] == 4 and [r["problem_id"] for r in evaluation["records"]] == [
        "test-6", "test-7", "test-8", "test-9"]
    assert evaluation["eval/accuracy"] == sum(
        float(r["answer"] is not None and r["answer"].strip() == r["gold"]) for r in evaluation["records"]) / 4
    final = json.loads((run / "eval.json").read_text())
    assert final["eval/accuracy"] == evaluation["eval/accuracy"]  # the last checkpoint's weights
    assert "samples at step 1" in capsys.readouterr().out


def test_api_errors_are_one_line(tmp_path, registries):
    with pytest.raises(ResetRLError, match="give a config or a run folder"):
        resetrl.evaluate()
    with pytest.raises(ResetRLError, match="no rollouts.jsonl"):
        resetrl.read_rollouts(tmp_path)
    with pytest.raises(ResetRLError, match="named function"):
        resetrl.train(resetrl.load_config(preset="smoke"), tmp_path / "run", reward=lambda problem, completion: 1.0)
    with pytest.raises(ResetRLError, match=r"invalid config: task.reward: unknown reward 'nope'"):
        resetrl.load_config(overrides=["task.reward=nope"])

    @resetrl.register_reward("constant")
    def constant(problem, completion):
        return 1.0

    def other():
        pass
    other.__name__ = "constant"
    with pytest.raises(ResetRLError, match="another function is registered as 'constant'"):
        resetrl.train(resetrl.load_config(preset="smoke"), tmp_path / "run", reward=other)
    assert resetrl.load_config(overrides=["task.reward=constant"]).task.reward == "constant"
