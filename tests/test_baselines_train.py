"""SCoRe, Critique-GRPO and SPO-Tree end to end: two steps on the tiny model, the update on scripted
rollouts, their reference settings in the paper presets, and the compare options."""

import json

import pytest
import torch

from resetrl.api import train
from resetrl.cli import main
from resetrl.compare.pipeline import parse_arms, shared_lr_arms
from resetrl.config import load_config
from resetrl.errors import ResetRLError
from resetrl.trainer import Trainer
from tests.test_trainer import scripted_trainer

BASELINES = ["score", "critique_grpo", "spo_tree"]
KINDS = {"score": {"attempt", "correction"}, "critique_grpo": {"fresh", "refinement"}, "spo_tree": {"leaf"}}
TOKENS = {"score": "tokens/correction", "critique_grpo": "tokens/correction", "spo_tree": "tokens/tree"}


@pytest.mark.parametrize("method", BASELINES)
def test_two_steps_on_the_tiny_model(tmp_path, method):
    config = load_config(preset="smoke", overrides=[f"method={method}", "train.steps=2", "spo_tree.segment_tokens=12"])
    summary = train(config, tmp_path)
    assert summary["final_accuracy"] is not None and (tmp_path / "report.html").exists()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    for row in rows[1:]:
        assert row[TOKENS[method]] > 0 and row["groups/total"] == 2  # 2 prompts a step, one group each
    records = [json.loads(line) for line in (tmp_path / "rollouts.jsonl").read_text().splitlines()]
    trained = [r for r in records if r["group_id"] is not None]
    assert {r["kind"] for r in trained} == KINDS[method]
    for step in (1, 2):
        for group in {r["group_id"] for r in trained if r["step"] == step}:
            assert sum(r["step"] == step and r["group_id"] == group for r in trained) == 8
    if method == "score":  # the KL inside the reward gives every sample a gradient
        assert all(row["update/skipped"] == 0.0 for row in rows[1:])


@pytest.mark.parametrize("method, overrides", [("score", []), ("score", ["model.lora=true"]),
                                               ("critique_grpo", []), ("spo_tree", []),
                                               ("spo_tree", ["spo_tree.probability_mask=false"])])
def test_the_update_trains_on_scripted_rollouts(tmp_path, method, overrides):
    trainer = scripted_trainer(tmp_path, method=method, steps=2, overrides=overrides, token_logprob=-0.5)
    before = [p.detach().clone() for p in trainer.learner.parameters]
    trainer.run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(row["update/skipped"] == 0.0 for row in rows[1:])
    assert all(abs(row["update/loss"]) < 1e3 for row in rows[1:])
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.learner.parameters))


def test_methods_own_loss_and_estimator():
    config = load_config(preset="smoke", overrides=["method=spo_tree"])
    trainer = Trainer(config, "/tmp/unused-run")
    assert (trainer.learner.loss_name, trainer.learner.aggregation) == ("clip", "seq-mean-token-mean")
    assert trainer.learner.loss_knobs == {"clip_eps": 0.2, "dual_clip": 3.0, "keep_below_prob": 0.9}
    config = load_config(preset="smoke", overrides=["method=critique_grpo", "train.loss=pg"])
    trainer = Trainer(config, "/tmp/unused-run")
    assert (trainer.learner.loss_name, trainer.learner.aggregation) == ("shaped_offpolicy", "padded-length-mean")
    assert trainer.learner.loss_knobs == {"shaping_gamma": 0.1, "entropy_coef": 0.001}  # its own only
    trainer = Trainer(load_config(preset="smoke", overrides=["method=score"]), "/tmp/unused-run")
    assert trainer.learner.needs_reference and trainer.learner.reference is not None  # a frozen copy (no LoRA)


@pytest.mark.parametrize("preset", ["paper-olmo3-7b", "paper-qwen2.5-14b"])
def test_paper_presets_hold_each_baselines_reference_settings(preset):
    settings = {method: (config.train.lr, config.train.weight_decay, config.rollout.temperature)
                for method in ["srpo", *BASELINES]
                for config in [load_config(preset=preset, overrides=[f"method={method}"])]}
    assert settings == {"srpo": (5e-5, 0.01, 0.7), "score": (5e-5, 0.01, 0.7),
                        "critique_grpo": (1e-6, 0.01, 1.0), "spo_tree": (1e-6, 0.0, 0.7)}
    # An explicit setting (a compare arm's) wins over the method's own.
    assert load_config(preset=preset, overrides=["method=critique_grpo", "train.lr=5e-5"]).train.lr == 5e-5


def test_config_errors_name_the_field():
    with pytest.raises(ResetRLError, match="method_overrides.*unknown method 'scor'"):
        load_config(preset="smoke", overrides=["method_overrides={scor: {train.lr: 1.0}}"])
    with pytest.raises(ResetRLError, match="spo_tree.branching: .*one child count"):
        load_config(preset="smoke", overrides=["spo_tree.branching=[2, 0]"])
    with pytest.raises(ResetRLError, match="method_overrides.score.train.lr: train is not a section"):
        load_config(preset="smoke", overrides=["method=score", "train=1", "method_overrides={score: {train.lr: 1.0}}"])


def test_shared_learning_rate_arms():
    assert parse_arms(shared_lr_arms("1e-6, 5e-5")) == {"": (), "lr1e-06": ("train.lr=1e-06",),
                                                          "lr5e-05": ("train.lr=5e-05",)}
    with pytest.raises(ResetRLError, match="--shared-lr: 'fast' is not a number"):
        shared_lr_arms("fast")


def test_config_command_lists_the_new_sections(capsys):
    assert main(["config", "--preset", "smoke"]) == 0
    out = capsys.readouterr().out
    for key in ("score.alpha", "critique_grpo.shaping_gamma", "spo_tree.branching", "spo_tree.probability_mask",
                "method_overrides"):
        assert key in out, key
