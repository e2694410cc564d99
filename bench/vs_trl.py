"""One GRPO training step of resetrl against one step of TRL's GRPOTrainer, same work, same machine.

Both sides: SmolLM2-135M-Instruct from the resetrl cache folder, fp32 weights, compute in `--dtype`
(float32: TRL's bf16 off; bfloat16: TRL's bf16=True against resetrl's model.dtype=bfloat16, both bf16
autocast over fp32 weights), gradient checkpointing off, full fine-tuning, AdamW, the same 4 arith_chain
prompts (raw completion prompts with two worked examples, ~255 tokens), G generations per prompt of
exactly `--tokens` new tokens (TRL: min_new_tokens = max_new_tokens; resetrl: a backend that ignores
the thought stop rules and end-of-sequence), temperature 0.7, top-p 0.95, all completions generated
in one batch, one optimizer step over micro-batches of 16 completions, no KL term, PPO-clip token-mean loss on both sides (TRL's "dapo").
The reward is the share of digits in the completion (the same function on both sides): it varies
within every group, so no sample has a zero advantage and both sides train on every completion
(resetrl skips zero-advantage samples, which with the 0/1 answer reward would make it do less work).

Each measurement runs in its own process (start-up excluded: the step is timed inside), alternating
TRL and resetrl; a process runs `--steps` steps and reports the last (with more than one, the first
pays the one-time costs; on this shared 2-core machine one step per process keeps a run near 10 min).
  1. GRPO: 4 prompts x 4 generations, TRL vs resetrl.
  2. SRPO 1x4 (per prompt: 5 fresh chains, 4 trained + 1 parent, self-localization, 4 continuations
     from the reset prefix; 8 trained rollouts) vs TRL's GRPO with 8 generations per prompt.

With `--vllm`, resetrl also runs with its vLLM backend (the same fixed-length rows; its weights pushed
after the update, inside the timed step).

    python bench/vs_trl.py [--repeats 2] [--tokens 64] [--steps 1] [--comparisons grpo,srpo] [--before] [--vllm]
                           [--dtype float32|bfloat16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch

PROMPTS = 4
MICRO_BATCH = 16  # completions per forward/backward on both sides (4x8: two micro-batches, one update)
SEED = 0


def problems_and_prompts(tokenizer):
    from resetrl.tasks import create_task
    from resetrl.prompts import build_prompt

    task = create_task("arith_chain", steps=3)
    problems = task.problems("train", PROMPTS, SEED)
    return task, problems, [build_prompt(p.question, tokenizer, "raw", task.examples()) for p in problems]


def trl_step(generations: int, tokens: int, steps: int, dtype: str = "float32") -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from resetrl.models.gguf import SMOLLM2_135M, gguf_folder

    folder = gguf_folder(SMOLLM2_135M)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    _, _, prompts = problems_and_prompts(tokenizer)

    def digits(completions, **_):
        return [common.digit_share(None, c) for c in completions]

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.started)

    timer = StepTimer()
    with tempfile.TemporaryDirectory() as output_dir:
        config = GRPOConfig(
            output_dir=output_dir, use_cpu=True, bf16=dtype == "bfloat16", fp16=False, gradient_checkpointing=False,
            per_device_train_batch_size=MICRO_BATCH, gradient_accumulation_steps=PROMPTS * generations // MICRO_BATCH,
            num_generations=generations, max_completion_length=tokens,
            generation_kwargs={"min_new_tokens": tokens}, temperature=0.7, top_p=0.95, top_k=0,
            learning_rate=5e-5, weight_decay=0.01, max_grad_norm=1.0, beta=0.0, num_iterations=1,
            loss_type="dapo", max_steps=steps, logging_steps=1, save_strategy="no", report_to="none",
            disable_tqdm=True, seed=SEED, dataloader_num_workers=0,
        )
        dataset = Dataset.from_list([{"prompt": prompt} for prompt in prompts])
        trainer = GRPOTrainer(model=model, reward_funcs=digits, args=config, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[timer])
        trainer.train()
    return {"seconds": timer.seconds, "completions": PROMPTS * generations}


def resetrl_step(method: str, generations: int, tokens: int, steps: int, before: bool = False, vllm: bool = False,
                 dtype: str = "float32") -> dict:
    import resetrl.learner as learner_module
    import resetrl.trainer as trainer_module
    from resetrl.config import load_config
    from resetrl.runtime import build_runtime

    config = load_config(overrides=common.resetrl_overrides(method, PROMPTS, generations, tokens, seed=SEED,
                                                            micro_batch=MICRO_BATCH, dtype=dtype)
                         + ["task.reward=digit_share"])
    runtime = build_runtime(config)
    if before:
        common.backend_and_logprobs_before(runtime, learner_module)
    elif vllm:
        runtime.backend = common.fixed_length_vllm(runtime.model, runtime.tokenizer)
    else:
        runtime.backend = common.FixedLengthBackend(runtime.model, runtime.tokenizer,
                                                    prefix_cache_mb=config.generation.prefix_cache_mb, dtype=dtype)
    seconds = []
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = trainer_module.Trainer(config, run_dir, runtime=runtime)
        for step in range(1, steps + 1):
            calls, batches = runtime.backend.calls, getattr(runtime.backend, "batches", 0)
            started = time.perf_counter()
            values = trainer.train_step(step)
            seconds.append(time.perf_counter() - started)
    details = {key: round(values[key], 2) for key in (
        "time/fresh", "time/localize", "time/reset", "time/update", "tokens/fresh", "tokens/reset",
        "tokens/localization", "update/active_sequences")}
    details["generate_calls"] = runtime.backend.calls - calls
    details["generate_batches"] = getattr(runtime.backend, "batches", 0) - batches
    if vllm:
        details["time/weight_sync"] = round(values.get("time/weight_sync", 0.0), 2)
    return {"seconds": seconds, "details": details}


def run_child(*arguments: str) -> dict:
    """One measurement in a fresh process; its last stdout line is the JSON record."""
    command = [sys.executable, __file__, "--child", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), cwd=Path(__file__).parent)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1, help="steps per process; the last one is timed")
    parser.add_argument("--comparisons", default="grpo,srpo")
    parser.add_argument("--before", action="store_true", help="also run resetrl as at commit 995c2d0")
    parser.add_argument("--vllm", action="store_true", help="also run resetrl with its vLLM backend")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="both sides' compute precision (TRL's bf16 flag, resetrl's model.dtype)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, method, generations = args.child[0], args.child[1], int(args.child[2])
        record = (trl_step(generations, args.tokens, args.steps, args.dtype) if kind == "trl"
                  else resetrl_step(method, generations, args.tokens, args.steps, before=kind == "before",
                                    vllm=kind == "vllm", dtype=args.dtype))
        print(json.dumps(record))
        return

    known = {"grpo": ("GRPO 4x4", ("grpo", "4"), ("grpo", "4")),
             "srpo": ("SRPO 1x4 vs GRPO 4x8", ("grpo", "8"), ("srpo", "8"))}
    comparisons = [known[name] for name in args.comparisons.split(",")]
    sides = ["trl", "resetrl"] + (["before"] if args.before else []) + (["vllm"] if args.vllm else [])
    flags = ["--tokens", str(args.tokens), "--steps", str(args.steps), "--dtype", args.dtype]
    results: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.repeats):
        for name, trl_args, ours_args in comparisons:
            for side in sides:
                record = run_child(side, *(trl_args if side == "trl" else ours_args), *flags)
                results.setdefault(name, {}).setdefault(side, []).append(record["seconds"][-1])
                extra = f" {record['details']}" if "details" in record else ""
                print(f"  {name:22s} {side:7s} step {record['seconds'][-1]:6.1f} s "
                      f"(all steps: {', '.join(f'{s:.1f}' for s in record['seconds'])}){extra}", flush=True)

    print("\ncomparison             | TRL s/step | resetrl s/step | TRL / resetrl" +
          (" | resetrl before s/step | TRL / before" if args.before else ""))
    for name, times in results.items():
        trl, ours = common.median(times["trl"]), common.median(times["resetrl"])
        line = f"{name:22s} | {trl:10.1f} | {ours:14.1f} | {trl / ours:12.2f}x"
        if args.before:
            before = common.median(times["before"])
            line += f" | {before:21.1f} | {trl / before:11.2f}x"
        if args.vllm:
            on_vllm = common.median(times["vllm"])
            line += f" | vllm {on_vllm:.1f} s/step | TRL / vllm {trl / on_vllm:.2f}x"
        print(line)
    name = comparisons[0][0]
    times = results[name]
    print(f"\n{name}: resetrl step is {common.median(times['trl']) / common.median(times['resetrl']):.2f}x faster "
          f"than TRL's (target >= 2x)")
    if args.vllm:
        print(f"{name}: resetrl on vLLM is {common.median(times['trl']) / common.median(times['vllm']):.2f}x faster "
              f"than TRL's (target >= 4x)")


if __name__ == "__main__":
    main()
