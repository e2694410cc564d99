"""The training half of a step: forward + backward of the policy-gradient loss, before and after.

A GRPO-shaped micro-batch: 4 arith_chain prompts (two worked examples, ~255 tokens) x 4 responses
of `--tokens` tokens, plus (with `--reset`) 4 reset samples whose first 20 response tokens are a
shared, untrained prefix. Variants, alternated in one process:
  before:      the log-prob code at commit 995c2d0 (one left-padded forward per row: every row
               carries its own copy of the prompt);
  after:       resetrl.logprobs (each shared context encoded once, LM head on trained tokens only);
Full fine-tuning and LoRA (rank 16, all linear layers). Then bf16: `after` under
torch.autocast(cpu, bfloat16) against fp32, on the rows of one prompt (this CPU has AVX2 only, no
bf16 units: oneDNN reports no bf16 support, so bf16 matmuls are emulated).

    python bench/train_step.py [--tokens 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import copy
from contextlib import nullcontext

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch

from resetrl import logprobs as after_logprobs
from resetrl.models import add_lora

def samples(tokenizer, tokens: int, reset: bool):
    generator = torch.Generator().manual_seed(0)
    rows = []
    for prompt in common.task_prompts(tokenizer, 4):
        for _ in range(4):
            rows.append((prompt, torch.randint(100, 20000, (tokens,), generator=generator).tolist(), 0))
        if reset:
            prefix = torch.randint(100, 20000, (20,), generator=generator).tolist()
            for _ in range(4):
                rows.append((prompt, prefix + torch.randint(100, 20000, (tokens,), generator=generator).tolist(), 20))
    return rows


def loss_step(model, module, rows, pad_id, autocast: bool) -> float:
    """Forward + backward of a REINFORCE loss on `rows`; returns the loss."""
    model.zero_grad(set_to_none=True)
    batch = module.collate([p for p, _, _ in rows], [r for _, r, _ in rows], [s for _, _, s in rows], pad_id)
    advantages = torch.linspace(-1, 1, len(rows)).unsqueeze(-1)
    with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else nullcontext():
        logprobs = module.response_logprobs(model, batch)
    loss = -(advantages * logprobs * batch.loss_mask).sum() / batch.loss_mask.sum()
    loss.backward()
    return loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--reset", action="store_true", help="add 4 reset samples per prompt")
    args = parser.parse_args()

    before_logprobs = common.module_at_commit("resetrl/logprobs.py")
    base, tokenizer = common.load_smollm2()
    rows = samples(tokenizer, args.tokens, args.reset)
    print(f"{len(rows)} rows: prompts of {len(rows[0][0])} tokens, responses of {args.tokens} "
          f"(+20 prefix tokens for reset rows); one micro-batch; forward + backward")
    variants = {"before": (before_logprobs, False), "after": (after_logprobs, False)}
    results: dict[tuple[str, str], list[float]] = {}
    for tuning in ("full", "lora"):
        model = copy.deepcopy(base) if tuning == "full" else add_lora(copy.deepcopy(base), 16, 32, 0.0, "all-linear")
        model.train()
        losses = {}
        for _ in range(args.repeats):
            for name, (module, autocast) in variants.items():
                wall, cpu, loss = common.timed(lambda: loss_step(model, module, rows, tokenizer.pad_token_id, autocast))
                losses[name] = loss
                results.setdefault((tuning, name), []).append(wall)
                results.setdefault((tuning, name + " cpu"), []).append(cpu)
                print(f"  {tuning:4s} {name:10s} {wall:6.1f} s wall, {cpu:6.1f} s CPU/thread, loss {loss:.5f}", flush=True)
        del model

    print("\ntuning | variant    | s wall (median) | s CPU/thread | speed-up over before (wall, CPU)")
    for tuning in ("full", "lora"):
        before, before_cpu = common.median(results[(tuning, "before")]), common.median(results[(tuning, "before cpu")])
        for name in variants:
            wall, cpu = common.median(results[(tuning, name)]), common.median(results[(tuning, name + " cpu")])
            print(f"{tuning:6s} | {name:10s} | {wall:15.1f} | {cpu:12.1f} | {before / wall:5.2f}x, {before_cpu / cpu:5.2f}x")

    model = copy.deepcopy(base).train()
    one_prompt = rows[:4]
    bf16 = {}
    for autocast in (False, True):
        wall, cpu, _ = common.timed(lambda: loss_step(model, after_logprobs, one_prompt, tokenizer.pad_token_id, autocast))
        bf16[autocast] = cpu
        print(f"  full, one prompt x 4 rows, {'bf16 autocast' if autocast else 'fp32'}: {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU/thread", flush=True)
    print(f"bf16 autocast / fp32 (CPU time): {bf16[True] / bf16[False]:.2f}")
    full = common.median(results[("full", "before")]) / common.median(results[("full", "after")])
    print(f"\nfull fine-tuning forward+backward: after is {full:.2f}x faster than before")


if __name__ == "__main__":
    main()
