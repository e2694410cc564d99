"""What `generation.per_prompt` costs in one process: a step's rollouts batched across its prompts
(the in-process default) against one prompt at a time, as Ray rollout workers roll them (the same
samples on any number of workers: docs/scale.md).

The preset's model after its supervised warm-up, the rollout of step 1 (and more with --steps), the
two ways alternated `--repeats` times in one process; prints each way's seconds and generated tokens
per second, and the ratio last. Rollouts only: the update and evaluations are the same either way.
First it prints why the two ways differ at all: a prompt's logits alone and inside a batch.

    python bench/prompt_seeding.py [--preset quickstart] [--steps 1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import _common  # noqa: F401  (sets OMP_WAIT_POLICY before torch is imported)

from resetrl.config import load_config
from resetrl.sft import supervised_warmup
from resetrl.trainer import Trainer


def batch_invariance(runtime, problems, rows: int = 16) -> tuple[float, int]:
    """Why per-prompt draws need per-prompt batches: each prompt's last-token logits alone against
    inside a left-padded batch of `rows` prompts. Returns the largest difference and how many rows
    were bitwise equal."""
    import torch

    prompts = [runtime.prompt_ids(problem) for problem in problems[:rows]]
    width = max(len(ids) for ids in prompts)
    pad = runtime.pad_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        batched = runtime.model(input_ids=ids, attention_mask=mask).logits[:, -1]
        alone = [runtime.model(input_ids=torch.tensor([p])).logits[0, -1] for p in prompts]
    differences = [float((one - batched[row]).abs().max()) for row, one in enumerate(alone)]
    return max(differences), sum(d == 0.0 for d in differences)


def timed_rollout(trainer: Trainer, step: int, per_prompt: bool) -> tuple[float, float]:
    """Seconds and generated tokens of step `step`'s rollouts, one way."""
    trainer.config.generation.per_prompt = per_prompt
    release_memory = getattr(trainer.runtime.backend, "release_memory", None)
    if release_memory:  # neither way starts with the other's cached contexts
        release_memory()
    started = time.perf_counter()
    result = trainer.rollout(step, trainer.batch_for_step(step))
    seconds = time.perf_counter() - started
    tokens = sum(result.stats.get(f"tokens/{phase}", 0.0) for phase in ("fresh", "reset", "localization"))
    return seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quickstart")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--invariance-only", action="store_true", help="only the batch-invariance check")
    args = parser.parse_args()
    config = load_config(preset=args.preset)
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, folder)
        rt = trainer.runtime
        if config.warmup.steps:
            supervised_warmup(rt, trainer.train_problems, config.warmup.steps, config.warmup.batch_size,
                              config.warmup.lr, config.train.seed, config.train.micro_batch_size)
        largest, equal = batch_invariance(rt, trainer.batch_for_step(1) + trainer.batch_for_step(2))
        print(f"last-token logits, alone vs in a left-padded batch of 16: max difference {largest:.2e}, "
              f"{equal} of 16 rows bitwise equal", flush=True)
        if args.invariance_only:
            return
        times = {False: [], True: []}
        rates = {False: [], True: []}
        for _ in range(args.repeats):
            for per_prompt in (False, True):
                seconds = tokens = 0.0
                for step in range(1, args.steps + 1):
                    s, t = timed_rollout(trainer, step, per_prompt)
                    seconds, tokens = seconds + s, tokens + t
                times[per_prompt].append(seconds)
                rates[per_prompt].append(tokens / seconds)
                print(f"{'per prompt' if per_prompt else 'batched':10s} {seconds:7.1f} s  {tokens / seconds:6.1f} tokens/s",
                      flush=True)
    batched, alone = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.preset}, {args.steps} step(s) of {config.train.prompts_per_step} prompts: batched {batched:.1f} s, "
          f"per prompt {alone:.1f} s (median of {args.repeats}); per prompt / batched = {alone / batched:.2f}x")


if __name__ == "__main__":
    main()
