"""What a reset group costs over plain generation of the same tokens.

A reset group re-enters prompt + the parent's first e-1 thoughts and samples K continuations. Its extra
cost over generating the same number of new tokens with no prefix at all is encoding that context and
attending to it. Each variant below generates K rows x T new tokens (end-of-sequence ignored, so the
token counts are equal) and is divided by the same engine's time for K rows after a one-token context:
  before:      transformers `generate`, K copies of prompt + prefix in the batch;
  after cold:  cached engine, prompt + prefix encoded once, its cache expanded to the K rows;
  after warm:  as inside a training step, where the fresh phase already encoded the prompt: the
               prompt's keys/values come from the PrefixStore and only the prefix is encoded.
  vllm cold / vllm warm: the vLLM backend (prefix caching on), its prefix cache emptied first, or
               holding the prompts (as after the fresh phase); divided by vLLM's own no-prefix time.
Then the same for all reset groups of a step in one call (`--groups` parents x K). Medians over
alternating repeats.

    python bench/reset_cost.py [--k 4] [--tokens 128] [--repeats 3] [--groups 8] [--group-tokens 64]
"""

from __future__ import annotations

import argparse

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch

from resetrl.generation.base import ChainRequest, SamplingParams
from resetrl.tasks import create_task
from resetrl.thoughts import ChainLimits, format_chain


def reset_contexts(tokenizer, count: int) -> tuple[list[list[int]], list[list[int]]]:
    """Training prompts and the matching reset contexts: prompt + the first two thoughts of a chain."""
    task = create_task("arith_chain", steps=3)
    prompts = common.task_prompts(tokenizer, count)
    contexts = []
    for prompt, problem in zip(prompts, task.problems("train", count, 0)):
        prefix = tokenizer(format_chain(task.reference_chain(problem)[:2]), add_special_tokens=False).input_ids
        contexts.append(prompt + prefix)
    return prompts, contexts


def measure(model, tokenizer, prompts, contexts, k: int, tokens: int, repeats: int, vllm=None) -> dict[str, float]:
    """Median wall-time ratio of each variant to its engine's no-prefix baseline."""
    sampling = SamplingParams(temperature=0.7, top_p=0.95)
    start_token = [tokenizer.eos_token_id]
    no_prefix = [start_token] * (k * len(contexts))
    rows = [context for context in contexts for _ in range(k)]
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        for engine in ("generate", "cached"):
            backend = common.backend(model, tokenizer, engine, prefix_cache_mb=1024 if engine == "cached" else 0)
            times.setdefault(f"baseline {engine}", []).append(
                common.timed(lambda: backend.generate_text(no_prefix, sampling, tokens))[0])
            if engine == "generate":
                times.setdefault("before", []).append(common.timed(lambda: backend.generate_text(rows, sampling, tokens))[0])
                continue
            times.setdefault("after cold", []).append(common.timed(lambda: backend.generate_text(rows, sampling, tokens))[0])
            backend.store.clear()
            # The fresh phase of the step: the prompts are encoded (and remembered) for their own chains.
            backend.generate_chains([ChainRequest(p, 1) for p in prompts], sampling, ChainLimits(1, 1, 1))
            times.setdefault("after warm", []).append(common.timed(lambda: backend.generate_text(rows, sampling, tokens))[0])
        if vllm is not None:
            vllm.llm.reset_prefix_cache()
            times.setdefault("baseline vllm", []).append(
                common.timed(lambda: vllm.generate_text(no_prefix, sampling, tokens))[0])
            vllm.llm.reset_prefix_cache()
            times.setdefault("vllm cold", []).append(common.timed(lambda: vllm.generate_text(rows, sampling, tokens))[0])
            vllm.llm.reset_prefix_cache()
            vllm.generate_text(prompts, sampling, 1)  # the fresh phase: the prompts are in the prefix cache
            times.setdefault("vllm warm", []).append(common.timed(lambda: vllm.generate_text(rows, sampling, tokens))[0])
    baseline = {"before": "baseline generate", "after cold": "baseline cached", "after warm": "baseline cached"}
    if vllm is not None:
        baseline |= {"vllm cold": "baseline vllm", "vllm warm": "baseline vllm"}
    for name, values in times.items():
        print(f"    {name:18s} {common.median(values):6.1f} s  (runs: {', '.join(f'{v:.1f}' for v in values)})")
    return {name: common.median(times[name]) / common.median(times[base]) for name, base in baseline.items()} | {
        "warm/before": common.median(times["after warm"]) / common.median(times["before"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=4, help="continuations per reset group")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per continuation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--groups", type=int, default=8, help="reset groups in the batched step measurement (0: skip)")
    parser.add_argument("--group-tokens", type=int, default=64)
    parser.add_argument("--no-vllm", action="store_true", help="leave out the vLLM rows")
    args = parser.parse_args()

    torch.manual_seed(0)
    model, tokenizer = common.load_smollm2()
    prompts, contexts = reset_contexts(tokenizer, max(args.groups, 1))
    print(f"prompt {len(prompts[0])} tokens + reset prefix {len(contexts[0]) - len(prompts[0])} tokens; "
          f"K = {args.k} continuations x {args.tokens} new tokens")
    common.backend(model, tokenizer, "cached").generate_text([contexts[0][:8]], SamplingParams(), 2)  # warm-up
    vllm = None if args.no_vllm else common.vllm_backend(model, tokenizer)
    if vllm is not None:
        vllm.generate_text([contexts[0][:8]], SamplingParams(), 2)

    print("one reset group:")
    single = measure(model, tokenizer, prompts[:1], contexts[:1], args.k, args.tokens, args.repeats, vllm)
    if args.groups:
        print(f"all reset groups of a step in one call ({args.groups} x {args.k} rows, {args.group_tokens} new tokens):")
        batched = measure(model, tokenizer, prompts, contexts, args.k, args.group_tokens, 1, vllm)

    print("\n(warm/before: wall time of the after-warm reset call over the before one)")
    print("variant     | one group (reset / no prefix) " + ("| step batch (reset / no prefix)" if args.groups else ""))
    for name in [name for name in ("before", "after cold", "after warm", "warm/before", "vllm cold", "vllm warm")
                 if name in single]:
        print(f"{name:11s} | {single[name]:29.2f} " + (f"| {batched[name]:30.2f}" if args.groups else ""))
    print(f"\nreset group cost (after, warm) = {single['after warm']:.2f} x generating the same suffix tokens "
          f"with no prefix (target <= 1.15)")
    if vllm is not None:
        print(f"reset group cost (vllm, warm) = {single['vllm warm']:.2f} x generating the same suffix tokens "
              f"with no prefix (target <= 1.15)")


if __name__ == "__main__":
    main()
