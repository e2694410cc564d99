"""How fast this CPU runs the skinny matmuls of a SmolLM2-135M decoding step, against a square one.

A decoding step at batch B multiplies B rows by every weight matrix of the model. This measures, in
one process and alternating: a square 1024x1024 fp32 matmul (the ceiling `bench/rollout.py` uses),
the seven projections of one decoder layer as the model runs them (q, k, v, o, gate, up, down),
the same layer with q/k/v and gate/up fused into two wider matmuls, and the tied LM head. It tells
how much of the ceiling the matmuls alone allow, and what fusing would buy.

    python bench/matmul_shapes.py [--batches 32,64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import _common as common  # noqa: I001  (sets OMP_WAIT_POLICY before torch is imported)
import torch
import torch.nn.functional as F

HIDDEN, INTERMEDIATE, KV_WIDTH, VOCAB, LAYERS = 576, 1536, 192, 49152, 30  # SmolLM2-135M's config
SEPARATE = [(HIDDEN, HIDDEN), (HIDDEN, KV_WIDTH), (HIDDEN, KV_WIDTH), (HIDDEN, HIDDEN),
            (HIDDEN, INTERMEDIATE), (HIDDEN, INTERMEDIATE), (INTERMEDIATE, HIDDEN)]
FUSED = [(HIDDEN, HIDDEN + 2 * KV_WIDTH), (HIDDEN, HIDDEN), (HIDDEN, 2 * INTERMEDIATE), (INTERMEDIATE, HIDDEN)]
LM_HEAD = [(HIDDEN, VOCAB)]


def layer_gflops(shapes: list[tuple[int, int]], rows: int, seconds: float = 0.5) -> float:
    """GFLOP/s by wall clock of running every (in, out) projection of `shapes` on `rows` rows."""
    weights = [torch.randn(width_out, width_in) for width_in, width_out in shapes]
    inputs = {width_in: torch.randn(rows, width_in) for width_in, _ in shapes}

    def run() -> None:
        for (width_in, _), weight in zip(shapes, weights):
            F.linear(inputs[width_in], weight)

    run()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or count < 3:
        run()
        count += 1
    return sum(2 * rows * i * o for i, o in shapes) * count / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", default="32,64")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"{torch.get_num_threads()} threads; GFLOP/s by wall clock, median of {args.repeats} alternating runs")
    for rows in [int(b) for b in args.batches.split(",")]:
        rates: dict[str, list[float]] = {"square": [], "layer": [], "fused": [], "lm_head": []}
        for _ in range(args.repeats):
            rates["square"].append(common.matmul_gflops()[0])
            rates["layer"].append(layer_gflops(SEPARATE, rows))
            rates["fused"].append(layer_gflops(FUSED, rows))
            rates["lm_head"].append(layer_gflops(LM_HEAD, rows))
        rate = {name: common.median(values) for name, values in rates.items()}
        # Share of the ceiling the matmuls alone allow: every layer + LM head at their measured rates.
        layer_flops, head_flops = sum(i * o for i, o in SEPARATE), VOCAB * HIDDEN
        model_seconds = LAYERS * layer_flops / rate["layer"] + head_flops / rate["lm_head"]
        ceiling_seconds = (LAYERS * layer_flops + head_flops) / rate["square"]
        fused_speedup, share = rate["fused"] / rate["layer"], ceiling_seconds / model_seconds
        print(f"batch {rows}: square {rate['square']:.0f}, layer {rate['layer']:.0f}, fused layer "
              f"{rate['fused']:.0f} ({fused_speedup:.2f}x), LM head {rate['lm_head']:.0f}; "
              f"matmuls alone allow {share:.0%} of the ceiling")
    # The headline, printed last: the last batch of --batches.
    print(f"fused / separate layer matmuls at batch {rows}: {fused_speedup:.2f}x; "
          f"matmul-only share of the ceiling: {share:.0%}")


if __name__ == "__main__":
    main()
