"""Metrics a user can plot: one JSON line per step in metrics.jsonl, TensorBoard events and, where
`logging.wandb` is on, a Weights & Biases run."""

from __future__ import annotations

import json
import os
from pathlib import Path

from resetrl.errors import ResetRLError
from resetrl.faults import kill_point


class MetricsWriter:
    def __init__(self, run_dir: Path, logging=None, run_config: dict | None = None, purge_step: int | None = None):
        """`logging`: the config's LoggingConfig (None: TensorBoard only); `run_config` goes to W&B.
        `purge_step`: on resume, the first step not in the checkpoint; TensorBoard then ignores
        events of that step and later that the killed run had written, so no step shows twice."""
        self.path = run_dir / "metrics.jsonl"
        self.tensorboard = None
        self.wandb = start_wandb(run_dir, logging, run_config) if logging is not None and logging.wandb else None
        if logging is None or logging.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)
            except ImportError:  # tensorboard is a dependency, but metrics must not depend on it
                print("resetrl: tensorboard not installed; writing metrics.jsonl only")

    def write(self, step: int, values: dict[str, float]) -> None:
        line = json.dumps({"step": step, **values}) + "\n"
        with open(self.path, "a") as handle:
            handle.write(line[:len(line) // 2])
            handle.flush()
            kill_point("metrics", step)  # a kill here leaves a torn last line, which resume drops
            handle.write(line[len(line) // 2:])
        scalars = {key: value for key, value in values.items() if isinstance(value, (int, float))}
        if self.tensorboard:
            for key, value in scalars.items():
                self.tensorboard.add_scalar(key, value, step)
            self.tensorboard.flush()
        if self.wandb:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        if self.tensorboard:
            self.tensorboard.close()
        if self.wandb:
            self.wandb.finish()


def add_counts(values: dict[str, float], counts: dict[str, float]) -> None:
    """Add counters into a step's metrics: a key already there (from another worker or stage) sums."""
    for key, value in counts.items():
        values[key] = values.get(key, 0.0) + value


def start_wandb(run_dir: Path, logging, run_config: dict | None):
    """A W&B run writing under run_dir/wandb; offline unless asked otherwise, so it needs no network."""
    import wandb  # an extra; logging.wandb checks at config load that it is installed

    mode = logging.wandb_mode or os.environ.get("WANDB_MODE") or "offline"
    return wandb.init(project=logging.wandb_project, name=run_dir.name, dir=str(run_dir), mode=mode,
                      config=run_config or {})


def truncate_jsonl(path: Path, last_step: int) -> int:
    """Drop lines of steps after `last_step` (a killed run may have logged steps it never saved) and
    lines that are not JSON (a write cut short by the kill); returns how many of the latter."""
    if not path.exists():
        return 0
    kept, torn = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            torn += 1
            continue
        if row.get("step", 0) <= last_step:
            kept.append(line)
    path.write_text("".join(line + "\n" for line in kept))
    return torn


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a run's JSON-lines file. An unfinished last line (a run still writing it) is
    skipped; any other line that is not JSON is an error naming the file and line."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):  # no newline after it yet: being written
                continue
            raise ResetRLError(f"{path}:{number}: not a JSON line") from None
    return rows
