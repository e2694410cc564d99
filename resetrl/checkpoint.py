"""Atomic checkpoints: weights (or the LoRA adapter), optimizer, RNG states, step and data position.

A checkpoint is written to a temporary folder and renamed into place, so a run killed mid-save
leaves the previous checkpoint intact; `latest_checkpoint` finds the newest complete one. A save that
fails (a full disk) removes its temporary folder and ends the run with a one-line error."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from resetrl.errors import ResetRLError, first_line
from resetrl.faults import kill_point

STATE_FILE = "trainer_state.json"


def save_checkpoint(run_dir: Path, step: int, model, optimizer, state: dict, keep: int = 2) -> Path:
    folder = run_dir / "checkpoints" / f"step_{step:06d}"
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _write_checkpoint(staging, step, model, optimizer, state)
    except Exception as error:  # a full disk: OSError, safetensors' SafetensorError or torch's RuntimeError
        shutil.rmtree(staging, ignore_errors=True)
        kept = [p.name for p in sorted((run_dir / "checkpoints").glob("step_??????"))]
        reason = first_line(error)
        free_mb = shutil.disk_usage(run_dir).free / 2**20  # torch's message for a full disk does not say so
        raise ResetRLError(f"cannot write the checkpoint of step {step} to {staging.parent} ({reason}; "
                           f"{free_mb:.1f} MB free there); earlier checkpoints kept: {', '.join(kept) or 'none'}") from None
    kill_point("checkpoint", step)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    for old in sorted((run_dir / "checkpoints").glob("step_??????"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _write_checkpoint(staging: Path, step: int, model, optimizer, state: dict) -> None:
    staging.mkdir(parents=True)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a shard-writing bar per checkpoint buries the step bar
    model.save_pretrained(staging / "model")  # adapter only when the model is a peft model
    torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    torch.save({"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()},
               staging / "rng.pt")
    (staging / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=2))


def latest_checkpoint(run_dir: Path) -> Path | None:
    complete = [p for p in sorted((run_dir / "checkpoints").glob("step_??????")) if (p / STATE_FILE).exists()]
    return complete[-1] if complete else None


def load_checkpoint(folder: Path, model, optimizer) -> dict:
    """Restore weights, optimizer and RNG states in place; returns the trainer state."""
    load_weights(folder, model)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=False))
    rng = torch.load(folder / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    return json.loads((folder / STATE_FILE).read_text())


def load_weights(folder: Path, model) -> None:
    """A checkpoint's weights (or LoRA adapter) into `model`, in place."""
    from safetensors.torch import load_file

    weights = folder / "model"
    if (weights / "adapter_model.safetensors").exists():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(weights / "adapter_model.safetensors"))
    else:
        files = sorted(weights.glob("*.safetensors"))
        state = {}
        for file in files:
            state.update(load_file(file))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected:
            raise RuntimeError(f"checkpoint {folder} does not match the model: unexpected {unexpected[:5]}")
