"""Where a command writes: checked before the work starts, so a bad `--out` fails in one line and a
run folder never mixes two runs (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel

from resetrl.config import Config
from resetrl.errors import ResetRLError

# What a training run writes into its folder (and `--overwrite` removes; nothing else is touched).
RUN_FILES = ("config.yaml", "model.json", "report.html", "metrics.jsonl", "rollouts.jsonl", "eval.json", "summary.json",
             "curves.png", "tensorboard", "wandb", "checkpoints")


@dataclass(frozen=True)
class RunSpec:
    """One run of a comparison: a method, a seed, and the series it belongs to (`label`, the method by
    default); `folder_name` is its folder under the comparison's runs/."""

    method: str
    seed: int
    label: str = ""
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @property
    def series(self) -> str:
        return self.label or self.method

    @property
    def folder_name(self) -> str:
        return f"{self.series}-seed{self.seed}"


def check_writable(path: Path, what: str) -> None:
    """`path` (a file or folder to create or replace) can be written: the nearest existing folder on
    its way is writable, and nothing in the way is a file."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if existing != path and not existing.is_dir():
        raise ResetRLError(f"{what} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise ResetRLError(f"{what} {path}: {existing} is not writable (read-only file system or no permission)")


def check_run_folder(run_dir: Path, config: Config, resume: bool, overwrite: bool) -> list[str]:
    """A run may go to `run_dir`: a writable folder that holds no other run, or holds this run's
    config when resuming (up to the EXTENDS_A_RUN fields, whose changes are returned), or any run
    when `overwrite` (which replaces it)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ResetRLError(f"--out {run_dir} is a file; a run needs a folder")
    check_writable(run_dir, "--out")
    saved = run_dir / "config.yaml"
    if overwrite:
        return []
    if not any((run_dir / name).exists() for name in RUN_FILES):
        others = sorted(path.name for path in run_dir.iterdir()) if run_dir.is_dir() else []
        if others:  # the user's own files: a run written among them would be hard to tell apart
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise ResetRLError(f"--out {run_dir} holds other files ({shown}) and no run; pick a new or empty "
                               "folder, or pass --overwrite to write the run among them (they are left alone)")
        return []
    if not resume:
        raise ResetRLError(f"{run_dir} holds another run; pass --resume to continue it or --overwrite to replace it")
    if not saved.exists():
        raise ResetRLError(f"--resume: {run_dir} has run files but no config.yaml; pass --overwrite to replace it")
    adopt_resolved(yaml.safe_load(saved.read_text()), config)
    differences = run_differences(run_dir, config)
    extended = [d for d in differences if d.split(":", 1)[0] in EXTENDS_A_RUN]
    differences = [d for d in differences if d not in extended]
    if differences:
        raise ResetRLError(f"--resume: the run in {run_dir} differs: {'; '.join(differences)} "
                           "(pass the same config, or --overwrite to start again; only "
                           f"{', '.join(EXTENDS_A_RUN)} may change on resume)")
    return extended


# Where a run computes, not what: a run may resume on another cluster, e.g. with fewer workers; and
# the CPI lab's settings, which training does not read.
NOT_COMPARED = ("cluster", "cpi")
# What `--resume` may change: how long the run goes on and how often it evaluates and checkpoints.
# The steps already taken stay as they were (no learning-rate schedule depends on train.steps).
EXTENDS_A_RUN = ("train.steps", "eval.every", "checkpoint.every", "checkpoint.keep")


def model_record(config: Config) -> dict:
    """What a run records of its model (model.json): the name and, for a built micro model, its
    weights' sha256, so a run made on an earlier build of the same name is not taken for this one."""
    from resetrl.models.micro import weights_sha256

    return {"name": config.model.name, "weights_sha256": weights_sha256(config.model.name)}


def run_differences(run_dir: Path, config: Config) -> list[str]:
    """How the run in `run_dir` differs from a run of `config`: its config fields, and its model's
    build where both sides know it (a run older than model.json is compared by config only)."""
    differences = config_differences(yaml.safe_load((run_dir / "config.yaml").read_text()), config.model_dump())
    saved = run_dir / "model.json"
    if saved.exists():
        before, now = json.loads(saved.read_text()).get("weights_sha256"), model_record(config)["weights_sha256"]
        if before and now and before != now:
            differences.append(f"model {config.model.name}: rebuilt since this run (weights sha256 "
                               f"{before[:12]} -> {now[:12]})")
    return differences


def adopt_resolved(saved: dict, config, prefix: str = "") -> None:
    """A resumed run keeps what its `auto` fields resolved to (model.dtype, generation.backend, ...):
    each field `config` leaves at "auto" takes the saved run's value, so that a resume on the same
    machine cannot switch precision or engine halfway (a probe on a busy machine could decide
    otherwise)."""
    for key, old in saved.items():
        if prefix + key in NOT_COMPARED or not hasattr(config, key):
            continue
        new = getattr(config, key)
        if isinstance(old, dict) and isinstance(new, BaseModel):
            adopt_resolved(old, new, f"{prefix}{key}.")
        elif new == "auto" and old not in (None, "auto"):
            setattr(config, key, old)


def config_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """`field: saved -> current` for each leaf that differs. A current value of "auto" matches what
    the saved run resolved it to (e.g. generation.backend); a field the saved config lacks is newer
    than the run and is not compared, nor are the NOT_COMPARED sections."""
    differences = []
    for key in sorted(saved):  # a key only `current` has is a field newer than the run
        if prefix + key in NOT_COMPARED:
            continue
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += config_differences(old, new, f"{prefix}{key}.")
        elif old != new and new != "auto":
            differences.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return differences


def clear_run_folder(run_dir: Path) -> None:
    """Remove a previous run's files (`--overwrite`); anything else in the folder stays."""
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
