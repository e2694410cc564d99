"""Loading a transformers model folder (config.json, weights, tokenizer): the one loader behind every
model resetrl names, converted (GGUF), built (micro) or the user's own."""

from __future__ import annotations

from pathlib import Path

from resetrl.errors import ResetRLError, first_line

WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def load_folder(folder: Path):
    """(model, tokenizer) in float32; a tokenizer without a pad token pads with its end token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_user_folder(folder: Path):
    """A user's model folder: what is missing is named before transformers is asked to load it."""
    if not any(next(folder.glob(pattern), None) for pattern in WEIGHT_FILES):
        raise ResetRLError(f"model folder {folder} has no weights (*.safetensors or pytorch_model*.bin); "
                           "save the model there with save_pretrained")
    if not any((folder / file).exists() for file in TOKENIZER_FILES):
        raise ResetRLError(f"model folder {folder} has no tokenizer ({', '.join(TOKENIZER_FILES)}); "
                           "save the tokenizer there with save_pretrained")
    try:
        return load_folder(folder)
    except (OSError, ValueError) as error:
        raise ResetRLError(f"model folder {folder} cannot be loaded: {first_line(error)}") from None
