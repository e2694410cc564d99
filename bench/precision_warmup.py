"""The quickstart's supervised warm-up in each precision: final loss and greedy accuracy (seed 0).

`float32` and `bfloat16` are `model.dtype` as a run sets it; `bf16-fp32-base` computes under bf16
autocast but keeps every frozen weight fp32 (no bf16-stored LoRA base, so the residual stream stays
fp32), which tells bf16 compute apart from the bf16 storage of the base (docs/performance.md,
"Precision": the bf16 warm-up ends weaker, and this is how it was told apart). The `bf16-fp32-X`
variants compute one kind of module in fp32 (autocast off inside it, its inputs and weights fp32) and
everything else in bf16 over the fp32 base, to find the operation that costs the warm-up:
`bf16-fp32-head` the LM head, `bf16-fp32-lora` the LoRA adapters' A and B, `bf16-fp32-attention`
every self-attention block, `bf16-fp32-mlp` every MLP block (the warm-up only: each is evaluated
in plain bf16 over the fp32 base).

    python bench/precision_warmup.py [--variants float32,bfloat16,bf16-fp32-base] [--seeds 0,1,2] [--set KEY=VALUE ...]

`--seeds` sets `train.seed` (the LoRA initialisation and the warm-up's batch order): how far the
seed alone moves the same figures tells whether a precision's difference is more than that.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from unittest.mock import patch

import _common  # noqa: F401, I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch

from resetrl import runtime as runtime_module
from resetrl.config import load_config
from resetrl.evaluation import evaluate
from resetrl.sft import supervised_warmup


# The modules each bf16-fp32-X variant computes in fp32, by their names in the peft-wrapped Llama.
FP32_MODULES = {
    "head": lambda name: name.endswith("lm_head"),
    "lora": lambda name: name.endswith(("lora_A.default", "lora_B.default")),
    "attention": lambda name: name.endswith("self_attn"),
    "mlp": lambda name: name.endswith(".mlp"),
}


def compute_in_fp32(module: torch.nn.Module) -> None:
    """This module's forward with autocast off and its floating-point tensor arguments made fp32
    (`del module.forward` restores the class's own)."""
    forward = module.forward

    def fp32_forward(*args, **kwargs):
        def to_fp32(value):
            return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value
        with torch.autocast("cpu", enabled=False):
            return forward(*map(to_fp32, args), **{key: to_fp32(value) for key, value in kwargs.items()})

    module.forward = fp32_forward


def warm_up(variant: str, seed: int, overrides: list[str]) -> str:
    dtype = "float32" if variant == "float32" else "bfloat16"
    config = load_config(preset="quickstart", overrides=[f"model.dtype={dtype}", f"train.seed={seed}", *overrides])
    keep_base = variant.startswith("bf16-fp32-")  # build_runtime leaves every frozen weight as loaded: fp32
    with patch.object(runtime_module, "store_frozen_in", lambda model, dtype: None) if keep_base else nullcontext():
        runtime = runtime_module.build_runtime(config)
    chosen = []
    if variant.startswith("bf16-fp32-") and variant != "bf16-fp32-base":
        chosen = [module for name, module in runtime.model.named_modules() if FP32_MODULES[variant[10:]](name)]
        assert chosen, f"no module matched {variant}"
        for module in chosen:
            compute_in_fp32(module)
    problems = runtime.task.problems("train", config.task.train_size, config.task.seed)
    test = runtime.task.problems("test", config.task.test_size, config.task.seed)
    losses = supervised_warmup(runtime, problems, config.warmup.steps, config.warmup.batch_size, config.warmup.lr,
                               config.train.seed, config.train.micro_batch_size)
    for module in chosen:  # the evaluation in plain bf16: the hf engine's key-value cache is bf16 throughout
        del module.forward
    accuracy = evaluate(runtime, test)[0]["eval/accuracy"]
    settings = "".join(f" {override}" for override in overrides)
    return f"{variant:15s} seed {seed}{settings}: warm-up loss {losses[0]:.3f} -> {losses[-1]:.3f}; greedy accuracy {accuracy:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="float32,bfloat16,bf16-fp32-base")
    parser.add_argument("--seeds", default="0", help="comma-separated train.seed values, each variant per seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every variant (e.g. warmup.steps=12)")
    args = parser.parse_args()
    known = {"float32", "bfloat16", "bf16-fp32-base", *(f"bf16-fp32-{kind}" for kind in FP32_MODULES)}
    unknown = set(args.variants.split(",")) - known
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    for seed in map(int, args.seeds.split(",")):
        for variant in args.variants.split(","):
            print(warm_up(variant, seed, args.overrides), flush=True)


if __name__ == "__main__":
    main()
