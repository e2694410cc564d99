"""Metrics a user can plot: one JSON line per step in metrics.jsonl, and TensorBoard events."""

from __future__ import annotations

import json
from pathlib import Path


class MetricsWriter:
    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.path = run_dir / "metrics.jsonl"
        self.tensorboard = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is a dependency, but metrics must not depend on it
                print("resetrl: tensorboard not installed; writing metrics.jsonl only")

    def write(self, step: int, values: dict[str, float]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"step": step, **values}) + "\n")
        if self.tensorboard:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, step)
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard:
            self.tensorboard.close()


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Drop lines of steps after `last_step`: a killed run may have logged steps it never saved."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= last_step]
    path.write_text("".join(line + "\n" for line in kept))


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
