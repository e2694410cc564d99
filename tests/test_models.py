"""Models by name or folder: the registry, its errors, the device check and LoRA wrapping."""

from __future__ import annotations

import pytest
import torch

from resetrl.cli import main
from resetrl.errors import ResetRLError
from resetrl.models import MODELS, add_lora, load_model
from tests.conftest import one_line_error


def test_registry_names_the_built_in_models():
    assert {"tiny", "smollm2-135m", "qwen2.5-coder-0.5b", "micro"} <= set(MODELS.names())


def test_tiny_loads_by_name_on_cpu_with_its_pad_token():
    model, tokenizer = load_model("tiny", device="cpu")
    assert next(model.parameters()).device.type == "cpu" and next(model.parameters()).dtype == torch.float32
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id is not None


def test_a_saved_folder_loads_by_path_with_the_same_weights(tmp_path):
    model, tokenizer = load_model("tiny", device="cpu")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_model(str(tmp_path), device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert loaded_tokenizer("1 + 2", add_special_tokens=False).input_ids == tokenizer("1 + 2", add_special_tokens=False).input_ids


def test_unknown_name_is_an_error_listing_the_registered_ones(tmp_path):
    with pytest.raises(ResetRLError) as error:
        load_model("no-such-model")
    assert "unknown model 'no-such-model'" in str(error.value) and "tiny" in str(error.value)
    with pytest.raises(ResetRLError, match="nor a local folder"):
        load_model(str(tmp_path))  # a folder, but without a transformers config.json


def test_an_unusable_device_is_a_one_line_error():
    with pytest.raises(ResetRLError, match="model.device='nonsense'"):
        load_model("tiny", device="nonsense")


def test_lora_trains_only_the_adapter():
    model, _ = load_model("tiny", device="cpu")
    wrapped = add_lora(model, rank=4, alpha=4, dropout=0.0, target_modules="all-linear")
    trainable = [name for name, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)


def test_model_folder_without_weights_or_tokenizer_is_a_one_line_error(tmp_path, tiny, capsys):
    only_config = tmp_path / "only_config"
    only_config.mkdir()
    (only_config / "config.json").write_text('{"model_type": "llama"}')
    assert main(["eval", "--preset", "smoke", "--set", f"model.name={only_config}"]) == 2
    assert "has no weights" in one_line_error(capsys)
    model, tokenizer = tiny
    no_tokenizer = tmp_path / "no_tokenizer"
    model.save_pretrained(no_tokenizer)
    assert main(["eval", "--preset", "smoke", "--set", f"model.name={no_tokenizer}"]) == 2
    assert "has no tokenizer" in one_line_error(capsys)
