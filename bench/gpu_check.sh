#!/usr/bin/env bash
# The GPU check (under 8 minutes): one SRPO step on CUDA, HF backend, a randomly initialised model of
# Qwen2.5-0.5B's shape; step time by phase and peak GPU memory. Run on a lent GPU machine from the
# repository root: bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 480 python bench/gpu_check.py --shape qwen2.5-0.5b --prompts 8 --device cuda
