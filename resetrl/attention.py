"""Attention on a CPU: grouped-query heads without copies, computed in fp32.

transformers' `sdpa` attention copies each key/value head once per query head it serves (`repeat_kv`)
whenever there is an attention mask, which a padded batch always has, and under bf16 autocast it runs
the CPU's bf16 attention kernel. On this project's CPU (AMD EPYC with avx512_bf16, torch 2.13, one
thread) both cost more than the attention itself: one decoding step of SmolLM2-135M's attention (32
rows, 330 cached positions, 9 query and 3 key/value heads) took 26.6 ms in fp32 with the copies and
1.43 ms with `enable_gqa` (the same numbers), and in bf16 13.2 ms with the copies, 10.6 ms without
and 1.34 ms with its keys and values in fp32 (`python bench/attention.py`). So on a CPU, models run `resetrl_sdpa`: torch's SDPA
with `enable_gqa` on fp32 queries, keys and values (the HF engine keeps its cache in fp32), the output
cast back to the model's compute dtype. Other devices, and attention with extras this does not handle
(a position bias, sink logits, a paged cache), take transformers' own `sdpa`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "resetrl_sdpa"
EXTRAS = ("position_bias", "s_aux", "softcap")  # what only transformers' sdpa handles (with a paged cache)


def resetrl_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                 is_causal: bool | None = None, **kwargs):
    """[batch, heads, length, head_dim] in, [batch, length, heads, head_dim] out, as transformers'."""
    if (query.device.type != "cpu" or any(kwargs.get(name) is not None for name in EXTRAS)
            or type(kwargs.get("cache")).__name__ == "PagedAttentionCache"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    causal = query.shape[2] > 1 and attention_mask is None and causal
    if causal and key.shape[2] > query.shape[2]:  # a prefill of an empty preallocated cache (as transformers')
        key, value = key[:, :, :query.shape[2]], value[:, :, :query.shape[2]]
    if attention_mask is not None and attention_mask.is_floating_point():
        attention_mask = attention_mask.float()
    grouped = query.shape[1] != key.shape[1]
    if grouped and attention_mask is not None and (query.shape[2] > 1 or torch.is_grad_enabled()):
        # Masked encoding and training copy the heads, as transformers does (the copies cost little
        # beside attention over many queries, and enable_gqa's backward sums the key/value gradients
        # in another order), so that fp32 stays bit-identical to `sdpa`'s; only a decoding step skips them.
        key = repeat_kv(key, query.shape[1] // key.shape[1])
        value = repeat_kv(value, query.shape[1] // value.shape[1])
        grouped = False
    with torch.autocast("cpu", enabled=False):
        output = F.scaled_dot_product_attention(query.float(), key.float(), value.float(), attn_mask=attention_mask,
                                                dropout_p=dropout, scale=scaling, is_causal=causal, enable_gqa=grouped)
    return output.to(query.dtype).transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, resetrl_sdpa)
AttentionMaskInterface.register(NAME, sdpa_mask)


def use_cpu_attention(model) -> None:
    """A model on the CPU that runs transformers' `sdpa` runs `resetrl_sdpa` instead."""
    config = getattr(model, "config", None)
    if next(model.parameters()).device.type == "cpu" and getattr(config, "_attn_implementation", None) == "sdpa":
        model.set_attn_implementation(NAME)


def cache_dtype(model, compute: torch.dtype) -> torch.dtype:
    """The KV cache's dtype for a model computing in `compute`: fp32 where `resetrl_sdpa` attends (it
    reads keys and values in fp32; a bf16 cache would be cast whole at every step), else `compute`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return torch.float32 if getattr(base.config, "_attn_implementation", None) == NAME else compute
