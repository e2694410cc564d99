"""Rollout workers on Ray (docs/scale.md): what they cost and what they gain on this machine.

Three trainers built from one config, stepped in turn (step 1 of each, then step 2 of each, ...):
  in-process:  rollouts in the trainer's process, the step's prompts batched together (the default);
  1 worker:    one Ray actor, prompts one at a time (cluster.rollout_workers=1 on a local cluster);
  2 workers:   two Ray actors sharing the prompts.
For each: step time, rollout wall time and tokens/s, weight-push time per step. Before that: the
local Ray cluster's start-up (ray.init), the time for the workers to start (each loads the model),
and each worker's memory (resident set). The 1- and 2-worker trainers draw the same samples; the
in-process one other samples (batched draws), so compare its tokens/s, not its seconds.

    python bench/scale.py [--preset smoke] [--prompts 8] [--steps 3] [--push-mb 64] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import ray
import torch

from resetrl.cluster.workers import RolloutWorkers
from resetrl.config import load_config
from resetrl.trainer import Trainer


def worker_memory_mb() -> float:
    """This process's resident set now (the worker's model, engine and Python)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def push_bandwidth(pool: RolloutWorkers, megabytes: int, repeats: int = 3) -> list[float]:
    """Seconds to put `megabytes` of tensors in the object store and have every worker of `pool` take
    them (deserialised in its process, as `load_weights` does before copying them into the model)."""
    weights = {f"w{i}": torch.randn(megabytes * 2**20 // 4 // 8) for i in range(8)}
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        reference = ray.put(weights)
        ray.get([w.__ray_call__.remote(lambda self, received: sum(t.numel() for t in received.values()), reference)
                 for w in pool.workers.values()])
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--prompts", type=int, default=8, help="train.prompts_per_step")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--push-mb", type=int, default=64, help="size of the synthetic weight push")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    overrides = [f"train.prompts_per_step={args.prompts}", f"train.steps={args.steps}", "cluster.start_timeout=3000",
                 *args.overrides]

    started = time.perf_counter()
    # 3 logical CPUs: the 1-worker and the 2-worker pools are up at once (on the 2 cores of this machine).
    ray.init(address="local", num_cpus=3, include_dashboard=False, logging_level="WARNING")
    print(f"ray.init (local cluster): {time.perf_counter() - started:.1f} s", flush=True)

    variants = {"in-process": 1, "1 worker": 1, "2 workers": 2}
    trainers, pools = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for name, workers in variants.items():
            trainer = Trainer(load_config(preset=args.preset, overrides=overrides + ["warmup.steps=0"]),
                              Path(folder) / name.replace(" ", "-"))
            trainer.run_dir.mkdir()
            trainers[name] = trainer
            if name != "in-process":
                config = load_config(preset=args.preset, overrides=overrides + ["warmup.steps=0", f"cluster.rollout_workers={workers}"])
                started = time.perf_counter()
                pools[name] = trainer.workers = RolloutWorkers(config)
                trainer.workers.push_weights(trainer.runtime.model)  # waits for the workers to start
                seconds = time.perf_counter() - started
                memory = ray.get([w.__ray_call__.remote(lambda self: worker_memory_mb())
                                  for w in trainer.workers.workers.values()])
                print(f"{name}: started in {seconds:.1f} s (model loaded, first weights pushed); resident "
                      f"memory per worker {', '.join(f'{m:.0f}' for m in memory)} MB", flush=True)
        rows: dict[str, list[dict]] = {name: [] for name in variants}
        for step in range(1, args.steps + 1):
            for name, trainer in trainers.items():
                values = trainer.train_step(step)
                rows[name].append(values)
                print(f"  step {step} {name:10s}: step {values['time/step']:.2f} s, rollout "
                      f"{values['time/fresh'] + values['time/localize'] + values['time/reset']:.2f} s, "
                      f"{values['throughput/tokens_per_s']:.0f} tokens/s, push "
                      f"{values.get('time/weight_push', 0.0) * 1000:.0f} ms", flush=True)
        push_seconds = push_bandwidth(pools["2 workers"], args.push_mb)
        for pool in pools.values():
            pool.close()
    ray.shutdown()

    print(f"\nmedians over {args.steps} steps ({args.preset} preset, {args.prompts} prompts per step):")
    print("variant    | step s | rollout s | tokens/s | weight push ms | tokens per step")
    for name, values in rows.items():
        rollout = [v["time/fresh"] + v["time/localize"] + v["time/reset"] for v in values]
        tokens = [v["tokens/fresh"] + v["tokens/reset"] + v["tokens/localization"] for v in values]
        print(f"{name:10s} | {common.median([v['time/step'] for v in values]):6.2f} | "
              f"{common.median(rollout):9.2f} | {common.median([v['throughput/tokens_per_s'] for v in values]):8.0f} | "
              f"{common.median([v.get('time/weight_push', 0.0) for v in values]) * 1000:14.0f} | "
              f"{common.median(tokens):.0f}")
    print(f"\nweight push of {args.push_mb} MB (as {args.push_mb // 4}M fp32 weights) to 2 workers through Ray's "
          f"object store: {', '.join(f'{s:.2f}' for s in push_seconds)} s; median "
          f"{args.push_mb / common.median(push_seconds):.0f} MB/s")


if __name__ == "__main__":
    main()
