"""The Python API, re-exported by `resetrl`: what the CLI does, from user code.

    config = resetrl.load_config(preset="smoke", overrides=["train.steps=2"])
    summary = resetrl.train(config, "runs/mine")           # a run folder, as `resetrl train --out`
    result = resetrl.evaluate(run="runs/mine")             # as `resetrl eval --run`
    rows = resetrl.read_rollouts("runs/mine", step=1)      # its rollouts.jsonl

A task or a reward of your own is registered by name (then `task.name=...`, `task.reward=...`);
a reward may also be passed to `train` as a function. README, "Python API", runs an example.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from resetrl.config import Config, load_config
from resetrl.errors import ResetRLError
from resetrl.scoring import REWARDS, Reward, register_reward
from resetrl.tasks.base import TASKS, Problem, Task

__all__ = ["Config", "Problem", "Reward", "Task", "evaluate", "load_config", "read_rollouts", "register_reward",
           "register_task", "train"]


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    """Decorator: `@register_task("mine") class Mine(Task): ...`, then `task.name=mine`; the class's
    keyword arguments are its `task.options`."""
    return TASKS.register(name)


def train(config: Config, out: str | Path, *, reward: str | Reward | None = None, resume: bool = False,
          overwrite: bool = False) -> dict:
    """Train into the run folder `out`, as `resetrl train --out`; returns its summary (accuracy
    before and after, the evaluation curve). `reward` sets `task.reward`: a registered name, or a
    function (problem, completion) -> float, which is registered under its `__name__` so that the
    run's config.yaml names it. The one path into training: the CLI and `resetrl compare` call it
    too."""
    from resetrl.cluster.distributed import launched_rank
    from resetrl.outputs import check_run_folder
    from resetrl.trainer import Trainer

    if reward is not None:
        config = config.model_copy(deep=True)
        config.task.reward = reward if isinstance(reward, str) else _registered(reward)
    main_rank = launched_rank() == 0  # under torchrun only rank 0 writes the run (docs/scale.md)
    if main_rank:
        check_run_folder(Path(out), config, resume, overwrite)  # before the model is loaded
    summary = Trainer(config, out).run(resume=resume, overwrite=overwrite)
    if main_rank:
        write_run_results(Path(out), summary)
    return summary


def write_run_results(run_dir: Path, summary: dict) -> None:
    """A finished run's by-products: curves.png, the HTML report (a failure is warned about and left
    as null in the summary, never raised) and summary.json, which names the report."""
    from resetrl.plots import plot_run
    from resetrl.report import write_report_or_warn

    plot_run(run_dir)
    report = write_report_or_warn(run_dir)
    summary["report"] = report.name if report else None
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))


def _registered(reward: Reward) -> str:
    name = getattr(reward, "__name__", None)
    if not callable(reward) or not name or name == "<lambda>":
        raise ResetRLError("reward: pass a named function (problem, completion) -> float, or a registered name")
    if name not in REWARDS:
        register_reward(name)(reward)
    elif REWARDS.get(name) is not reward:
        raise ResetRLError(f"reward: another function is registered as {name!r}; rename one")
    return name


def evaluate(config: Config | None = None, *, run: str | Path | None = None, overrides: list[str] = ()) -> dict:
    """Pass@1 on the test split, as `resetrl eval`: of the config's model, or of a trained run (its
    config with `overrides` on top, and its latest checkpoint). The summary (`eval/accuracy`, ...)
    with one record per problem under "records"."""
    from resetrl.evaluation import evaluate_test_split, evaluation_runtime, run_config

    if (config is None) == (run is None):
        raise ResetRLError("evaluate: give a config or a run folder (run=...), not both")
    if run is not None:
        config = run_config(Path(run), list(overrides))
    summary, records = evaluate_test_split(evaluation_runtime(config, Path(run) if run is not None else None))
    return {**summary, "records": records}


def read_rollouts(run: str | Path, step: int | None = None) -> list[dict]:
    """The rollouts a run logged (rollouts.jsonl): one dict per sample, with its step, problem id,
    kind (fresh, reset, parent, unused), group id, thoughts, answer, reward and reset step; only
    step `step`'s when given."""
    from resetrl.metrics import read_jsonl

    path = Path(run) / "rollouts.jsonl"
    if not path.exists():
        raise ResetRLError(f"{run}: no rollouts.jsonl (not a run folder, or no step has run yet)")
    rows = read_jsonl(path)
    return rows if step is None else [row for row in rows if row["step"] == step]
