"""The phrased trap chain's tools (docs/trap.md): the validation split, connective entropy, and the
batch-gradient agreement measured at fixed weights."""

import json
import math

import pytest
import torch

from resetrl.compare.agreement import agreement, batch_gradients, markdown
from resetrl.compare.diagnose import connective_entropy, held_out_decomposition
from resetrl.config import load_config
from resetrl.errors import ResetRLError
from resetrl import evaluation
from resetrl.runtime import build_runtime
from resetrl.tasks import create_task
from tests.conftest import ScriptedBackend


def test_validation_split_is_apart_from_train_and_test():
    task = create_task("trap_chain", steps=12, phrasings=8)
    validation = task.problems("validation", 256, seed=0)
    assert len(validation) == 256 and validation == task.problems("validation", 256, seed=0)
    assert validation[0].id == "validation-0"
    # a small problem space, where the streams do collide: validation still leaves them out
    small = create_task("arith_chain", steps=2, operand_max=3, start_max=3)
    held = {p.question for p in small.problems("validation", 20, seed=0)}
    assert not held & {p.question for p in small.problems("test", 500, seed=0)}
    assert not held & {p.question for p in small.problems("train", 21000, seed=0)}
    config = load_config(preset="trap-phrased8", overrides=["eval.split=validation", "eval.size=256"])
    assert [p.question for p in evaluation.test_problems(task, config)] == [p.question for p in validation]
    with pytest.raises(ResetRLError, match="eval.split"):
        load_config(preset="trap", overrides=["eval.split=dev"])


def test_connective_entropy_per_position():
    uniform = [[f"{c} 1 + 1 = 2", f"{d} 2 + 1 = 3"] for c in ("Then,", "Next,") for d in ("So,", "Now,")]
    assert connective_entropy(uniform, 2) == pytest.approx(math.log(2))
    fixed = [["Then, 1 + 1 = 2", "Then, 2 + 1 = 3"]] * 4
    assert connective_entropy(fixed, 2) == 0.0
    # a chain that stops early counts only at the positions it reaches
    assert connective_entropy([["Then, 1 + 1 = 2"], ["Next, 1 + 1 = 2", "So, 2 + 1 = 3"]], 2) == pytest.approx(math.log(2) / 2)
    assert connective_entropy([], 2) is None


def test_held_out_decomposition_reports_the_phrasing_entropy(tmp_path):
    config = load_config(preset="trap-phrased8", overrides=["task.test_size=4"])
    task = create_task(config.task.name, **config.task.options)
    problems = task.problems("test", 4, config.task.seed)
    connectives = ["Then,", "Next,", "So,", "Now,"]
    records = [{"problem_id": p.id, "thoughts": [],
                "sampled_thoughts": [[f"{connectives[(i + k) % 4]} {t}" for t in task.reference_chain(p)] for k in range(4)]}
               for i, p in enumerate(problems)]
    path = tmp_path / "eval.json"
    path.write_text(json.dumps({"records": records}))
    figures = held_out_decomposition(config, path)
    assert figures["eval_sampled_reach_trap_clean"] == 1.0 and figures["eval_sampled_right_at_trap"] == 1.0
    assert figures["eval_sampled_connective_entropy"] == pytest.approx(math.log(4))
    assert figures["eval_sampled_connective_entropy_over_log_s"] == pytest.approx(math.log(4) / math.log(8))
    plain = load_config(preset="trap", overrides=["task.test_size=4"])
    assert "eval_sampled_connective_entropy" not in held_out_decomposition(plain, path)


def test_agreement_is_one_for_a_noiseless_gradient_and_falls_with_noise():
    generator = torch.Generator().manual_seed(0)
    signal = torch.randn(2000, generator=generator)
    assert agreement([signal.clone() for _ in range(4)]) == pytest.approx(1.0)
    assert agreement([3 * signal, 3 * signal]) == pytest.approx(1.0)  # scale-free
    noisy = [signal + 2 * torch.randn(2000, generator=generator) for _ in range(16)]
    assert agreement(noisy) == pytest.approx(1 / 5, abs=0.03)  # |mu|^2 / (|mu|^2 + 4 d)
    assert math.isnan(agreement([torch.zeros(3), torch.zeros(3)]))
    with pytest.raises(ResetRLError, match="at least 2"):
        agreement([signal])


def test_batch_gradients_use_the_trainers_loss_and_never_move_the_weights(tmp_path):
    config = load_config(preset="smoke", overrides=["task.name=trap_chain", "task.options={steps: 3}", "warmup.steps=0",
                                                    "train.prompts_per_step=4", "task.train_size=16"])
    rows = {}
    for method in ("grpo", "grpo_mask"):
        method_config = config.model_copy(update={"method": method})
        runtime = build_runtime(method_config)
        problems = runtime.task.problems("train", 16, 0)
        runtime.backend = ScriptedBackend(runtime.tokenizer, problems, p_right=0.5)
        before = [p.detach().clone() for p in runtime.model.parameters()]
        gradients, figures = batch_gradients(method_config, 3, tmp_path / method, runtime)
        assert all(torch.equal(b, p) for b, p in zip(before, runtime.model.parameters()))
        assert len(gradients) == 3 and all(g.norm() > 0 for g in gradients)
        rows[method] = gradients
    # the mask leaves out the first two thoughts' tokens: another gradient from the same batches
    assert not torch.allclose(rows["grpo"][0], rows["grpo_mask"][0])
    table = markdown({"model": "tiny", "batches": 3, "prompts_per_batch": 4, "methods": {
        m: {"agreement": agreement(g), "agreement_halves": None, "over_grpo": 1.0, "mean_squared_norm": 1.0,
            "mean_reward": 0.5, "active_sequences_per_batch": 8} for m, g in rows.items()}})
    assert "| grpo_mask |" in table


def test_rates_are_chosen_on_the_validation_split(tmp_path):
    from resetrl.cli import main
    from resetrl.compare.validation import choose_rates, main as validation_main
    from tests.test_trap_arms import tiny_trap_compare

    out = tmp_path / "cmp"
    assert main(tiny_trap_compare(out, "grpo", 1, 32, "lr2: train.lr=2e-3")) == 0
    result = choose_rates(out, size=3)
    assert set(result["series"]) == {"grpo", "grpo+lr2"} and result["series"]["grpo"]["n"] == 1
    best = max(result["series"], key=lambda name: result["series"][name]["mean"])
    assert result["chosen"]["grpo"] == best
    saved = json.loads((out / "runs" / "grpo-seed0" / "validation.json").read_text())
    assert saved["eval/n"] == 3 and saved["eval/accuracy"] == result["series"]["grpo"]["mean"]
    assert validation_main([str(out), "--size", "3"]) == 0 and (out / "validation.md").exists()
    assert validation_main([str(tmp_path / "none")]) == 2


def test_grpo_mask_and_first_reset_train_end_to_end(tmp_path):
    from resetrl.cli import main
    from resetrl.compare.diagnose import diagnose
    from tests.test_trap_arms import tiny_trap_compare

    out = tmp_path / "cmp"
    assert main(tiny_trap_compare(out, "grpo_mask,first_reset", 1, 48, "sgd: train.optimizer=sgd train.lr=0.1")) == 0
    rows = [json.loads(line) for line in (out / "runs" / "grpo_mask-seed0" / "rollouts.jsonl").read_text().splitlines()]
    # trained from thought 8 (the trap), or from the last thought of a shorter chain: never from token 0
    # unless the chain has a single thought
    longer = [r for r in rows if len(r["thoughts"]) > 1]
    assert longer and all(r["suffix_start"] > 0 for r in longer)
    first = [json.loads(line) for line in (out / "runs" / "first_reset-seed0" / "rollouts.jsonl").read_text().splitlines()]
    assert all(r["reset_step"] == 1 for r in first if r["kind"] == "parent")
    assert set(diagnose(out)["table"]) == {"grpo_mask", "first_reset", "grpo_mask+sgd", "first_reset+sgd"}
