#!/usr/bin/env bash
# The GPU check (under 6 minutes): `resetrl doctor` (CUDA, bf16 and the fp32/bf16 matmul probe), then
# one SRPO step on CUDA, HF backend, a randomly initialised model of Qwen2.5-0.5B's shape, in bf16 and
# in fp32 (model.dtype); step time by phase and peak GPU memory of each. Run on a lent GPU machine
# from the repository root: bash bench/gpu_check.sh [LOG_DIR]
# Each part writes its own log under LOG_DIR as it goes (on the device tool: bash bench/gpu_check.sh
# $OUT), so a part that hangs or a call cut at its limit still leaves the parts before it readable.
# docs/performance.md, "On a GPU", has the device command (the GPU image lacks pydantic: carried wheels).
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${1:-gpu_check_logs}
mkdir -p "$logs"
export PYTHONUNBUFFERED=1
part() {  # part NAME SECONDS COMMAND...: run with a time limit, echo and keep its output
    local name=$1 seconds=$2; shift 2
    echo "== $name ($(date -u +%H:%M:%S), limit ${seconds} s)"
    timeout -k 5 "$seconds" "$@" 2>&1 | tee "$logs/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]} at $(date -u +%H:%M:%S)"
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
part doctor 45 python -m resetrl.cli doctor
for dtype in bfloat16 float32; do
  part "step-$dtype" 150 python bench/gpu_check.py --shape qwen2.5-0.5b --prompts 8 --device cuda --dtype "$dtype"
done

# The FSDP learner (cluster.fsdp, docs/scale.md): one step with 2 NCCL ranks against one rank without
# FSDP, on the tiny model. NCCL takes one GPU per rank (it refuses two ranks of one group on one
# device), so this part needs 2 GPUs; on a machine with one it says so and stops here. Not yet run on
# a GPU: the FSDP code is tested on CPU with gloo (tests/test_cluster.py).
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)
if [ "$gpus" -lt 2 ]; then
    echo "FSDP check skipped: $gpus GPU(s); 2 NCCL learner ranks need 2 GPUs"
    exit 0
fi
runs=$(mktemp -d)
step=(--preset smoke --set method=grpo --set rollout.group_size=3 --set train.prompts_per_step=5
      --set train.kl_coef=0.01 --set train.micro_batch_size=1 --set train.steps=1 --set model.device=cuda)
timeout 150 python -m resetrl.cli train "${step[@]}" --out "$runs/one"
timeout 240 torchrun --nproc-per-node 2 -m resetrl.cli train "${step[@]}" --set cluster.fsdp=true --out "$runs/fsdp"
python - "$runs" <<'PY'
import sys
from pathlib import Path
from safetensors.torch import load_file
runs = Path(sys.argv[1])
weights = [load_file(runs / run / "checkpoints/step_000001/model/model.safetensors") for run in ("one", "fsdp")]
rollouts = [(runs / run / "rollouts.jsonl").read_text() for run in ("one", "fsdp")]
print(f"FSDP, 2 NCCL ranks vs 1 rank: same rollouts {rollouts[0] == rollouts[1]}; largest weight difference "
      f"{max(float((weights[0][n] - weights[1][n]).abs().max()) for n in weights[0]):.2e} (CPU/gloo test: 5e-5)")
PY
