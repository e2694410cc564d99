"""resetrl_sdpa (resetrl/attention.py): CPU attention without head copies in decoding, in fp32."""

import torch

from resetrl import attention
from resetrl.generation.base import SamplingParams
from resetrl.generation.hf import ContextRows, HFBackend
from resetrl.logprobs import collate, response_logprobs
from resetrl.models import load_model
from resetrl.precision import compute


def _engine_rows(model, tokenizer, dtype="float32"):
    backend = HFBackend(model, tokenizer, batch_size=8, dtype=dtype)
    prompts = [tokenizer(text, add_special_tokens=True).input_ids for text in ("Compute 3 + 4.", "Compute 12 + 30 + 5.")]
    torch.manual_seed(0)
    return backend.sample_rows([ContextRows(prompt, 3, 12) for prompt in prompts], SamplingParams(1.0, 1.0, 0), None)


def test_cpu_models_run_it_and_fp32_is_bit_identical_to_transformers_sdpa():
    """Same tokens, engine log-probabilities, training log-probabilities and gradients as `sdpa`, on a
    model with grouped key/value heads (the tiny model: 2 query heads, 1 key/value head)."""
    model, tokenizer = load_model("tiny", device="cpu")
    assert model.config._attn_implementation == attention.NAME
    assert model.config.num_attention_heads != model.config.num_key_value_heads
    batch = collate([[5, 6, 7, 8, 9, 10]] * 2 + [[5, 6]], [[11, 12, 13], [14, 15], [16, 17, 18, 19]], [0] * 3,
                    tokenizer.pad_token_id)
    results = {}
    for name in ("sdpa", attention.NAME):
        model.set_attn_implementation(name)
        model.zero_grad()
        logprobs = response_logprobs(model, batch)
        (logprobs * batch.loss_mask).sum().backward()
        results[name] = (_engine_rows(model, tokenizer), logprobs.detach(), [p.grad.clone() for p in model.parameters()])
    (rows, logprobs, grads), (rows_ours, logprobs_ours, grads_ours) = results["sdpa"], results[attention.NAME]
    assert rows == rows_ours  # token ids, stop reasons and the engine's log-probabilities
    assert torch.equal(logprobs, logprobs_ours)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_ours))


def test_bf16_attends_in_fp32_over_an_fp32_cache_close_to_sdpa():
    model, tokenizer = load_model("tiny", device="cpu")
    ids = torch.arange(3, 19).reshape(2, 8)
    outputs = {}
    for name, cache in (("sdpa", torch.bfloat16), (attention.NAME, torch.float32)):
        model.set_attn_implementation(name)
        assert attention.cache_dtype(model, torch.bfloat16) == cache
        with torch.no_grad(), compute("bfloat16", "cpu"):
            outputs[name] = model(ids, attention_mask=torch.ones_like(ids)).logits.float()
        assert all(len(ids) > 0 for rows in _engine_rows(model, tokenizer, "bfloat16") for ids, _, _ in rows)
    assert (outputs["sdpa"] - outputs[attention.NAME]).abs().max() < 0.1  # bf16 rounding, not another model


def test_what_it_does_not_handle_goes_to_transformers_sdpa(monkeypatch):
    calls = []
    monkeypatch.setattr(attention, "sdpa_attention_forward", lambda *args, **kwargs: calls.append(kwargs) or ("delegated", None))
    query, key = torch.zeros(1, 2, 3, 4), torch.zeros(1, 1, 3, 4)
    assert attention.resetrl_sdpa(None, query, key, key, None, position_bias=torch.zeros(1, 2, 3, 3))[0] == "delegated"
    assert attention.resetrl_sdpa(None, query, key, key, None)[0].shape == (1, 3, 2, 4)  # computed here
    assert len(calls) == 1
