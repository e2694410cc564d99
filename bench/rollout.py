"""Rollout generation throughput of smollm2-135m next to this machine's matmul ceiling.

Rows are shaped like a rollout: real arith_chain training prompts (two worked examples, ~255 tokens),
8 chains per prompt (batch 1: one chain; 8: one prompt x 8; 32: four prompts x 8), sampled at
temperature 0.7 / top-p 0.95, each row exactly `--tokens` new tokens (end-of-sequence ignored).
Throughput = new tokens / wall time, prompt encoding included.

Ceiling: the fp32 matmul rate measured in this run (1024x1024, median, measured before every
generation run) divided by 2 x parameters FLOPs per new token. Variants, alternated in one process:
  before: transformers `generate`, every row carries its own copy of the prompt, full-vocab top-p;
  after:  the cached engine (prompt encoded once per prompt, preallocated KV, finished rows leave);
  vllm:   the vLLM backend (eager mode, prefix caching; left out when vLLM is not installed).

    python bench/rollout.py [--tokens 128] [--repeats 1] [--batches 1,8,32,64] [--engines before,after,vllm]
"""

from __future__ import annotations

import argparse

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch

from resetrl.generation.base import SamplingParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batches", default="1,8,32,64")
    parser.add_argument("--per-prompt", type=int, default=8, help="chains per prompt")
    parser.add_argument("--engines", default="before,after,vllm", help="variants to run, comma-separated")
    args = parser.parse_args()

    torch.manual_seed(0)
    model, tokenizer = common.load_smollm2()
    parameters = common.parameter_count(model)
    flops_per_token = 2 * parameters
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    config = model.config
    kv_bytes_per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * 4
    prompts = common.task_prompts(tokenizer, 8)
    sampling = SamplingParams(temperature=0.7, top_p=0.95)
    wanted = args.engines.split(",")
    engines = {name: backend for name, backend in (
        ("before", common.backend(model, tokenizer, "generate") if "before" in wanted else None),
        ("after", common.backend(model, tokenizer, "cached") if "after" in wanted else None),
        ("vllm", common.vllm_backend(model, tokenizer) if "vllm" in wanted else None)) if backend is not None}
    for backend in engines.values():
        backend.generate_text([prompts[0][:8]], sampling, 4)  # warm-up

    print(f"smollm2-135m: {parameters / 1e6:.1f}M parameters, {flops_per_token / 1e9:.3f} GFLOP per token, "
          f"{weight_bytes / 1e6:.0f} MB of fp32 weights read per decoding step; prompts of "
          f"{min(map(len, prompts))}-{max(map(len, prompts))} tokens, {args.tokens} new tokens per row; "
          f"{torch.get_num_threads()} threads")
    rates: dict[tuple[str, int, str], list[float]] = {}
    for _ in range(args.repeats):
        for batch in [int(b) for b in args.batches.split(",")]:
            per_prompt = min(args.per_prompt, batch)
            # Free-running rows (no thought rule, end-of-sequence ignored): the batch stays full.
            rows = [prompts[row // per_prompt] for row in range(batch)]
            for name, backend in engines.items():
                wall_gflops, cpu_gflops = common.matmul_gflops()
                bandwidth = common.read_bandwidth_gbs()
                wall, cpu, outputs = common.timed(lambda: backend.generate_text(rows, sampling, args.tokens))
                tokens = sum(map(len, outputs))
                # Bytes a decoding step must read: all weights, plus every row's keys and values
                # (mean context: prompt + half the new tokens).
                context = len(prompts[0]) + args.tokens / 2
                step_bytes = weight_bytes + batch * context * kv_bytes_per_token
                for clock, value in (("wall", tokens / wall), ("cpu", tokens / cpu),
                                     ("ceiling wall", wall_gflops * 1e9 / flops_per_token),
                                     ("ceiling cpu", cpu_gflops * 1e9 / flops_per_token),
                                     ("bandwidth bound", bandwidth * 1e9 / step_bytes * batch)):
                    rates.setdefault((name, batch, clock), []).append(value)
                print(f"  batch {batch:2d} {name:6s}: {tokens / wall:6.1f} new tokens/s wall, {tokens / cpu:6.1f} by CPU "
                      f"time ({tokens} tokens, {wall:.1f} s wall, {cpu:.1f} s CPU/thread); matmul now {wall_gflops:.0f} "
                      f"GFLOP/s wall, {cpu_gflops:.0f} by CPU time; read bandwidth {bandwidth:.1f} GB/s", flush=True)

    def rate(name, batch, clock):
        return common.median(rates[(name, batch, clock)])

    def ceiling(batch, clock):
        return common.median([value for name in engines for value in rates[(name, batch, f"ceiling {clock}")]])

    batches = sorted({batch for _, batch, _ in rates})
    for clock in ("wall", "cpu"):
        title = "wall clock" if clock == "wall" else "CPU time per thread (as on dedicated cores)"
        print(f"\n{title}\nbatch | " + " | ".join(f"{name} tok/s" for name in engines)
              + " | FLOP ceiling tok/s | " + " | ".join(f"{name}/ceiling" for name in engines))
        for batch in batches:
            bound = ceiling(batch, clock)
            print(f"{batch:5d} | " + " | ".join(f"{rate(name, batch, clock):8.1f}" for name in engines)
                  + f" | {bound:8.0f} | " + " | ".join(f"{rate(name, batch, clock) / bound:8.1%}" for name in engines))
    if "vllm" in engines and "after" in engines:
        print("\nvllm / HF cached engine, wall clock: "
              + ", ".join(f"batch {b}: {rate('vllm', b, 'wall') / rate('after', b, 'wall'):.2f}x" for b in batches))
    print("\nbound if only memory traffic counted (weights + KV read once per step at the measured read "
          "bandwidth, wall clock):")
    for batch in batches:
        bound = common.median(rates[(next(iter(engines)), batch, "bandwidth bound")])
        print(f"  batch {batch:2d}: {bound:6.1f} tokens/s; " + ", ".join(
            f"{name} = {rate(name, batch, 'wall') / bound:.0%} of it" for name in engines))
    top = 32 if 32 in batches else batches[-1]  # the target is stated at batch 32
    for name in engines:
        wall_share = rate(name, top, "wall") / ceiling(top, "wall")
        cpu_share = rate(name, top, "cpu") / ceiling(top, "cpu")
        print(f"batch {top} generation, {name}: {wall_share:.1%} (wall clock) / {cpu_share:.1%} (CPU time) of the "
              f"matmul ceiling (target >= 50%)")


if __name__ == "__main__":
    main()
