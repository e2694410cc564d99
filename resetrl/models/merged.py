"""The weights an inference engine needs: the base model's state dict in transformers names, with a
LoRA adapter merged in (W + B A * alpha / r) or left out.

An engine that keeps its own copy of the weights (vLLM) gets all of them at every push: a push that
leaves out part of a fused weight (q without k and v, gate without up) is silently wrong there
(docs/vllm.md), so there is no partial variant here.
"""

from __future__ import annotations

import torch


def base_model(model):
    """The transformers model under a peft wrapper (the model itself when there is none)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def has_lora(model) -> bool:
    return hasattr(model, "peft_config")


@torch.no_grad()
def merged_state_dict(model, merge_lora: bool = True, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of the base model under its transformers name (`model.layers.0.self_attn.q_proj.weight`),
    LoRA deltas added when `merge_lora` (in fp32 when the weights are), converted to `dtype` when given
    (the engine's: a bf16 engine is sent bf16 tensors, half the bytes), never modifying the model."""
    base = base_model(model)
    deltas: dict[str, torch.Tensor] = {}
    if merge_lora and has_lora(model):
        from peft.tuners.lora import LoraLayer

        for name, module in base.named_modules():
            if isinstance(module, LoraLayer) and not module.merged:
                for adapter in module.active_adapters:
                    if adapter in module.lora_A:
                        delta = module.get_delta_weight(adapter)
                        key = f"{name}.weight"
                        deltas[key] = deltas[key] + delta if key in deltas else delta
    state = {}
    for key, tensor in base.state_dict().items():
        if ".lora_" in key:
            continue
        key = key.replace(".base_layer.", ".")
        if key in deltas:  # a bf16 frozen base gets its fp32 delta added in fp32
            tensor = tensor.float() + deltas[key].float() if dtype is not None else tensor + deltas[key].to(tensor.dtype)
        state[key] = tensor.detach().to(dtype) if dtype is not None else tensor.detach()
    return state
