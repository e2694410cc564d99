"""Numeric precision of a run (`model.dtype`): fp32, or bf16 compute over fp32 trained weights.

bf16 here is mixed precision as verl and TRL's `bf16=True` run it: the trained weights and the
optimizer state stay fp32; every forward (the update's, the rollouts', the evaluation's, the
warm-up's) runs under bf16 autocast; with LoRA the frozen base is stored in bf16 (half the memory,
no cast per call) and the adapters stay fp32. `auto` picks bf16 where it is faster: a CUDA device
with native bf16 (not emulated) or a CPU with bf16 units (`avx512_bf16` or `amx_bf16`), where a short
probe at the model's own matmul shape measures bf16 at least `PROBE_MIN_SPEEDUP` times faster than
fp32 (models of hidden size below `MIN_HIDDEN` stay fp32).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

# bf16 must beat fp32 by this much at the probe to be chosen: a margin well above the probe's noise
# (bf16 measured 2.4-2.7x at 256-2048 rows of SmolLM2-135M's MLP shape on an avx512_bf16 core).
PROBE_MIN_SPEEDUP = 1.5
PROBE_ROWS = 256  # rows of the probe matmul: an update micro-batch's tokens, roughly
# On a GPU fewer rows are launch-bound and say nothing of bf16's units: an H200 measured bf16 at 0.9x
# fp32 at 256 rows of SmolLM2's MLP shape and 3.1x at 2048 (docs/performance.md, "On a GPU").
GPU_PROBE_ROWS = 2048
# auto keeps fp32 below this hidden width: so small a model computes little per token (bf16 saves
# little), the probe's margin there is within its noise (the tiny test model's 64-wide shape measured
# 1.0-1.6x), and bf16's rounding stopped that model's warm-up from reaching any reward.
MIN_HIDDEN = 512


@dataclass(frozen=True)
class Probe:
    """fp32 and bf16-autocast GFLOP/s of one [rows x hidden] @ [hidden x intermediate] matmul."""

    shape: tuple[int, int, int]
    fp32_gflops: float
    bf16_gflops: float

    @property
    def speedup(self) -> float:
        return self.bf16_gflops / self.fp32_gflops

    def describe(self) -> str:
        rows, inner, out = self.shape
        return (f"{rows}x{inner}x{out} matmul: fp32 {self.fp32_gflops:.0f} GFLOP/s, bf16 {self.bf16_gflops:.0f} "
                f"GFLOP/s ({self.speedup:.1f}x)")


def cpu_bf16_flags() -> list[str]:
    """The CPU's bf16 instruction sets named in /proc/cpuinfo (Linux): avx512_bf16, amx_bf16."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [flag for flag in ("avx512_bf16", "amx_bf16") if flag in flags]


def probe(inner: int, out: int, rows: int = PROBE_ROWS, device: str = "cpu", seconds: float = 0.15) -> Probe:
    """Time one matmul of the model's shape in fp32 and under bf16 autocast, alternating."""
    device_type = torch.device(device).type
    a = torch.randn(rows, inner, device=device)
    b = torch.randn(inner, out, device=device)

    def rate(context) -> float:
        with context:
            a @ b  # first call: kernel selection, not timed
            if device_type == "cuda":
                torch.cuda.synchronize()
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds or count < 3:
                a @ b
                count += 1
            if device_type == "cuda":
                torch.cuda.synchronize()
            return 2 * rows * inner * out * count / (time.perf_counter() - started) / 1e9

    fp32 = rate(nullcontext())
    bf16 = rate(torch.autocast(device_type, dtype=torch.bfloat16))
    return Probe((rows, inner, out), fp32, bf16)


def model_shape(model) -> tuple[int, int]:
    """(hidden, intermediate) of a transformers decoder: the widths of its largest matmuls."""
    config = getattr(model, "config", None)
    hidden = getattr(config, "hidden_size", None) or 512
    return hidden, getattr(config, "intermediate_size", None) or 4 * hidden


def resolve_dtype(dtype: str, model, device: str) -> tuple[str, str]:
    """`model.dtype` resolved to float32 or bfloat16, with the reason (printed and recorded)."""
    if dtype != "auto":
        return dtype, "set in the config"
    units = bf16_units(device)
    if units is None:
        return "float32", (f"{torch.cuda.get_device_name(device)} has no native bf16 (emulated bf16 is slower)"
                           if is_cuda(device) else "this CPU has no bf16 units (no avx512_bf16 or amx_bf16 flag)")
    hidden, intermediate = model_shape(model)
    if hidden < MIN_HIDDEN:
        return "float32", f"a model of hidden size {hidden} (< {MIN_HIDDEN}) gains little from bf16"
    measured = probe(hidden, intermediate, rows=probe_rows(device), device=device)
    if measured.speedup >= PROBE_MIN_SPEEDUP:
        return "bfloat16", f"{units}; probe {measured.describe()}"
    return "float32", (f"{units}, but bf16 is not {PROBE_MIN_SPEEDUP}x faster at this model's shape: "
                       f"probe {measured.describe()}")


def is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def bf16_units(device: str) -> str | None:
    """What computes bf16 natively on `device` (a GPU's name, or the CPU's flags), or None."""
    if is_cuda(device):
        # torch counts emulated bf16 (pre-Ampere GPUs) as supported unless told not to.
        return torch.cuda.get_device_name(device) if torch.cuda.is_bf16_supported(including_emulation=False) else None
    return "/".join(cpu_bf16_flags()) or None


def probe_rows(device: str) -> int:
    return GPU_PROBE_ROWS if is_cuda(device) else PROBE_ROWS


def store_frozen_in(model, dtype: str) -> None:
    """Under bf16, parameters that are not trained (a LoRA adapter's frozen base) are stored in bf16;
    trained ones stay fp32 (the optimizer's master copy), LoRA layers leave their input in bf16, and
    the LM head gets a contiguous input. Calling it again changes nothing."""
    if dtype != "bfloat16":
        return
    for parameter in model.parameters():
        if not parameter.requires_grad and parameter.is_floating_point():
            parameter.data = parameter.data.to(torch.bfloat16)
    # peft casts each LoRA layer's input to its adapter's dtype (bf16 -> fp32), which autocast then
    # casts back for the matmul: two copies per adapted layer per forward for the same numbers (the
    # outputs are bit-identical without them). Every bf16 forward runs under autocast, which casts
    # the fp32 adapters itself (docs/performance.md, "On a GPU").
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False
    head = model.get_output_embeddings()
    if head is not None and not getattr(head, "_resetrl_contiguous_input", False):
        # transformers gives the LM head a strided slice (`logits_to_keep`), and torch's CPU bf16
        # linear then copies the weight once per row ([rows x hidden x vocab]: 3.4 GB for 64 rows of
        # SmolLM2, the quickstart's peak memory); a contiguous input (a few KB) avoids it.
        head.register_forward_pre_hook(lambda module, args: (args[0].contiguous(), *args[1:]))
        head._resetrl_contiguous_input = True


def warmup_dtype(config) -> str:
    """The warm-up's precision: `warmup.dtype`, or the run's (`model.dtype`, resolved)."""
    return config.model.dtype if config.warmup.dtype == "model" else config.warmup.dtype


def compute(dtype: str, device: torch.device | str):
    """The context every forward of the run goes under: bf16 autocast, or nothing for fp32. One
    context around many forwards casts each fp32 trained weight once (autocast's weight cache)."""
    if dtype != "bfloat16":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def torch_dtype(dtype: str) -> torch.dtype:
    return getattr(torch, dtype)
