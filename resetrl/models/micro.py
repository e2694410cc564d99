"""Built micro models (the testbed of resetrl/micro, docs/micro.md): their names, where their folders
live and how one loads. Only names and folders: `resetrl micro build` makes them."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from resetrl.cache import cache_dir
from resetrl.errors import ResetRLError
from resetrl.models.folder import load_folder
from resetrl.prompts import INSTRUCTIONS

BUILD_INFO = "micro_build.json"

BASE_NAME = "micro"
# Localization-noise levels whose variants get a registered model name (others load by path).
REGISTERED_NOISE_LEVELS = (0.25, 0.5, 0.75, 1.0)


def variant_name(seed: int = 0, localizer_noise: float = 0.0, preset: str = BASE_NAME, tag: str = "") -> str:
    """`micro`, `micro-noisy-0.5`, `micro-seed3`, `micro-noisy-0.5-seed3`; a model built for another
    preset is named after it (`trap`, `trap-noisy-0.5`), with `tag` (what the build changed from the
    preset, e.g. `slip0.15`) after the preset's name."""
    name = preset + (f"-{tag}" if tag else "")
    if localizer_noise > 0:
        name += f"-noisy-{localizer_noise:g}"
    if seed != 0:
        name += f"-seed{seed}"
    return name


REGISTERED_NAMES = [variant_name()] + [variant_name(0, noise) for noise in REGISTERED_NOISE_LEVELS]


def micro_folder(name: str) -> Path:
    """Where a built micro variant lives: <cache>/models/<name>."""
    return cache_dir("models") / name


def save_micro(model, tokenizer, folder: Path, info: dict) -> Path:
    """A normal transformers folder plus micro_build.json (how it was built, what it measured),
    written to a staging folder and renamed, so a killed build never leaves a half model."""
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / BUILD_INFO).write_text(json.dumps(info, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def weights_sha256(name: str) -> str | None:
    """The sha256 of a built micro model's weights: tells two builds of one name apart (a rebuild
    with the same command gives other weights once the code that samples its phase-2 chains has
    changed, docs/trap.md). None for any other model: its offline package pins its weights."""
    folder = micro_folder(name) if "/" not in name else None
    weights = folder / "model.safetensors" if folder is not None else None
    if weights is None or not (folder / BUILD_INFO).exists() or not weights.exists():
        return None
    return hashlib.sha256(weights.read_bytes()).hexdigest()


def build_info(folder: Path) -> dict:
    path = folder / BUILD_INFO
    return json.loads(path.read_text()) if path.exists() else {}


def load_micro(name: str):
    """(model, tokenizer) of a built micro variant; a clear error when it was never built."""
    folder = micro_folder(name)
    if not (folder / "config.json").exists():
        hint = "resetrl micro build"
        match = re.fullmatch(r"micro(?:-noisy-([0-9.]+))?(?:-seed(\d+))?", name)
        if match and match.group(1):
            hint += f" --localizer-noise {match.group(1)}"
        if match and match.group(2):
            hint += f" --seed {match.group(2)}"
        raise ResetRLError(f"model {name!r} is not built yet (looked in {folder}); run `{hint}` (a few minutes)")
    model, tokenizer = load_folder(folder)
    if len(tokenizer(INSTRUCTIONS, add_special_tokens=False).input_ids) != 1:
        print(f"resetrl: warning: the prompt text changed since {name} was built; rebuild it with `resetrl micro build`")
    return model, tokenizer
