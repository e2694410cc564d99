"""How far a trap run's decoding (docs/trap.md) is from this machine's floors.

A trap run generates about 12,000 chains of ~84 tokens (three evaluations of 512 problems x 4 sampled
+ 512 greedy, and 8 RL steps of ~600), more than half of them for evaluation. The micro model is tiny
(0.9M parameters, 3.6 MB), so a decoding step costs little arithmetic, but every step of every row
reads that row's keys and values in every layer: 4 layers x 2 x 128 floats x 4 bytes = 4 KB per
context token. This benchmark times the sampled evaluation's shape (`--problems` x 4 rows of the
trap preset's real prompts, batch 256, every row exactly `--tokens` new tokens, end-of-sequence
ignored) on the built `trap` model and sets it next to two floors measured in the same run: the time
to read those KV bytes once at this machine's read bandwidth, and the matmul time of the same tokens
at its fp32 matmul rate. The figure printed last is the KV floor as a share of the measured time:
near 1, only fewer KV bytes or more bandwidth would decode faster; far below 1, the time goes to
per-step work (kernel launches at tiny sizes, sampling, the stop rules in Python).

    resetrl micro build --preset trap        # once
    python bench/trap_decode.py [--problems 128] [--tokens 84] [--repeats 2]
"""

from __future__ import annotations

import argparse

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch

from resetrl.config import load_config
from resetrl.generation.base import ChainRequest, SamplingParams
from resetrl.models import is_built_micro
from resetrl.runtime import build_runtime
from resetrl.thoughts import ChainLimits


def kv_bytes_read(model, prompt_lengths: list[int], samples: int, tokens: int) -> int:
    """Bytes of keys and values the decoding steps read: the step that samples new token t of a row
    attends over its prompt and its t earlier new tokens, in every layer."""
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_token = config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * 4  # fp32
    columns = sum(samples * (tokens * length + tokens * (tokens - 1) // 2) for length in prompt_lengths)
    return per_token * columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=128, help="held-out problems (the preset evaluates 512)")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=84, help="new tokens per row (a trap chain's mean: 84)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not is_built_micro("trap"):
        raise SystemExit("the trap model is not built: resetrl micro build --preset trap")

    torch.manual_seed(0)
    runtime = build_runtime(load_config(preset="trap"))
    model = runtime.model.eval()
    backend = common.FixedLengthBackend(model, runtime.tokenizer, batch_size=runtime.config.generation.batch_size,
                                        prefix_cache_mb=0)
    problems = runtime.task.problems("test", args.problems, runtime.config.task.seed)
    requests = [ChainRequest(runtime.prompt_ids(p), args.samples) for p in problems]
    limits = ChainLimits(max_thoughts=10**6, max_thought_tokens=10**6, max_total_tokens=args.tokens, room_for_thought=False)
    sampling = SamplingParams(runtime.config.eval.temperature, runtime.sampling.top_p)
    kv_bytes = kv_bytes_read(model, [len(r.context_ids) for r in requests], args.samples, args.tokens)
    new_tokens = len(requests) * args.samples * args.tokens
    flops = 2 * common.parameter_count(model) * new_tokens

    seconds, kv_floor, matmul_floor = [], [], []
    for repeat in range(args.repeats):
        bandwidth = common.read_bandwidth_gbs()
        gflops, _ = common.matmul_gflops()
        wall, _, _ = common.timed(lambda: backend.generate_chains(requests, sampling, limits))
        seconds.append(wall)
        kv_floor.append(kv_bytes / (bandwidth * 1e9))
        matmul_floor.append(flops / (gflops * 1e9))
        print(f"  repeat {repeat}: {wall:.1f} s for {new_tokens:,} new tokens; read bandwidth {bandwidth:.1f} GB/s, "
              f"matmul {gflops:.0f} GFLOP/s", flush=True)
    wall = common.median(seconds)
    print(f"\n{len(requests)} prompts x {args.samples} rows x {args.tokens} new tokens, batch {backend.batch_size}:")
    print(f"  measured:                 {wall:6.1f} s ({new_tokens / wall:,.0f} new tokens/s)")
    print(f"  KV read floor:            {common.median(kv_floor):6.1f} s ({kv_bytes / 1e9:.1f} GB of keys and values)")
    print(f"  matmul floor (weights):   {common.median(matmul_floor):6.1f} s ({flops / 1e9:.1f} GFLOP)")
    print(f"KV read floor / measured time: {common.median(kv_floor) / wall:.2f}")


if __name__ == "__main__":
    main()
