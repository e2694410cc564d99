"""Peak memory (RSS) of one training step, full fine-tuning and LoRA, before and after.

Each measurement is a fresh process: load smollm2-135m (fp32, CPU), build the trainer, run one GRPO
step (4 prompts x 4 chains of exactly `--tokens` tokens, rewarded by their share of digits so that
every chain is trained, one micro-batch of 16), report the peak resident
set size (ru_maxrss: the whole process, model loading included) and the RSS just before the step.
  before: generation with transformers `generate` (no prefix store) and the log-prob code of commit
          995c2d0 (every row carries its own copy of the prompt through the forward and backward);
  after:  the defaults (cached engine with a 1 GB prefix store; shared-context log-probs).

    python bench/memory.py [--tokens 64] [--prompts 4] [--generations 4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(variant: str, tuning: str, prompts: int, generations: int, tokens: int) -> dict:
    import resetrl.learner as learner_module
    import resetrl.trainer as trainer_module
    from resetrl.config import load_config
    from resetrl.runtime import build_runtime

    config = load_config(overrides=common.resetrl_overrides("grpo", prompts, generations, tokens,
                                                            lora=tuning == "lora") + ["task.reward=digit_share"])
    runtime = build_runtime(config)
    if variant == "before":
        common.backend_and_logprobs_before(runtime, learner_module)
    else:
        runtime.backend = common.FixedLengthBackend(runtime.model, runtime.tokenizer,
                                                    prefix_cache_mb=config.generation.prefix_cache_mb)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = trainer_module.Trainer(config, run_dir, runtime=runtime)
        rollout, peaks = trainer.rollout, {}

        def rollout_then_record(*args):
            result = rollout(*args)
            peaks["rollout"] = peak_mb()
            return result

        trainer.rollout = rollout_then_record
        before_step = rss_mb()
        values = trainer.train_step(1)
    return {"rss_before_step_mb": before_step, "peak_rss_mb": peak_mb(), "peak_after_rollout_mb": peaks["rollout"],
            "step_s": values["time/step"], "active": values["update/active_sequences"]}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.prompts, args.generations, args.tokens)))
        return

    results = {}
    for tuning in ("full", "lora"):
        for variant in ("before", "after"):
            command = [sys.executable, __file__, "--child", variant, tuning, "--tokens", str(args.tokens),
                       "--prompts", str(args.prompts), "--generations", str(args.generations)]
            done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parent)
            if done.returncode != 0:
                raise RuntimeError(f"{variant} {tuning} failed:\n{done.stderr[-3000:]}")
            record = json.loads(done.stdout.strip().splitlines()[-1])
            results[(tuning, variant)] = record
            print(f"  {tuning:4s} {variant:6s}: peak RSS {record['peak_rss_mb']:7.0f} MB (RSS before the step "
                  f"{record['rss_before_step_mb']:.0f} MB, peak by the end of the rollout "
                  f"{record['peak_after_rollout_mb']:.0f} MB; step {record['step_s']:.1f} s, "
                  f"{record['active']:.0f} trained sequences)", flush=True)

    print("\ntuning | peak RSS before (MB) | peak RSS after (MB) | after/before")
    for tuning in ("full", "lora"):
        before, after = results[(tuning, "before")]["peak_rss_mb"], results[(tuning, "after")]["peak_rss_mb"]
        print(f"{tuning:6s} | {before:20.0f} | {after:19.0f} | {after / before:12.2f}")
    full = results[("full", "after")]["peak_rss_mb"] / results[("full", "before")]["peak_rss_mb"]
    lora = results[("lora", "after")]["peak_rss_mb"] / results[("lora", "before")]["peak_rss_mb"]
    print(f"\npeak RSS of a training step, after/before: full {full:.2f}, LoRA {lora:.2f}")


if __name__ == "__main__":
    main()
