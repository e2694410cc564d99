"""The arms of the trap testbed (docs/trap.md): SGD, merging an empty-prefix reset group into the
fresh group, and a compare grid with arms paired per arm."""

import json

import pytest
import torch

from resetrl.cli import main
from resetrl.compare.aggregate import RunResult, detectable_difference, reference_series, summarize
from resetrl.compare.diagnose import diagnose, held_out_decomposition
from resetrl.compare.pipeline import parse_arms
from resetrl.config import load_config
from resetrl.errors import ResetRLError
from resetrl.tasks import create_task
from tests.test_rollout import collect
from tests.test_trainer import scripted_trainer


def test_sgd_option_builds_sgd_and_trains(tmp_path):
    trainer = scripted_trainer(tmp_path, method="oracle", steps=1,
                               overrides=["train.optimizer=sgd", "train.lr=0.5", "train.weight_decay=0"])
    assert type(trainer.learner.optimizer) is torch.optim.SGD
    before = [p.detach().clone() for p in trainer.learner.parameters]
    trainer.train_step(1)
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.learner.parameters))
    assert type(scripted_trainer(tmp_path / "a", steps=1).learner.optimizer) is torch.optim.AdamW
    with pytest.raises(ResetRLError, match="train.optimizer"):
        load_config(preset="smoke", overrides=["train.optimizer=adam"])


def test_empty_prefix_reset_group_joins_the_fresh_group_only_when_asked(tokenizer):
    # SRPO answering "step 1" for every parent: every reset prefix is empty.
    separate, _, problems = collect(tokenizer, answers=("\\boxed{1}",), p_right=0.3)
    merged, _, _ = collect(tokenizer, answers=("\\boxed{1}",), p_right=0.3, merge_empty_prefix=True)
    assert separate.parents and all(p.reset_step == 1 for p in separate.parents)
    assert sum(g.kind == "reset" for g in separate.groups) == len(separate.parents)
    assert not [g for g in merged.groups if g.kind == "reset"]
    with_parent = {p.problem_id for p in merged.parents}
    for group in merged.groups:
        if group.problem_id in with_parent:
            assert len(group.samples) == 8 and sum(s.kind == "reset" for s in group.samples) == 4
            assert all(s.train_start == 0 for s in group.samples)
    # the merged continuations are still counted as reset tokens
    assert merged.stats["tokens/reset"] == sum(s.new_tokens for g in merged.groups for s in g.samples if s.kind == "reset") > 0


def test_merge_leaves_non_empty_prefixes_alone(tokenizer):
    result, _, _ = collect(tokenizer, answers=("\\boxed{2}",), p_right=0.3, merge_empty_prefix=True)
    resets = [g for g in result.groups if g.kind == "reset"]
    assert resets and all(g.reset_step == 2 for g in resets)


def test_detectable_difference_and_arm_pairing():
    assert detectable_difference([0.01]) is None
    # sd 0.02 over 10 seeds: (2.262 + 0.8416) * 0.02 / sqrt(10)
    differences = [0.02, -0.02] * 5
    sd = (sum(d * d for d in differences) / 9) ** 0.5
    assert detectable_difference(differences) == pytest.approx((2.262 + 0.8416) * sd / 10 ** 0.5)
    assert reference_series("oracle+sgd", "oracle", "grpo") == "grpo+sgd"
    assert reference_series("oracle", "oracle", "grpo") == "grpo"
    tokens = [{"fresh": t, "reset": 0, "localization": 0, "total": t} for t in (0, 100)]
    runs = [RunResult(series, series.split("+")[0], seed, [0, 2], [0.2, accuracy], tokens)
            for series, accuracy in (("grpo", 0.3), ("oracle", 0.4), ("grpo+sgd", 0.5), ("oracle+sgd", 0.45))
            for seed in (0, 1)]
    series = summarize(runs)["series"]
    assert series["oracle+sgd"]["reference"] == "grpo+sgd"
    assert series["oracle+sgd"]["final_minus_reference"][0] == pytest.approx(-0.05)
    assert series["oracle"]["final_minus_reference"][0] == pytest.approx(0.1)
    assert series["oracle"]["minus_reference_by_step"][0][0] == pytest.approx(0.0)


def test_bad_arms_are_clear_errors():
    assert parse_arms(["sgd: train.optimizer=sgd train.lr=0.5"]) == {"": (), "sgd": ("train.optimizer=sgd", "train.lr=0.5")}
    for bad in ("train.optimizer=sgd", ": x=1", "a b: x=1"):
        with pytest.raises(ResetRLError, match="expected 'NAME: key=value"):
            parse_arms([bad])
    with pytest.raises(ResetRLError, match="needs at least one --arm"):
        parse_arms([], with_base=False)


def tiny_trap_compare(out, methods, steps, max_total_tokens, arm) -> list[str]:
    """`resetrl compare` on the trap preset with the tiny model, one seed, a few seconds."""
    return ["compare", "--preset", "trap", "--methods", methods, "--seeds", "1", "--out", str(out),
            "--set", "model.name=tiny", "--set", f"train.steps={steps}", "--set", "train.prompts_per_step=2",
            "--set", "task.train_size=8", "--set", "task.test_size=3", "--set", "eval.samples=2",
            "--set", f"format.max_total_tokens={max_total_tokens}", "--arm", arm]


def test_compare_two_steps_on_the_trap_preset_with_an_sgd_arm(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(tiny_trap_compare(out, "grpo,oracle", 2, 48, "sgd: train.optimizer=sgd train.lr=0.1")) == 0
    results = json.loads((out / "results.json").read_text())
    series = results["summary"]["series"]
    assert list(series) == ["grpo", "oracle", "grpo+sgd", "oracle+sgd"]
    assert series["oracle+sgd"]["reference"] == "grpo+sgd" and series["oracle"]["reference"] == "grpo"
    assert "greedy_final" in series["grpo"]
    config = (out / "runs" / "oracle+sgd-seed0" / "config.yaml").read_text()
    assert "optimizer: sgd" in config and "name: trap_chain" in config
    rows = [json.loads(line) for line in (out / "runs" / "grpo-seed0" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["eval/samples"] == 6 and "eval/accuracy_greedy" in rows[0]
    report = (out / "results.md").read_text()
    assert "sampled pass@1" in report and "| oracle+sgd |" in report and "Paired difference" in report
    assert "(mean " in report and "4 runs)" in report  # per-run wall time, from each run's wall_seconds.txt
    assert (out / "curves.png").stat().st_size > 1000
    table = diagnose(out)["table"]
    assert set(table) == {"grpo", "oracle", "grpo+sgd", "oracle+sgd"}
    assert 0 <= table["oracle"]["groups_mixed"] <= 1 and table["grpo"]["reset_groups_mixed"] is None
    assert (out / "diagnose.md").exists()


def test_held_out_decomposition_reads_greedy_and_sampled_chains(tmp_path):
    config = load_config(preset="trap", overrides=["task.test_size=4"])
    task = create_task(config.task.name, **config.task.options)
    problems = task.problems("test", 4, config.task.seed)
    right = [task.reference_chain(p) for p in problems]
    at_trap = [chain[:-1] + ["1 + 1 = 999, so the answer is \\boxed{999}"] for chain in right]
    early = [["0 + 0 = 999"] + chain[1:] for chain in right]
    records = [{"problem_id": p.id, "thoughts": right[i],
                "sampled_thoughts": [right[i], at_trap[i], early[i], early[i]]} for i, p in enumerate(problems)]
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"records": records}))
    figures = held_out_decomposition(config, path)
    assert figures["eval_reach_trap_clean"] == 1.0 and figures["eval_right_at_trap"] == 1.0
    assert figures["eval_sampled_reach_trap_clean"] == 0.5 and figures["eval_sampled_right_at_trap"] == 0.5
    for record in records:  # an eval.json from before sampled chains were recorded
        del record["sampled_thoughts"]
    path.write_text(json.dumps({"records": records}))
    assert held_out_decomposition(config, path)["eval_sampled_reach_trap_clean"] is None


def test_an_arm_can_run_only_some_methods_and_a_lone_reference_arm_pairs_with_the_reference():
    from resetrl.compare.grid import method_grid
    from resetrl.compare.pipeline import arm_methods

    texts = ["lr6e-4(grpo,oracle): train.lr=6e-4", "g4(grpo): rollout.group_size=4"]
    arms = parse_arms(texts)
    assert arms == {"": (), "lr6e-4": ("train.lr=6e-4",), "g4": ("rollout.group_size=4",)}
    restricted = arm_methods(texts)
    assert restricted == {"lr6e-4": ["grpo", "oracle"], "g4": ["grpo"]}
    specs = method_grid(["grpo", "oracle", "first_reset"], [0], arms, restricted)
    assert [(s.method, s.series) for s in specs] == [
        ("grpo", "grpo"), ("oracle", "oracle"), ("first_reset", "first_reset"), ("grpo", "grpo+lr6e-4"), ("oracle", "oracle+lr6e-4"),
        ("grpo", "grpo+g4")]
    with pytest.raises(ResetRLError, match="unknown nope"):
        arm_methods(["x(grpo,nope): train.lr=1"])
    tokens = [{"fresh": t, "reset": 0, "localization": 0, "total": t} for t in (0, 100)]
    runs = [RunResult(series, series.split("+")[0], seed, [0, 2], [0.2, accuracy], tokens)
            for series, accuracy in (("grpo", 0.3), ("grpo+g4", 0.35), ("grpo+lr6e-4", 0.4), ("oracle+lr6e-4", 0.5))
            for seed in (0, 1)]
    series = summarize(runs)["series"]
    assert series["grpo+g4"]["reference"] == "grpo"
    assert series["grpo+g4"]["final_minus_reference"][0] == pytest.approx(0.05)
    assert series["oracle+lr6e-4"]["reference"] == "grpo+lr6e-4"
    assert series["grpo+lr6e-4"]["reference"] == "grpo+lr6e-4"  # the reference of its own arm
