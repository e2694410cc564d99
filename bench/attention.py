"""CPU attention: transformers' `sdpa` against resetrl's (`resetrl/attention.py`), side by side in one process.

1. One decoding step's attention at SmolLM2-135M's heads (9 query, 3 key/value, head size 64), `--rows`
   rows over `--cached` cached positions with a padding mask: the head copies transformers makes
   (`repeat_kv`) against `enable_gqa`, in fp32 and bf16, and bf16 queries over an fp32 cache.
2. Rollouts on the HF engine: SmolLM2-135M with a LoRA r16 adapter (the quickstart's), `--rows` rows x
   `--new-tokens` new tokens after ~300-token prompts, in fp32 and bf16 (the frozen base stored in
   bf16 under bf16), with each attention: new tokens/s and the ratio.

Variants alternate within each repeat; medians are reported. The machine may be shared: compare ratios.

    python bench/attention.py [--rows 32] [--cached 330] [--new-tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import time

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch
import torch.nn.functional as F

from resetrl.attention import NAME
from resetrl.generation.base import SamplingParams
from resetrl.models import add_lora
from resetrl.precision import store_frozen_in

QUERY_HEADS, KV_HEADS, HEAD_DIM = 9, 3, 64  # SmolLM2-135M


def step_ms(function, repeats: int = 30) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return common.median(times) * 1000


def decoding_step(rows: int, cached: int) -> dict[str, float]:
    """Milliseconds of one layer's attention for one new token per row."""
    mask = torch.ones(rows, 1, 1, cached, dtype=torch.bool)
    mask[: rows // 8, ..., :10] = False  # some left padding, as a batch of prompts has
    groups = QUERY_HEADS // KV_HEADS

    def copies(x):  # transformers' repeat_kv
        return x[:, :, None].expand(rows, KV_HEADS, groups, cached, HEAD_DIM).reshape(rows, QUERY_HEADS, cached, HEAD_DIM)

    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        q = torch.randn(rows, QUERY_HEADS, 1, HEAD_DIM, dtype=dtype)
        k, v = (torch.randn(rows, KV_HEADS, cached, HEAD_DIM, dtype=dtype) for _ in range(2))
        name = "fp32" if dtype == torch.float32 else "bf16"
        times[f"{name}, head copies (sdpa)"] = step_ms(lambda: F.scaled_dot_product_attention(q, copies(k), copies(v), attn_mask=mask))
        times[f"{name}, enable_gqa"] = step_ms(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True))
    q = torch.randn(rows, QUERY_HEADS, 1, HEAD_DIM, dtype=torch.bfloat16)
    k, v = (torch.randn(rows, KV_HEADS, cached, HEAD_DIM) for _ in range(2))
    times["bf16 queries, fp32 cache, enable_gqa (resetrl_sdpa)"] = step_ms(
        lambda: F.scaled_dot_product_attention(q.float(), k, v, attn_mask=mask, enable_gqa=True).bfloat16())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--cached", type=int, default=330)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} torch threads; torch {torch.__version__}")

    print(f"\n## One decoding step's attention: {args.rows} rows x {args.cached} cached positions, ms (median of 30)")
    print("| variant | ms |\n|---|---|")
    for name, ms in decoding_step(args.rows, args.cached).items():
        print(f"| {name} | {ms:.2f} |", flush=True)

    model, tokenizer = common.load_smollm2()
    engines = {}
    for dtype in ("float32", "bfloat16"):
        adapted = add_lora(copy.deepcopy(model), 16, 32, 0.0, None)
        store_frozen_in(adapted, dtype)
        for attention in ("sdpa", NAME):
            variant = adapted if attention == NAME else copy.deepcopy(adapted)
            variant.set_attn_implementation(attention)
            engine = common.backend(variant, tokenizer, "cached")
            engine.dtype = dtype
            engines[(dtype, attention)] = engine
    sampling = SamplingParams(temperature=1.0, top_p=0.95)
    prompts = common.task_prompts(tokenizer, 8)
    rows = [prompts[row // 4 % len(prompts)] for row in range(args.rows)]
    for engine in engines.values():
        engine.generate_text(rows[:4], sampling, 4)  # first call: not timed
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in engines}
    for _ in range(args.repeats):
        for key, engine in engines.items():
            wall, _, outputs = common.timed(lambda: engine.generate_text(rows, sampling, args.new_tokens))
            rates[key].append(sum(map(len, outputs)) / wall)
    print(f"\n## HF engine rollouts, LoRA r16: {args.rows} rows x {args.new_tokens} new tokens after ~{len(prompts[0])}-token "
          f"prompts, new tokens/s (median of {args.repeats})")
    print("| precision | sdpa | resetrl_sdpa | resetrl_sdpa / sdpa |\n|---|---|---|---|")
    for dtype in ("float32", "bfloat16"):
        before, after = (common.median(rates[(dtype, attention)]) for attention in ("sdpa", NAME))
        print(f"| {dtype} | {before:.0f} | {after:.0f} | {after / before:.2f}x |", flush=True)
    fp32, bf16 = (common.median(rates[(dtype, NAME)]) for dtype in ("float32", "bfloat16"))
    print(f"\nbf16 / fp32 with resetrl_sdpa: {bf16 / fp32:.2f}x")


if __name__ == "__main__":
    main()
