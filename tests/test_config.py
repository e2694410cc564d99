import json

import pytest

from resetrl.cli import main
from resetrl.config import Config, field_rows, load_config
from resetrl.errors import ResetRLError


def test_every_field_has_a_description_and_a_dotted_key():
    rows = field_rows(Config())
    keys = [key for key, _, _, _ in rows]
    assert len(keys) == len(set(keys)) > 60
    assert {"method", "train.lr", "generation.vllm.weight_sync", "task.options"} <= set(keys)
    assert all(description for _, _, _, description in rows), [key for key, _, _, d in rows if not d]
    assert all(value == default for _, value, default, _ in rows)  # Config() is all defaults


def test_config_command_prints_values_defaults_and_meanings(capsys):
    assert main(["config", "--preset", "smoke", "--set", "train.lr=0.25"]) == 0
    out = capsys.readouterr().out
    assert "train.lr = 0.25  (default 5.0e-05)\n    Learning rate" in out
    assert "[generation]" in out and "generation.vllm.kv_cache_gb = 2.0\n" in out


def test_config_yaml_loads_back_to_the_same_config(tmp_path, capsys):
    assert main(["config", "--preset", "trap", "--set", "train.optimizer=sgd", "--yaml"]) == 0
    path = tmp_path / "c.yaml"
    path.write_text(capsys.readouterr().out)
    assert load_config(str(path)) == load_config(preset="trap", overrides=["train.optimizer=sgd"])


def test_bad_config_input_is_one_clear_line(tmp_path):
    with pytest.raises(ResetRLError, match="unknown preset 'nope'; known: "):
        load_config(preset="nope")
    with pytest.raises(ResetRLError, match="expected key=value"):
        load_config(overrides=["train.lr"])
    with pytest.raises(ResetRLError, match=r"invalid config: train.lr: .* \(got 'abc'\)"):
        load_config(overrides=["train.lr=abc"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("[1, 2]")
    with pytest.raises(ResetRLError, match="must be a mapping of config sections"):
        load_config(str(bad))


def test_ics_section_loads_like_training_and_is_listed(capsys):
    config = load_config(preset="ics-smollm2", overrides=["ics.methods=regen,majority", "ics.level=L3"])
    assert config.ics.methods == ["regen", "majority"] and config.ics.level == "L3"
    assert load_config(overrides=["ics.methods=[oracle-ics]"]).ics.methods == ["oracle-ics"]
    with pytest.raises(ResetRLError, match=r"invalid config: ics.methods: unknown ICS method\(s\) bogus; known: "):
        load_config(overrides=["ics.methods=thought-ics,bogus"])
    with pytest.raises(ResetRLError, match="invalid config: ics.size: "):
        load_config(overrides=["ics.size=0"])
    assert main(["config", "--set", "ics.max_iters=3"]) == 0
    out = capsys.readouterr().out
    assert "[ics]" in out and "ics.max_iters = 3  (default 10)\n    Verify -> localize -> resample rounds" in out
    assert "task.reward = null\n    Training reward" in out


@pytest.mark.parametrize("preset", ["paper-olmo3-7b", "paper-qwen2.5-14b"])
def test_paper_presets_hold_the_reference_numbers(preset):
    """Item 4 of the fidelity issue: every value the paper's GPU runs set (the reference's
    srpo_math500.yaml and thought_agent_config.yaml)."""
    config = load_config(preset=preset)
    model, fmt, rollout, train = config.model, config.format, config.rollout, config.train
    assert (model.dtype, model.lora, model.lora_rank, model.lora_alpha, model.lora_target_modules) == (
        "bfloat16", True, 64, 64, "all-linear")
    assert (train.lr, train.weight_decay, train.grad_clip, train.optimizer) == (5e-5, 0.01, 1.0, "adamw")
    assert (train.prompts_per_step, train.mini_batch_prompts, train.updates_per_rollout, train.steps) == (32, 8, 1, 24)
    assert train.prompts_per_step // train.mini_batch_prompts == 4  # AdamW steps per rollout step
    assert (rollout.group_size, rollout.temperature, rollout.top_p, rollout.layout) == (8, 0.7, 0.95, "1x4")
    assert (fmt.max_thoughts, fmt.max_thought_tokens, fmt.max_total_tokens, fmt.examples) == (20, 256, 5120, False)
    assert (fmt.prompt_style, fmt.instructions) == ("raw", "reference")
    assert config.generation.backend == "vllm" and config.generation.vllm.max_model_len == 8192
    assert (rollout.resolved_localize_temperature, rollout.localize_max_tokens, rollout.max_fresh_attempts) == (0.3, 4096, 12)
    assert rollout.localize_top_p is None  # the rollout's top-p, 0.95
    assert (rollout.localize_prompt, rollout.localize_out_of_range) == ("reference", "prose")
    assert (train.loss, train.grpo_loss, train.grpo_advantage, train.grpo_loss_aggregation) == (
        "pg", "clip", "grpo", "micro-token-mean")
    assert config.eval.temperature == 0.0 and config.task.train_size == 400


def test_reference_rules_are_the_defaults():
    """Rows 1-19 of the reference rules, on a default config (docs/method.md's differences table
    names each option that restores resetrl's earlier behaviour)."""
    config = Config()
    assert config.train.mini_batch_prompts == 8 and config.train.updates_per_rollout == 1
    assert config.rollout.localize_max_tokens == 4096 and config.rollout.localize_top_p is None
    assert config.rollout.resolved_localize_temperature == 0.3
    assert config.rollout.model_copy(update={"layout": "1x8"}).resolved_localize_temperature == 0.0
    assert (config.rollout.localize_out_of_range, config.rollout.localize_prompt) == ("prose", "reference")
    assert (config.rollout.fallback_group, config.rollout.partial_parents) == ("fresh", "fallback")
    assert (config.format.examples, config.format.instructions) == (False, "reference")
    assert config.train.kl_estimator == "low_var_kl"


def test_paper_smoke_runs_the_reference_rules(tmp_path):
    from resetrl.trainer import Trainer

    config = load_config(preset="paper-smoke")
    summary = Trainer(config, tmp_path).run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert summary["final_accuracy"] is not None and [r["step"] for r in rows] == [0, 1, 2]
    # 4 prompts, one a mini-batch: up to 4 AdamW steps a step (a prompt with no signal drops out)
    assert all(r["update/optimizer_steps"] == r["update/mini_batches"] <= 4 for r in rows[1:])
    assert any(r["update/optimizer_steps"] >= 2 for r in rows[1:])
