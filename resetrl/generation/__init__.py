"""Generation backends: `hf` (the project's transformers engine) and `vllm`, one registry."""

from resetrl.generation.base import BACKENDS, GenerationBackend

# Imported on first use (both import torch), so a config naming a backend is checked without them.
BACKENDS.declare("hf", "resetrl.generation.hf")
BACKENDS.declare("vllm", "resetrl.generation.vllm")  # imports vLLM itself only when one is built


def resolve_backend_name(name: str, device: str = "cpu") -> str:
    """`auto`: vllm for a model on a GPU where vLLM is installed; hf on a CPU, where the project's
    engine measured faster on the quickstart's short chains (docs/vllm.md)."""
    if name != "auto":
        return name
    from resetrl.generation import vllm

    return "vllm" if device.startswith("cuda") and vllm.vllm_available() else "hf"


def build_backend(model, tokenizer, config, dtype: str = "float32") -> GenerationBackend:
    """The backend named by `config.backend` (a `GenerationConfig`), sampling from `model` computing
    in `dtype` (the run's resolved model.dtype: float32 or bfloat16)."""
    device = str(next(model.parameters()).device)
    return BACKENDS.get(resolve_backend_name(config.backend, device)).from_config(model, tokenizer, config, dtype)
