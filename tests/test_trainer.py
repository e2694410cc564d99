"""The trainer end to end: every method on the tiny model, resume after a kill, bad input."""

import json

import pytest
import torch

import resetrl.learner as learner_module
from resetrl.api import train
from resetrl.checkpoint import latest_checkpoint
from resetrl.cli import main
from resetrl.config import load_config, preset_names
from resetrl.errors import ResetRLError
from resetrl.runtime import build_runtime
from resetrl.trainer import Trainer
from tests.conftest import ScriptedBackend, checkpoint_weights, metric_rows, one_line_error


def scripted_trainer(run_dir, method="srpo", steps=3, overrides=(), token_logprob=None):
    config = load_config(preset="smoke", overrides=[f"method={method}", f"train.steps={steps}", "warmup.steps=0",
                                                    "task.options={steps: 3}", *overrides])
    runtime = build_runtime(config)
    problems = runtime.task.problems("train", config.task.train_size, 0) + runtime.task.problems("test", 4, 0)
    runtime.backend = ScriptedBackend(runtime.tokenizer, problems, p_right=0.5, token_logprob=token_logprob)
    return Trainer(config, run_dir, runtime=runtime)


@pytest.mark.parametrize("method", ["grpo", "rrpo", "srpo", "oracle"])
def test_every_method_runs_on_the_tiny_model(tmp_path, method):
    config = load_config(preset="smoke", overrides=[f"method={method}"])
    summary = train(config, tmp_path)
    assert summary["final_accuracy"] is not None
    for name in ("config.yaml", "metrics.jsonl", "rollouts.jsonl", "eval.json", "summary.json", "curves.png"):
        assert (tmp_path / name).exists(), name
    assert list((tmp_path / "tensorboard").iterdir())
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert any(r["update/skipped"] == 0.0 for r in rows[1:])  # the smoke preset exercises the RL update
    assert all(r["update/approx_kl"] >= 0.0 for r in rows[1:] if r["update/skipped"] == 0.0)  # (r - 1) - log r
    kinds = {json.loads(line)["kind"] for line in (tmp_path / "rollouts.jsonl").read_text().splitlines()}
    assert "fresh" in kinds or "reset" in kinds
    if method != "grpo":
        assert "reset/step" in rows[1] or rows[1]["prompts/with_failure"] == 0


def test_trained_batch_never_holds_a_parent(tmp_path, monkeypatch):
    trainer = scripted_trainer(tmp_path, steps=2)
    seen = []
    original = trainer.learner.update
    monkeypatch.setattr(trainer.learner, "update", lambda samples, step: (seen.extend(samples), original(samples, step))[1])
    trainer.run()
    assert seen and all(s.kind in ("fresh", "reset") for s in seen)
    rollouts = [json.loads(line) for line in (tmp_path / "rollouts.jsonl").read_text().splitlines()]
    parents = [r for r in rollouts if r["kind"] == "parent"]
    assert parents and all(r["group_id"] is None for r in parents)
    resets = [r for r in rollouts if r["kind"] == "reset"]
    assert all(r["reset_step"] >= 1 and r["reset_source"] for r in resets)


def test_resume_after_kill_reproduces_the_next_step(tmp_path, monkeypatch):
    full = scripted_trainer(tmp_path / "full", steps=3)
    full.run()
    killed = scripted_trainer(tmp_path / "killed", steps=3)
    original = killed.train_step

    def dies_at_step_3(step):
        if step == 3:
            raise KeyboardInterrupt("killed")
        return original(step)

    monkeypatch.setattr(killed, "train_step", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    resumed = scripted_trainer(tmp_path / "killed", steps=3)
    resumed.run(resume=True)

    def rows(folder):
        return {r["step"]: r for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())}

    full_rows, resumed_rows = rows(tmp_path / "full"), rows(tmp_path / "killed")
    assert sorted(resumed_rows) == [0, 1, 2, 3]
    for key in ("update/loss", "update/grad_norm", "reward/all_trained", "tokens/reset", "reset/step"):
        assert resumed_rows[3][key] == pytest.approx(full_rows[3][key], rel=1e-5), key
    assert full_rows[3]["update/active_sequences"] > 0  # the step really trained something
    for a, b in zip(full.runtime.model.parameters(), resumed.runtime.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_training_changes_the_model(tmp_path):
    trainer = scripted_trainer(tmp_path, steps=2, overrides=["train.lr=1e-2"])
    before = [p.detach().clone() for p in trainer.learner.parameters]
    trainer.run()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.learner.parameters))


def test_lora_checkpoint_resume(tmp_path):
    overrides = ["model.lora=true", "model.lora_rank=4", "model.lora_alpha=8"]
    full = scripted_trainer(tmp_path / "a", steps=2, overrides=overrides)
    full.run()
    again = scripted_trainer(tmp_path / "a", steps=2, overrides=overrides)
    again.run(resume=True)  # nothing left to do: weights restored from the last checkpoint
    for a, b in zip(full.runtime.model.parameters(), again.runtime.model.parameters()):
        assert torch.allclose(a, b)


def test_oracle_needs_a_task_that_knows_first_errors(tmp_path):
    config = load_config(preset="smoke", overrides=["method=oracle", "task.name=reasoning_gym:chain_sum",
                                                    "task.options={}"])
    with pytest.raises(ResetRLError, match="oracle"):
        Trainer(config, tmp_path)


def test_cli_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--preset", "smoke", "--set", "rollout.layout=3x3", "--out", str(tmp_path)]) == 2
    assert "rollout.layout" in capsys.readouterr().err
    assert main(["train", "--preset", "nope"]) == 2
    assert "smoke" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2")
    assert main(["train", "--config", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["train", "--preset", "smoke", "--set", "model.name=gpt-99", "--out", str(tmp_path / "run")]) == 2
    assert "tiny" in capsys.readouterr().err


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_is_a_valid_config(preset):
    config = load_config(preset=preset)
    assert config.method in ("grpo", "rrpo", "srpo", "oracle")
    assert config.task.name and config.model.name


def test_cli_smoke_run(tmp_path, capsys):
    assert main(["train", "--preset", "smoke", "--set", "method=rrpo", "--out", str(tmp_path / "run")]) == 0
    assert "results in" in capsys.readouterr().out


@pytest.mark.parametrize("lora", [True, False])
def test_kl_to_reference_and_clip_loss_run(tmp_path, lora):
    overrides = [f"model.lora={str(lora).lower()}", "model.lora_rank=4", "train.loss=clip", "train.kl_coef=0.01"]
    trainer = scripted_trainer(tmp_path, steps=1, overrides=overrides)
    assert trainer.learner.aggregation == "token-mean"
    trainer.run()
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    # with a KL term every sample is trained, zero advantage or not
    trained = [r for r in map(json.loads, (tmp_path / "rollouts.jsonl").read_text().splitlines())
               if r["kind"] in ("fresh", "reset")]
    assert row["update/active_sequences"] == len(trained)


def test_paper_asymmetric_grpo_loss(tmp_path):
    trainer = scripted_trainer(tmp_path, method="grpo", steps=1, overrides=["train.grpo_loss=clip"])
    assert trainer.learner.loss_name == "clip" and trainer.learner.aggregation == "token-mean"
    srpo = scripted_trainer(tmp_path / "s", method="srpo", steps=1, overrides=["train.grpo_loss=clip"])
    assert srpo.learner.loss_name == "pg"


def test_engine_logprobs_are_the_old_logprobs_and_updates_per_rollout(tmp_path):
    """The sampling engine's log-probabilities reach the loss as old_logprobs (the ratio is not 1 when
    they differ from the trainer's), their mismatch is logged, and later passes over the same rollout
    move the ratio away from 1 (what clipping acts on)."""
    clip = ["train.loss=clip", "train.lr=1e-2"]

    def last_row(folder):
        return json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])

    scripted_trainer(tmp_path / "own", steps=1, overrides=clip).run()
    own = last_row(tmp_path / "own")
    assert own["update/ratio_max_deviation"] == 0.0  # one pass, old = the trainer's own: ratio 1
    assert "logprobs/engine_vs_trainer_mean_abs" not in own

    scripted_trainer(tmp_path / "engine", steps=1, overrides=clip, token_logprob=-1.0).run()
    engine = last_row(tmp_path / "engine")
    assert engine["logprobs/engine_vs_trainer_mean_abs"] > 0.5  # the tiny model is far from log p = -1
    assert engine["update/ratio_max_deviation"] > 0.1

    scripted_trainer(tmp_path / "passes", steps=1, overrides=clip + ["train.updates_per_rollout=3"]).run()
    passes = last_row(tmp_path / "passes")
    assert passes["update/ratio_max_deviation"] > 0.0
    assert passes["update/last_pass_loss"] != passes["update/loss"]


def test_moved_generation_fields_name_their_new_home():
    from resetrl.errors import ResetRLError

    with pytest.raises(ResetRLError, match="rollout.batch_size -> generation.batch_size"):
        load_config(preset="smoke", overrides=["rollout.batch_size=8"])
    with pytest.raises(ResetRLError, match="unknown generation backend 'vlm'; known: hf, vllm"):
        load_config(preset="smoke", overrides=["generation.backend=vlm"])


def test_mini_batches_take_one_optimizer_step_each(tmp_path):
    """Rule 1: the step's prompts split into optimizer mini-batches (verl's ppo_mini_batch_size); the
    later ones are off-policy, so with the trainer's own old log-probabilities the clip loss's ratio
    leaves 1 within a single pass, which one step over everything never does."""
    clip = ["train.loss=clip", "train.lr=1e-2", "train.prompts_per_step=4"]

    def last_row(folder):
        return json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])

    scripted_trainer(tmp_path / "one", steps=1, overrides=clip + ["train.mini_batch_prompts=null"]).run()
    one = last_row(tmp_path / "one")
    assert one["update/optimizer_steps"] == one["update/mini_batches"] == 1
    assert one["update/ratio_max_deviation"] == 0.0

    scripted_trainer(tmp_path / "four", steps=1, overrides=clip + ["train.mini_batch_prompts=1"]).run()
    four = last_row(tmp_path / "four")
    assert four["update/mini_batches"] >= 2  # prompts whose groups all have zero variance drop out
    assert four["update/optimizer_steps"] == four["update/mini_batches"]
    assert four["update/ratio_max_deviation"] > 0.0
    assert 0.0 <= four["update/clip_fraction"] <= 1.0


def test_split_mini_batches_keeps_prompts_whole():
    from resetrl.learner import split_mini_batches

    samples = [ScriptedSample(f"p{i % 5}", i) for i in range(20)]
    batches = split_mini_batches(samples, 2, "0/mini_batches/1")
    assert [len({s.problem_id for s in batch}) for batch in batches] == [2, 2, 1]
    assert sorted(s.index for batch in batches for s in batch) == list(range(20))
    for batch in batches:  # every prompt's samples in one mini-batch
        for prompt in {s.problem_id for s in batch}:
            assert sum(s.problem_id == prompt for s in batch) == 4
    assert [[s.index for s in b] for b in batches] == [[s.index for s in b] for b in
                                                      split_mini_batches(samples, 2, "0/mini_batches/1")]
    assert split_mini_batches(samples, None, "x") == [samples] == split_mini_batches(samples, 8, "x")


class ScriptedSample:
    def __init__(self, problem_id, index):
        self.problem_id, self.index = problem_id, index


def test_paper_grpo_estimator_for_grpo_only(tmp_path):
    """Rule 9: train.grpo_advantage=grpo gives the GRPO baseline verl's estimator, the others keep theirs."""
    from resetrl.methods import METHODS

    config = load_config(preset="smoke", overrides=["train.grpo_advantage=grpo"])
    assert METHODS.get("grpo").advantage(config.train) == "grpo"
    assert METHODS.get("srpo").advantage(config.train) == "group_norm"


def test_nonfinite_loss_skips_the_update_and_three_in_a_row_stop_the_run(tmp_path, monkeypatch):
    trainer = scripted_trainer(tmp_path, steps=8, overrides=["train.lr=1e-2"])
    poisoned, current = {2, 4, 5, 6}, {"step": 0}
    real_step, real_logprobs = trainer.train_step, learner_module.response_logprobs
    monkeypatch.setattr(trainer, "train_step", lambda step: (current.update(step=step), real_step(step))[1])
    monkeypatch.setattr(learner_module, "response_logprobs", lambda model, batch, **options: real_logprobs(model, batch, **options)
                        * (float("nan") if current["step"] in poisoned else 1.0))
    with pytest.raises(ResetRLError, match="step 6: non-finite loss or gradient norm in 3 consecutive steps"):
        trainer.run()
    rows = metric_rows(tmp_path)
    assert [row["update/nonfinite"] for row in rows[1:]] == [0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    assert all(row["update/skipped"] == 1.0 for row in rows[4:])
    # Step 6 stopped before its checkpoint; steps 4 and 5 skipped their update: same finite weights.
    step_4, step_5 = (checkpoint_weights(tmp_path / "checkpoints" / f"step_00000{n}") for n in (4, 5))
    assert latest_checkpoint(tmp_path).name == "step_000005"
    assert all(torch.equal(step_4[name], step_5[name]) and torch.isfinite(step_5[name]).all() for name in step_4)


def test_an_update_that_makes_weights_nonfinite_stops_before_a_checkpoint_holds_them(tmp_path, monkeypatch):
    trainer = scripted_trainer(tmp_path, steps=3)
    real_step = trainer.learner.optimizer.step

    def overflowing_step(*args, **kwargs):
        real_step(*args, **kwargs)
        with torch.no_grad():
            trainer.learner.parameters[0].fill_(float("inf"))

    monkeypatch.setattr(trainer.learner.optimizer, "step", overflowing_step)
    with pytest.raises(ResetRLError, match=r"the update of step \d \(train.lr=.*\) made weights non-finite"):
        trainer.run()
    for folder in (tmp_path / "checkpoints").glob("step_*"):
        assert all(torch.isfinite(tensor).all() for tensor in checkpoint_weights(folder).values())


def test_nonfinite_warm_up_is_a_one_line_error(tmp_path, capsys):
    """The issue's example: huge learning rates used to end in "done" with every weight non-finite."""
    assert main(["train", "--preset", "smoke", "--set", "warmup.lr=1e30", "--set", "train.lr=1e30",
                 "--out", str(tmp_path / "run")]) == 2
    assert "the warm-up (warmup.lr=1e+30) made weights non-finite" in one_line_error(capsys)


def test_a_run_whose_every_update_was_skipped_says_so(tmp_path, capsys):
    trainer = scripted_trainer(tmp_path, method="grpo", steps=2)
    trainer.runtime.backend.p_right = 0.0  # every chain fails: no group has reward variance
    trainer.run()
    assert "every RL step (2) skipped its update" in capsys.readouterr().out


def test_group_size_with_a_reset_method_is_a_warning(tmp_path, capsys):
    scripted_trainer(tmp_path, method="srpo", steps=1, overrides=["rollout.group_size=4"])
    assert "rollout.group_size=4 is GRPO's group size" in capsys.readouterr().out
    scripted_trainer(tmp_path, method="grpo", steps=1, overrides=["rollout.group_size=4"])
    assert "group_size" not in capsys.readouterr().out
