"""fp32 against bf16 on this machine, side by side in one process (model.dtype, resetrl/precision.py).

1. The matmul ceiling: SmolLM2-135M's MLP matmul (576 x 1536) at 32, 64 and 2048 rows, fp32
   against bf16 weights and against bf16 autocast over fp32 weights (what a bf16 run's update does).
2. The update: forward + backward of the policy-gradient loss on `--rows` rows x `--tokens` trained
   tokens after an arith_chain prompt, as the trainer runs it (resetrl.logprobs), full fine-tuning
   and LoRA (rank 16; under bf16 its frozen base stored in bf16): trained tokens/s and the ratio.
3. Rollouts on the hf engine (and on vLLM with --vllm): `--new-tokens` new tokens per row at each
   batch of `--batches`, end-of-sequence ignored, fp32 against bf16: new tokens/s, and the achieved
   matmul rate (2 x parameters x tokens/s) as a share of the bf16 ceiling at that batch.
4. The mismatch: 32 chains sampled by the hf engine (T 1.0, the quickstart's prompts) in each
   precision, their log-probabilities against the trainer's own forward in the same precision:
   mean and largest |difference|, and the truncated importance weights min(pi_trainer / pi_engine, 2)
   (their mean and the share of tokens truncated) that `train.importance_correction` would apply.

Variants alternate within each repeat; medians are reported. The machine is shared: compare ratios.

    python bench/precision.py [--rows 8] [--tokens 130] [--repeats 3] [--batches 32,64] [--vllm]
"""

from __future__ import annotations

import argparse
import copy

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch

from resetrl.generation.base import SamplingParams
from resetrl.generation.hf import ContextRows, HFBackend
from resetrl.logprobs import collate, response_logprobs
from resetrl.models import add_lora
from resetrl.precision import compute, store_frozen_in

HIDDEN, INTERMEDIATE = 576, 1536  # SmolLM2-135M


def matmul_rates(rows: int, seconds: float = 0.3) -> dict[str, float]:
    """GFLOP/s of [rows x HIDDEN] @ [HIDDEN x INTERMEDIATE]: fp32, bf16 autocast, bf16 weights."""
    a, b = torch.randn(rows, HIDDEN), torch.randn(HIDDEN, INTERMEDIATE)
    variants = {"fp32": (a, b, None), "bf16 autocast": (a, b, torch.bfloat16),
                "bf16 weights": (a.bfloat16(), b.bfloat16(), None)}
    rates = {}
    for name, (x, w, autocast) in variants.items():
        with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else torch.autocast("cpu", enabled=False):
            wall, _, count = common.timed(lambda: _repeat(lambda: x @ w, seconds))
        rates[name] = 2 * rows * HIDDEN * INTERMEDIATE * count / wall / 1e9
    return rates


def _repeat(function, seconds: float) -> int:
    import time

    function()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or count < 3:
        function()
        count += 1
    return count


def update_rows(tokenizer, rows: int, tokens: int):
    generator = torch.Generator().manual_seed(0)
    prompt = common.task_prompts(tokenizer, 1)[0]
    responses = [torch.randint(100, 20000, (tokens,), generator=generator).tolist() for _ in range(rows)]
    return collate([prompt] * rows, responses, [0] * rows, tokenizer.pad_token_id)


def update_seconds(model, batch, dtype: str) -> float:
    def step():
        model.zero_grad(set_to_none=True)
        with compute(dtype, "cpu"):
            logprobs = response_logprobs(model, batch)
        (-(logprobs * batch.loss_mask).sum() / batch.loss_mask.sum()).backward()

    wall, _, _ = common.timed(step)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=130)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", default="32,64")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--vllm", action="store_true", help="also vLLM's rollouts (starts two engines)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: matmul, update, rollout, mismatch")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"{torch.get_num_threads()} torch threads; torch {torch.__version__}")

    ceilings: dict[int, float] = {}
    if "matmul" not in skip:
        print(f"\n## Matmul {HIDDEN}x{INTERMEDIATE}, GFLOP/s (median of {args.repeats})")
        print("| rows | fp32 | bf16 autocast | bf16 weights | bf16 weights / fp32 |\n|---|---|---|---|---|")
        for rows in sorted({32, 64, 2048} | {int(b) for b in args.batches.split(",")}):
            runs = [matmul_rates(rows) for _ in range(args.repeats)]
            rate = {name: common.median([run[name] for run in runs]) for name in runs[0]}
            ceilings[rows] = rate["bf16 weights"]
            print(f"| {rows} | {rate['fp32']:.0f} | {rate['bf16 autocast']:.0f} | {rate['bf16 weights']:.0f} | "
                  f"{rate['bf16 weights'] / rate['fp32']:.2f}x |", flush=True)

    model, tokenizer = common.load_smollm2()
    if "update" not in skip:
        batch = update_rows(tokenizer, args.rows, args.tokens)
        trained = int(batch.loss_mask.sum())
        full = copy.deepcopy(model).train()
        lora_fp32 = add_lora(copy.deepcopy(model), 16, 32, 0.0, "all-linear").train()
        lora_bf16 = add_lora(copy.deepcopy(model), 16, 32, 0.0, "all-linear").train()
        store_frozen_in(lora_bf16, "bfloat16")
        variants = {("full", "float32"): full, ("full", "bfloat16"): full,
                    ("LoRA r16", "float32"): lora_fp32, ("LoRA r16", "bfloat16"): lora_bf16}
        for (tuning, dtype), trained_model in variants.items():  # first call of each: not timed
            update_seconds(trained_model, batch, dtype)
        seconds: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
        for _ in range(args.repeats):
            for key, trained_model in variants.items():
                seconds[key].append(update_seconds(trained_model, batch, key[1]))
        print(f"\n## Update: forward + backward, {args.rows} rows x {args.tokens} trained tokens after a "
              f"{len(batch.context_ids[0])}-token prompt (median of {args.repeats})")
        print("| tuning | fp32 s | bf16 s | fp32 tokens/s | bf16 tokens/s | bf16 / fp32 |\n|---|---|---|---|---|---|")
        for tuning in ("full", "LoRA r16"):
            fp32, bf16 = (common.median(seconds[(tuning, dtype)]) for dtype in ("float32", "bfloat16"))
            print(f"| {tuning} | {fp32:.2f} | {bf16:.2f} | {trained / fp32:.0f} | {trained / bf16:.0f} | "
                  f"{fp32 / bf16:.2f}x |", flush=True)
        del full, lora_fp32, lora_bf16, variants

    if "rollout" not in skip:
        sampling = SamplingParams(temperature=0.7, top_p=0.95)
        prompts = common.task_prompts(tokenizer, 8)
        parameters = common.parameter_count(model)
        engines = {}
        for dtype in ("float32", "bfloat16"):
            engine = common.backend(model, tokenizer, "cached")
            engine.dtype = dtype
            engines[("hf", dtype)] = engine
        if args.vllm:
            from resetrl.generation.vllm import VLLMBackend

            for dtype in ("float32", "bfloat16"):
                engine = VLLMBackend(model, tokenizer, batch_size=64, kv_cache_gb=1.0, dtype=dtype)
                engine.ignore_eos = True
                engines[("vllm", dtype)] = engine
        for engine in engines.values():
            engine.generate_text([prompts[0][:8]], sampling, 4)  # warm-up
        rates: dict[tuple[str, str, int], list[float]] = {}
        for _ in range(args.repeats):
            for size in [int(b) for b in args.batches.split(",")]:
                rows = [prompts[row // 4 % len(prompts)] for row in range(size)]
                for key, engine in engines.items():
                    wall, _, outputs = common.timed(lambda: engine.generate_text(rows, sampling, args.new_tokens))
                    rates.setdefault((*key, size), []).append(sum(map(len, outputs)) / wall)
        print(f"\n## Rollouts: {args.new_tokens} new tokens per row, prompts of ~{len(prompts[0])} tokens, "
              f"new tokens/s (median of {args.repeats}); share = 2 x {parameters / 1e6:.0f}M parameters x "
              "tokens/s over the bf16-weights matmul rate at that many rows")
        print("| engine | batch | fp32 tok/s | bf16 tok/s | bf16 / fp32 | fp32 share | bf16 share |\n"
              "|---|---|---|---|---|---|---|")
        for size in [int(b) for b in args.batches.split(",")]:
            for name in dict.fromkeys(name for name, _ in engines):
                fp32, bf16 = (common.median(rates[(name, dtype, size)]) for dtype in ("float32", "bfloat16"))
                ceiling = ceilings.get(size)
                share = (lambda rate: f"{2 * parameters * rate / 1e9 / ceiling:.1%}") if ceiling else (lambda rate: "-")
                print(f"| {name} | {size} | {fp32:.0f} | {bf16:.0f} | {bf16 / fp32:.2f}x | {share(fp32)} | "
                      f"{share(bf16)} |", flush=True)

    if "mismatch" not in skip:
        mismatch(model, tokenizer)


def mismatch(model, tokenizer, rows: int = 32, new_tokens: int = 48) -> None:
    from resetrl.losses import truncated_importance_weights

    prompts = common.task_prompts(tokenizer, rows // 4, examples=False)
    print(f"\n## Engine against trainer: {rows} chains of up to {new_tokens} tokens sampled at T 1.0 by the hf "
          "engine, log-probabilities against the trainer's forward in the same precision")
    print("| precision | mean abs | max abs | importance weight mean | share truncated at 2 |\n|---|---|---|---|---|")
    for dtype in ("float32", "bfloat16"):
        engine = HFBackend(model, tokenizer, batch_size=64, dtype=dtype)
        torch.manual_seed(0)
        outputs = engine.sample_rows([ContextRows(prompt, 4, new_tokens) for prompt in prompts], SamplingParams(1.0, 1.0, 0), None)
        chains = [(prompt, ids, logprobs) for prompt, rows_of in zip(prompts, outputs) for ids, _, logprobs in rows_of]
        batch = collate([c[0] for c in chains], [c[1] for c in chains], [0] * len(chains), tokenizer.pad_token_id)
        with torch.no_grad(), compute(dtype, "cpu"):
            trainer = response_logprobs(model, batch)
        sampled = torch.zeros_like(trainer)
        for row, (_, ids, logprobs) in enumerate(chains):
            sampled[row, :len(ids)] = torch.tensor(logprobs)
        mask = batch.loss_mask.bool()
        gap = (trainer - sampled)[mask].abs()
        weights = truncated_importance_weights(trainer, sampled, 2.0, mask)[mask]
        print(f"| {dtype} | {float(gap.mean()):.2e} | {float(gap.max()):.2e} | {float(weights.mean()):.4f} | "
              f"{float((weights >= 2.0).float().mean()):.2%} |", flush=True)


if __name__ == "__main__":
    main()
