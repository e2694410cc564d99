#!/usr/bin/env bash
# The GPU check (about 4.5 minutes): `resetrl doctor` (CUDA, bf16 and the fp32/bf16 matmul probe), the
# matmul ceiling at Qwen2.5-0.5B's MLP shape, then two SRPO steps on CUDA (the second timed), HF
# backend, a randomly initialised model of Qwen2.5-0.5B's shape, in fp32 and in bf16 (model.dtype);
# step time by phase and peak GPU memory of each. Run on a lent GPU machine from the repository root:
# bash bench/gpu_check.sh [LOG_DIR]
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
# The matmul ceiling: Qwen2.5-0.5B's MLP matmul (896 x 4864) at a decoding step's rows and an update's,
# fp32 against bf16 autocast over fp32 operands (resetrl.precision.probe).
part matmul 45 python -c "
from resetrl.precision import probe
for rows in (32, 256, 2048, 8192):
    print(probe(896, 4864, rows=rows, device='cuda', seconds=0.5).describe())
"
# fp32 first, then bf16, 2 steps each, the second reported: the first step of a process loads CUDA
# kernels on first use, and the first process pays for reading torch's libraries from disk.
for dtype in float32 bfloat16; do
  part "step-$dtype" 170 python bench/gpu_check.py --shape qwen2.5-0.5b --prompts 32 --steps 2 --device cuda --dtype "$dtype"
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
