"""The quickstart's supervised warm-up in each precision: final loss and greedy accuracy (seed 0).

`float32` and `bfloat16` are `model.dtype` as a run sets it; `bf16-fp32-base` computes under bf16
autocast but keeps every frozen weight fp32 (no bf16-stored LoRA base, so the residual stream stays
fp32), which tells bf16 compute apart from the bf16 storage of the base (docs/performance.md,
"Precision": the bf16 warm-up ends weaker, and this is how it was told apart).

    python bench/precision_warmup.py [--variants float32,bfloat16,bf16-fp32-base]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from unittest.mock import patch

import _common  # noqa: F401  (sets OMP_WAIT_POLICY before torch is imported)

from resetrl import runtime as runtime_module
from resetrl.config import load_config
from resetrl.evaluation import evaluate
from resetrl.sft import supervised_warmup


def warm_up(variant: str) -> str:
    dtype = "float32" if variant == "float32" else "bfloat16"
    config = load_config(preset="quickstart", overrides=[f"model.dtype={dtype}"])
    keep_base = variant == "bf16-fp32-base"  # build_runtime leaves every frozen weight as loaded: fp32
    with patch.object(runtime_module, "store_frozen_in", lambda model, dtype: None) if keep_base else nullcontext():
        runtime = runtime_module.build_runtime(config)
    problems = runtime.task.problems("train", config.task.train_size, config.task.seed)
    test = runtime.task.problems("test", config.task.test_size, config.task.seed)
    losses = supervised_warmup(runtime, problems, config.warmup.steps, config.warmup.batch_size, config.warmup.lr,
                               config.train.seed, config.train.micro_batch_size)
    accuracy = evaluate(runtime, test)[0]["eval/accuracy"]
    return f"{variant:15s} warm-up loss {losses[0]:.3f} -> {losses[-1]:.3f}; greedy accuracy {accuracy:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="float32,bfloat16,bf16-fp32-base")
    for variant in parser.parse_args().variants.split(","):
        print(warm_up(variant), flush=True)


if __name__ == "__main__":
    main()
