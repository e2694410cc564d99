"""SRPO steps on a GPU with the HF backend and a randomly initialised model of real shape.

The GPU machine this project is sometimes lent has PyTorch, transformers and peft but no vLLM and no
model weights, so the model is built from a config (Qwen2.5-0.5B's shape: 24 layers, hidden 896,
14 heads / 2 KV heads, vocabulary 151,936) with random weights and the project's in-code tokenizer.
A random model never answers right, so every reward is 0; a KL term (coefficient 0.01, LoRA r64 as
the reference recipe) makes every sample trained, so the step runs rollouts, localization, resets,
the loss, backward and the optimizer. Prints the last step's time by phase and peak GPU memory, in the
precision `--dtype` names (model.dtype: float32, or bfloat16 autocast over fp32 adapters).

    python bench/gpu_check.py [--shape qwen2.5-0.5b|tiny] [--prompts 8] [--device cuda] [--dtype bfloat16] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from resetrl.config import load_config  # noqa: E402
from resetrl.models.tiny import tiny_corpus  # noqa: E402
from resetrl.models.tokenizer import build_tokenizer  # noqa: E402
from resetrl.trainer import Trainer  # noqa: E402

SHAPES = {  # Qwen2.5-0.5B-Instruct's config.json, and a tiny one to check the script on a CPU
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, vocab_size=1024, tie_word_embeddings=True),
}


def build_model_folder(shape: str, folder: str) -> None:
    tokenizer = build_tokenizer(tiny_corpus(), vocab_size=512)
    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    # Token ids above the tokenizer's decode to nothing; keep the model on the tokenizer's ids so that
    # chains have text (thoughts, answers) to parse.
    with torch.no_grad():
        model.get_input_embeddings().weight[len(tokenizer):] = 0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    print(f"model: {shape}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters (random weights)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto")
    parser.add_argument("--steps", type=int, default=2,
                        help="SRPO steps; the last one is reported (the first pays CUDA's kernel loading)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; run with --device cpu --shape tiny to check the script")
    with tempfile.TemporaryDirectory() as folder:
        build_model_folder(args.shape, f"{folder}/model")
        config = load_config(overrides=[
            "method=srpo", f"model.name={folder}/model", f"model.device={args.device}", f"model.dtype={args.dtype}",
            "model.lora=true",
            "model.lora_rank=64", "model.lora_alpha=64", "task.name=arith_chain", "task.options={steps: 3}",
            f"task.train_size={args.prompts}", "task.test_size=8", "format.max_thoughts=6",
            "format.max_thought_tokens=64", "format.max_total_tokens=256", "rollout.localize_max_tokens=64",
            "generation.backend=hf", f"train.steps={args.steps}", f"train.prompts_per_step={args.prompts}",
            "train.kl_coef=0.01", "train.micro_batch_size=16", "eval.size=8"])
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        Trainer(config, f"{folder}/run").run()
        total = time.perf_counter() - started
        rows = [row for row in map(json.loads, open(f"{folder}/run/metrics.jsonl")) if "time/step" in row]
    step = rows[-1]  # the last step: warm (the first loads each kernel on first use)
    phases = {key: round(value, 2) for key, value in step.items() if key.startswith("time/")}
    print(json.dumps({"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                      "dtype": config.model.dtype, "prompts": args.prompts, "reported_step": step["step"],
                      "first_step_s": round(rows[0]["time/step"], 2) if len(rows) > 1 else None,
                      "phases_s": phases, "run_s": round(total, 1),
                      "tokens": {k: step[k] for k in ("tokens/fresh", "tokens/reset", "tokens/localization")},
                      "update/skipped": step["update/skipped"], "update/active_sequences": step["update/active_sequences"],
                      "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)
                      if args.device.startswith("cuda") else None}, indent=1))


if __name__ == "__main__":
    main()
