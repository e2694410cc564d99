"""Running a grid of (method, seed) runs of the core trainer, each into its own run folder.

Every run gets the same config except `method` and `train.seed` (plus, for sweeps, a per-series
override such as `model.name`), so all methods share the steps, prompts per step, rollout budget per
prompt (rollout.group_size = layout budget = 8 trained rollouts), loss and evaluation problems.
A finished run whose config.yaml matches is reused; an interrupted one resumes from its checkpoint.
"Matches" is `--resume`'s rule: a field added to the config after the run was made, or where a run
computes (`cluster`), does not make a finished run stale (it did once, and a grid re-ran them).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path


from resetrl.config import Config, load_config
from resetrl.outputs import RunSpec, run_differences


@dataclass(frozen=True)
class ConfigSource:
    """Where every run's config starts: a file and/or a preset, then `--set` overrides."""

    config_path: str | None = None
    preset: str | None = None
    overrides: tuple[str, ...] = ()

    def config_for(self, spec: RunSpec) -> Config:
        return load_config(self.config_path, self.preset,
                           [*self.overrides, *spec.overrides, f"method={spec.method}", f"train.seed={spec.seed}"])


def method_grid(methods: list[str], seeds: list[int], arms: dict[str, tuple[str, ...]] | None = None,
                methods_of_arm: dict[str, list[str]] | None = None) -> list[RunSpec]:
    """Every method x seed, once per arm: an arm is a name and `--set` overrides shared by its runs
    (series `<method>+<arm>`); the arm named "" is the config as given (series `<method>`). An arm in
    `methods_of_arm` runs only its own methods."""
    arms, methods_of_arm = arms or {"": ()}, methods_of_arm or {}
    return [RunSpec(method, seed, f"{method}+{arm}" if arm else "", overrides)
            for arm, overrides in arms.items() for seed in seeds for method in methods_of_arm.get(arm, methods)]


def same_run(run_dir: Path, config: Config) -> bool:
    """`run_dir` holds a run of this config on this build of its model (by `--resume`'s comparison)."""
    return (run_dir / "config.yaml").exists() and not run_differences(run_dir, config)


def is_complete(run_dir: Path, config: Config) -> bool:
    """Done with this config: summary.json written and config.yaml the same run's."""
    return (run_dir / "summary.json").exists() and same_run(run_dir, config)


def run_one(config: Config, run_dir: Path, threads: int | None = None) -> float:
    """Train one run (resuming a checkpoint of the same config); returns wall seconds."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    from resetrl.api import train
    from resetrl.checkpoint import latest_checkpoint

    resume = same_run(run_dir, config) and latest_checkpoint(run_dir) is not None
    started = time.perf_counter()
    train(config, run_dir, resume=resume, overwrite=not resume)  # the grid owns its run folders
    seconds = time.perf_counter() - started
    (run_dir / "wall_seconds.txt").write_text(f"{seconds:.1f}\n")
    return seconds


def _exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Pool-worker initializer: end this worker when the grid process is gone. A killed grid (SIGTERM,
    SIGKILL) does not stop its spawned workers, and an orphan kept training into a run folder that a
    restarted grid was writing too (docs/trap.md, the sweep)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """`jobs` spawned worker processes that end when this process ends, however it ends."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_exit_with_parent,
                               initargs=(os.getpid(),))


def _run_in_worker(config_data: dict, run_dir: str, threads: int) -> float:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return run_one(Config.model_validate(config_data), Path(run_dir), threads)


def run_grid(specs: list[RunSpec], source: ConfigSource, runs_dir: Path, jobs: int = 1) -> dict[RunSpec, Path]:
    """Run every spec not already complete; `jobs` > 1 runs that many at once in worker processes,
    one torch thread each (small models on few cores gain more from parallel runs than threads)."""
    folders = {spec: runs_dir / spec.folder_name for spec in specs}
    configs = {spec: source.config_for(spec) for spec in specs}  # every config validated before any run
    todo = [spec for spec in specs if not is_complete(folders[spec], configs[spec])]
    done = len(specs) - len(todo)
    if done:
        print(f"resetrl: {done} of {len(specs)} runs already complete in {runs_dir}; reusing them")
    if jobs <= 1:
        for index, spec in enumerate(todo, start=1):
            print(f"resetrl: run {index}/{len(todo)}: {spec.folder_name}")
            run_one(configs[spec], folders[spec])
        return folders
    with worker_pool(jobs) as pool:
        futures = {spec: pool.submit(_run_in_worker, configs[spec].model_dump(), str(folders[spec]), 1) for spec in todo}
        for index, (spec, future) in enumerate(futures.items(), start=1):
            seconds = future.result()
            print(f"resetrl: run {index}/{len(todo)} done: {spec.folder_name} ({seconds:.0f} s)")
    return folders
