"""bf16 compute (model.dtype, resetrl/precision.py) and the truncated importance correction."""

import json
from types import SimpleNamespace

import pytest
import torch

from resetrl import precision
from resetrl.config import load_config
from resetrl.generation.base import SamplingParams
from resetrl.generation.hf import ContextRows, HFBackend
from resetrl.learner import importance_correction_on
from resetrl.losses import LossInputs, policy_loss, truncated_importance_weights
from resetrl.models import add_lora, load_model
from resetrl.runtime import build_runtime
from resetrl.trainer import Trainer
from tests.test_trainer import scripted_trainer


def _model_of_shape(hidden, intermediate=None):
    return SimpleNamespace(config=SimpleNamespace(hidden_size=hidden, intermediate_size=intermediate or 4 * hidden))


def test_auto_dtype_rules(monkeypatch):
    model = _model_of_shape(576, 1536)
    assert precision.resolve_dtype("float32", model, "cpu")[0] == "float32"
    assert precision.resolve_dtype("bfloat16", model, "cpu")[0] == "bfloat16"
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: [])
    dtype, why = precision.resolve_dtype("auto", model, "cpu")
    assert dtype == "float32" and "no bf16 units" in why
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ["avx512_bf16"])
    monkeypatch.setattr(precision, "probe", lambda inner, out, **kw: precision.Probe((256, inner, out), 50.0, 150.0))
    dtype, why = precision.resolve_dtype("auto", model, "cpu")
    assert dtype == "bfloat16" and "3.0x" in why and "256x576x1536" in why
    monkeypatch.setattr(precision, "probe", lambda inner, out, **kw: precision.Probe((256, inner, out), 50.0, 60.0))
    assert precision.resolve_dtype("auto", model, "cpu")[0] == "float32"  # 1.2x: below the margin
    # A small model stays fp32 without a probe.
    monkeypatch.setattr(precision, "probe", lambda inner, out, **kw: pytest.fail("probed a small model"))
    assert precision.resolve_dtype("auto", _model_of_shape(64), "cpu")[0] == "float32"


def test_auto_on_a_gpu_probes_native_bf16_and_refuses_emulated(monkeypatch):
    """torch counts a pre-Ampere GPU's emulated bf16 as supported; auto asks for native bf16, then
    probes on the GPU at an update's rows (fewer are launch-bound there)."""
    model = _model_of_shape(896, 4864)
    native = {"on": False}
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Test GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation or native["on"])
    monkeypatch.setattr(precision, "probe", lambda *args, **kwargs: pytest.fail("probed emulated bf16"))
    dtype, why = precision.resolve_dtype("auto", model, "cuda")
    assert dtype == "float32" and "Test GPU has no native bf16" in why
    native["on"] = True
    probed = []
    monkeypatch.setattr(precision, "probe", lambda inner, out, rows, device: probed.append((inner, out, rows, device))
                        or precision.Probe((rows, inner, out), 40.0, 360.0))
    dtype, why = precision.resolve_dtype("auto", model, "cuda")
    assert dtype == "bfloat16" and why.startswith("Test GPU; probe 2048x896x4864 matmul")
    assert probed == [(896, 4864, 2048, "cuda")]
    monkeypatch.setattr(precision, "probe", lambda inner, out, rows, device: precision.Probe((rows, inner, out), 40.0, 36.0))
    assert precision.resolve_dtype("auto", model, "cuda")[0] == "float32"  # 0.9x: bf16 slower on this GPU


def test_probe_measures_both():
    measured = precision.probe(64, 128, rows=32, seconds=0.01)
    assert measured.fp32_gflops > 0 and measured.bf16_gflops > 0 and "GFLOP/s" in measured.describe()


def test_bf16_lora_stores_the_frozen_base_in_bf16_and_adapters_in_fp32():
    model, _ = load_model("tiny", device="cpu")
    model = add_lora(model, 4, 4, 0.0, "all-linear")
    precision.store_frozen_in(model, "bfloat16")
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert trained == {torch.float32} and frozen == {torch.bfloat16}


def test_bf16_lora_layers_skip_peft_input_cast_with_identical_outputs():
    """peft's cast of a LoRA layer's input to the fp32 adapter's dtype is undone by autocast; turning it
    off drops those copies and changes no output bit."""
    model, _ = load_model("tiny", device="cpu")
    model = add_lora(model, 4, 4, 0.0, "all-linear")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero; the adapters must act for the check to bite
                parameter.normal_(0, 0.05)
    ids = torch.arange(3, 19).reshape(2, 8)
    precision.store_frozen_in(model, "float32")  # fp32: nothing changes, peft keeps casting
    assert all(module.cast_input_dtype_enabled for module in model.modules() if hasattr(module, "cast_input_dtype_enabled"))
    precision.store_frozen_in(model, "bfloat16")
    layers = [module for module in model.modules() if hasattr(module, "cast_input_dtype_enabled")]
    assert layers and not any(module.cast_input_dtype_enabled for module in layers)
    with torch.no_grad(), precision.compute("bfloat16", "cpu"):
        skipping = model(ids).logits
        for module in layers:  # peft's cast back on, over the same bf16 base
            module.cast_input_dtype_enabled = True
        assert torch.equal(model(ids).logits, skipping)


def test_hf_engine_decodes_in_bf16_close_to_the_trainer():
    """The cached engine under bf16 autocast gives log-probabilities close
    to the trainer's own bf16 forward of the same tokens (the mismatch the correction handles)."""
    from resetrl.logprobs import collate, response_logprobs

    model, tokenizer = load_model("tiny", device="cpu")
    backend = HFBackend(model, tokenizer, batch_size=8, dtype="bfloat16")
    prompt = tokenizer("Compute 3 + 4.", add_special_tokens=True).input_ids
    torch.manual_seed(0)
    rows = backend.sample_rows([ContextRows(prompt, 4, 12)], SamplingParams(1.0, 1.0, 0), None)[0]
    assert all(len(ids) > 0 for ids, _, _ in rows)
    batch = collate([prompt] * 4, [ids for ids, _, _ in rows], [0] * 4, tokenizer.pad_token_id)
    with torch.no_grad(), precision.compute("bfloat16", "cpu"):
        trainer = response_logprobs(model, batch)
    engine = torch.zeros_like(trainer)
    for row, (ids, _, logprobs) in enumerate(rows):
        engine[row, :len(ids)] = torch.tensor(logprobs)
    mask = batch.loss_mask.bool()
    gap = (trainer - engine)[mask].abs()
    assert float(gap.max()) < 0.25  # bf16 rounding, not a different model
    assert next(model.parameters()).dtype == torch.float32  # the weights themselves stay fp32


def test_truncated_importance_weights():
    trainer = torch.tensor([[-1.0, -2.0, -0.5, -3.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    agree = truncated_importance_weights(trainer, trainer.clone(), 2.0, mask)
    assert torch.equal(agree, torch.tensor([[1.0, 1.0, 1.0, 0.0]]))  # 1 where they agree, 0 off the mask
    engine = torch.tensor([[-3.0, -2.0, 0.0, -3.0]])  # the engine drew token 1 rarer, token 3 likelier
    weights = truncated_importance_weights(trainer, engine, 2.0, mask)
    assert weights[0, 0] == 2.0  # exp(2) = 7.4, truncated at C
    assert weights[0, 1] == 1.0
    assert torch.isclose(weights[0, 2], torch.exp(torch.tensor(-0.5)))


@pytest.mark.parametrize("loss", ["pg", "clip"])
def test_the_loss_weights_each_token_of_its_policy_term(loss):
    torch.manual_seed(0)
    logprobs = torch.randn(2, 5, requires_grad=True)
    base = dict(old_logprobs=logprobs.detach() + 0.1, advantages=torch.tensor([1.0, -0.5]),
                mask=torch.ones(2, 5), normalizer=2.0)
    plain = policy_loss(loss, LossInputs(logprobs=logprobs, **base))
    ones = policy_loss(loss, LossInputs(logprobs=logprobs, token_weights=torch.ones(2, 5), **base))
    assert torch.equal(plain, ones)
    weights = torch.full((2, 5), 2.0)
    doubled = policy_loss(loss, LossInputs(logprobs=logprobs, token_weights=weights, **base))
    assert torch.isclose(doubled, 2 * plain)


def test_correction_defaults():
    config = load_config(preset="smoke")
    config.generation.backend, config.model.dtype = "hf", "float32"
    assert not importance_correction_on(config)  # the hf engine in fp32 agrees with the trainer
    config.model.dtype = "bfloat16"
    assert importance_correction_on(config)
    config.model.dtype, config.generation.backend = "float32", "vllm"
    assert importance_correction_on(config)
    config.train.importance_correction = False
    assert not importance_correction_on(config)


def _last_row(folder):
    return json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])


def test_correction_is_one_when_engine_and_trainer_agree_and_truncates_when_not(tmp_path):
    on = ["train.importance_correction=true", "train.loss=clip"]
    config = load_config(preset="smoke", overrides=["train.steps=1", *on])
    Trainer(config, tmp_path / "agree").run()  # the hf engine in fp32: its log-probabilities are the trainer's
    agree = _last_row(tmp_path / "agree")
    assert agree["update/skipped"] == 0.0 and agree["logprobs/engine_vs_trainer_max_abs"] < 1e-4
    assert abs(agree["update/importance_weight_mean"] - 1.0) < 1e-4
    assert agree["update/importance_truncated_fraction"] == 0.0
    # An engine that reports every sampled token at log p = -30: pi_trainer / pi_engine is huge, so C.
    scripted_trainer(tmp_path / "far", steps=1, overrides=on, token_logprob=-30.0).run()
    far = _last_row(tmp_path / "far")
    assert far["update/importance_truncated_fraction"] == 1.0
    assert far["update/importance_weight_mean"] == 2.0
    assert far["update/ratio_max_deviation"] == 0.0  # old = the trainer's own: the first pass's ratio is 1
    assert far["logprobs/engine_vs_trainer_mean_abs"] > 20


def test_a_bf16_run_records_its_precision_and_keeps_fp32_weights(tmp_path):
    config = load_config(preset="smoke", overrides=["model.dtype=bfloat16", "train.steps=2"])
    trainer = Trainer(config, tmp_path)
    summary = trainer.run()
    assert summary["final_accuracy"] is not None
    assert "dtype: bfloat16" in (tmp_path / "config.yaml").read_text()
    assert summary["dtype"] == "bfloat16" and summary["importance_correction"] is True
    assert {p.dtype for p in trainer.learner.parameters} == {torch.float32}  # master weights
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in rows[1:] if r["update/skipped"] == 0.0]
    assert trained, "the smoke preset exercises the update"
    assert all("update/importance_weight_mean" in r for r in trained)  # auto: on under bf16
    assert all(0 < r["logprobs/engine_vs_trainer_mean_abs"] < 0.1 for r in trained)


def test_auto_resolves_and_records(tmp_path, capsys):
    config = load_config(preset="smoke", overrides=["train.steps=0"])
    assert config.model.dtype == "auto"
    build_runtime(config)
    assert config.model.dtype == "float32"  # the tiny model: below the size where bf16 pays
    assert "model.dtype=auto -> float32" in capsys.readouterr().out


def test_a_resume_keeps_the_precision_its_run_resolved(tmp_path):
    """A run recorded model.dtype bfloat16 (resolved by auto on a machine with bf16 units, or set):
    resuming it with the default auto keeps bfloat16 instead of resolving again (which for the tiny
    model says float32)."""
    from resetrl.outputs import check_run_folder

    first = load_config(preset="smoke", overrides=["train.steps=1", "model.dtype=bfloat16"])
    Trainer(first, tmp_path).run()
    again = load_config(preset="smoke", overrides=["train.steps=2"])
    assert again.model.dtype == "auto"
    check_run_folder(tmp_path, again, resume=True, overwrite=False)
    assert again.model.dtype == "bfloat16"


def test_doctor_names_what_is_found_and_how_to_install_what_is_not(capsys, monkeypatch):
    from resetrl.cli import main
    from resetrl.commands import doctor

    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)  # no bwrap, no chromium on PATH
    monkeypatch.setattr(doctor, "CHROMIUM", ("chromium",))
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ["avx512_bf16"])
    monkeypatch.setattr(precision, "probe", lambda inner, out, rows=256, device="cpu": precision.Probe((rows, inner, out), 40.0, 120.0))
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"torch        {torch.__version__}" in out
    assert "CPU bf16     avx512_bf16" in out and "(3.0x): auto picks bfloat16" in out
    assert "bubblewrap   missing: apt-get install bubblewrap" in out
    assert "Chromium     missing: apt-get install chromium" in out
    for name in ("vLLM", "Ray", "SmolLM2", "transformers", "peft"):
        assert f"  {name}" in out


def test_doctor_on_a_gpu_probes_at_autos_rows_and_states_its_choice(capsys, monkeypatch):
    """On a GPU with native bf16, doctor's probe uses auto's 2048 rows (256 measured 0.9x on an H200,
    launch-bound) and says what auto does there."""
    from resetrl.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Test GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    probed = []
    monkeypatch.setattr(precision, "probe", lambda inner, out, rows=256, device="cpu":
                        probed.append((rows, device)) or precision.Probe((rows, inner, out), 40.0, 120.0))
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert probed == [(2048, "cuda")]
    assert "Test GPU, native bf16" in out and "(3.0x): auto picks bfloat16 for a model of this shape" in out


def test_sft_under_bf16_saves_the_merged_warm_up_in_fp32(tmp_path):
    """A bf16 LoRA run stores its frozen base in bf16; merging the warm-up's delta into those weights
    rounded most of it away (the quickstart's saved warm-up fell from 0.148 to 0.047 greedy accuracy).
    The merge is done in fp32: the saved weights are fp32, and the delta shows below bf16's resolution."""
    from safetensors.torch import load_file

    from resetrl.cli import main

    assert main(["sft", "--preset", "smoke", "--set", "model.dtype=bfloat16", "--set", "model.lora=true",
                 "--steps", "2", "--out", str(tmp_path / "warm")]) == 0
    weights = load_file(tmp_path / "warm" / "model.safetensors")
    assert {tensor.dtype for tensor in weights.values()} == {torch.float32}
    merged = [tensor for name, tensor in weights.items() if "q_proj" in name]  # a LoRA target
    assert merged and all((tensor != tensor.bfloat16().float()).any() for tensor in merged)


def _frozen_dtypes(model):
    return {p.dtype for p in model.parameters() if not p.requires_grad and p.is_floating_point()}


def test_an_fp32_warm_up_of_a_bf16_run_is_fp32s_then_the_base_goes_to_bf16(tmp_path):
    """warmup.dtype=float32 under model.dtype=bfloat16: the warm-up computes exactly as an fp32 run's
    does (same loss), the frozen base is stored in bf16 only after it, and a resumed run stores it
    in bf16 again (its runtime is built with the base fp32, for a warm-up it will not redo)."""
    common = ["model.lora=true", "warmup.steps=2", "train.steps=1"]

    def warmup_loss(name, *overrides):
        trainer = Trainer(load_config(preset="smoke", overrides=[*common, *overrides]), tmp_path / name)
        before = _frozen_dtypes(trainer.runtime.model)
        trainer.run()
        row = json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])
        return row["warmup/final_loss"], before, _frozen_dtypes(trainer.runtime.model)

    fp32_loss, _, _ = warmup_loss("fp32", "model.dtype=float32")
    bf16_loss, bf16_before, _ = warmup_loss("bf16", "model.dtype=bfloat16")
    mixed_loss, mixed_before, mixed_after = warmup_loss("mixed", "model.dtype=bfloat16", "warmup.dtype=float32")
    assert mixed_loss == fp32_loss and bf16_loss != fp32_loss
    assert bf16_before == {torch.bfloat16}
    assert mixed_before == {torch.float32} and mixed_after == {torch.bfloat16}
    resumed = Trainer(load_config(preset="smoke", overrides=[*common, "train.steps=2", "model.dtype=bfloat16",
                                                            "warmup.dtype=float32"]), tmp_path / "mixed")
    assert _frozen_dtypes(resumed.runtime.model) == {torch.float32}
    resumed.run(resume=True)
    assert _frozen_dtypes(resumed.runtime.model) == {torch.bfloat16}
    assert len((tmp_path / "mixed" / "metrics.jsonl").read_text().splitlines()) == 3  # steps 0, 1, 2


def test_an_fp32_warm_up_is_refused_under_fsdp():
    from resetrl.errors import ResetRLError

    with pytest.raises(ResetRLError, match="warmup.dtype=float32 .* cluster.fsdp"):
        load_config(preset="smoke", overrides=["cluster.fsdp=true", "model.dtype=bfloat16", "warmup.dtype=float32"])


def test_bf16_gives_the_lm_head_a_contiguous_input():
    """transformers slices the last position for the LM head; torch's CPU bf16 linear then copied the
    head's weight once per row (3.4 GB at 64 rows of SmolLM2). Under bf16 the head gets a contiguous copy."""
    model, _ = load_model("tiny", device="cpu")
    seen = []
    model.get_output_embeddings().register_forward_hook(lambda module, args, output: seen.append(args[0].is_contiguous()))
    ids = torch.arange(3, 19).reshape(2, 8)
    with torch.no_grad():
        model(ids, logits_to_keep=1)
        precision.store_frozen_in(model, "bfloat16")
        precision.store_frozen_in(model, "bfloat16")  # again: one hook
        with precision.compute("bfloat16", "cpu"):
            model(ids, logits_to_keep=1)
    assert seen == [False, True]  # transformers' strided slice, then the copy
    assert len(model.get_output_embeddings()._forward_pre_hooks) == 1
