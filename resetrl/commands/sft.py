"""`resetrl sft`: supervised warm-up on the task's correct thought-format chains, saved as a model
folder that `model.name` can point to."""

from __future__ import annotations

import time
from pathlib import Path

from resetrl.commands import add_config_arguments, load_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser("sft", help="supervised warm-up on correct thought-format chains")
    add_config_arguments(parser)
    parser.add_argument("--steps", type=int, help="warm-up steps (default: warmup.steps, or 100)")
    parser.add_argument("--out", required=True, help="folder for the warmed-up model (transformers format)")
    parser.set_defaults(func=run)


def run(args) -> int:
    config = load_from_args(args)
    from resetrl.evaluation import evaluate
    from resetrl.runtime import build_runtime
    from resetrl.sft import supervised_warmup

    runtime = build_runtime(config, warms_up=True)
    problems = runtime.task.problems("train", config.task.train_size, config.task.seed)
    test = runtime.task.problems("test", config.eval.size or config.task.test_size, config.task.seed)
    before, _ = evaluate(runtime, test)
    steps = args.steps or config.warmup.steps or 100
    started = time.perf_counter()
    losses = supervised_warmup(runtime, problems, steps, config.warmup.batch_size, config.warmup.lr,
                               config.train.seed, config.train.micro_batch_size)
    seconds = time.perf_counter() - started
    after, _ = evaluate(runtime, test)
    # Merged and saved in fp32: under model.dtype bfloat16 the frozen base is stored in bf16, and a
    # delta merged into bf16 weights rounds away most of a short warm-up (its greedy accuracy fell from
    # 0.148 to 0.047 on the quickstart, 2026-12-04); the model loader reads fp32 anyway.
    runtime.model.float()
    model = runtime.model.merge_and_unload() if hasattr(runtime.model, "merge_and_unload") else runtime.model
    out = Path(args.out)
    model.save_pretrained(out)
    runtime.tokenizer.save_pretrained(out)
    print(f"resetrl: warm-up {steps} steps in {seconds:.0f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
          f"accuracy {before['eval/accuracy']:.3f} -> {after['eval/accuracy']:.3f}; model saved to {out}")
    return 0
