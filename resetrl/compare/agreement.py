"""Batch-gradient agreement: how much of a method's step gradient is signal, measured at fixed weights.

For each method, the trainer's own rollout and loss give the gradient g_i of `batches` independent
batches (the training stream's steps 1..n: other prompts and other samples each time) at the
model's weights, with no update in between. The agreement is

    mean over pairs i < j of g_i . g_j  /  mean over i of |g_i|^2  =  |E g|^2 / E |g|^2 (estimated),

1 for a noiseless gradient and 0 for pure noise; it does not change when a method's gradient is
scaled, so it compares directions, not step sizes (docs/trap.md, prediction P0 of the phrased trap
chain: masking the prefix should raise it where the prefix carries reward-irrelevant entropy).

    python -m resetrl.compare.agreement --preset trap-phrased8 --methods grpo,oracle,grpo_mask \\
        --batches 16 --out runs/agreement-phrased8.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from resetrl.advantages import assign_advantages
from resetrl.config import Config, load_config
from resetrl.errors import ResetRLError
from resetrl.methods import METHODS


def agreement(gradients: list[torch.Tensor]) -> float:
    """Mean pairwise dot product over the mean squared norm (float64)."""
    if len(gradients) < 2:
        raise ResetRLError("batch-gradient agreement needs at least 2 batches")
    stacked = torch.stack([g.double() for g in gradients])
    gram = stacked @ stacked.T
    n = len(gradients)
    pairs = (gram.sum() - gram.diagonal().sum()) / (n * (n - 1))
    squared = gram.diagonal().mean()
    return float(pairs / squared) if squared > 0 else float("nan")  # nan: no batch carried any signal


def batch_gradients(config: Config, batches: int, run_dir: Path, runtime=None) -> tuple[list[torch.Tensor], list[dict]]:
    """The full-batch gradient of each of steps 1..`batches` at the config's model weights (the
    trainer's rollout, advantages and loss; learning rate 0 and no clipping, so nothing moves), and
    each batch's rollout figures. `runtime`: the trainer's (default: built from `config`)."""
    from resetrl.trainer import Trainer

    trainer = Trainer(config.model_copy(update={"train": config.train.model_copy(
        update={"grad_clip": float("inf"), "mini_batch_prompts": None, "updates_per_rollout": 1})}), run_dir, runtime)
    for group in trainer.learner.optimizer.param_groups:
        group["lr"] = 0.0  # the optimizer steps, the weights stay (no weight decay at lr 0 either)
    before = torch.cat([p.detach().flatten() for p in trainer.learner.parameters]).clone()
    advantage = METHODS.get(config.method).advantage(config.train)
    gradients, figures = [], []
    for step in range(1, batches + 1):
        result = trainer.rollout(step, trainer.batch_for_step(step))
        assign_advantages(result.groups, advantage)
        trainer.learner.optimizer.zero_grad(set_to_none=True)  # a batch with no signal leaves no gradient
        values = trainer.learner.update([s for g in result.groups for s in g.samples], step)
        gradients.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().flatten()
                                    for p in trainer.learner.parameters]).clone())
        figures.append({"reward": result.stats["reward/all_trained"], "active_sequences": values["update/active_sequences"]})
    after = torch.cat([p.detach().flatten() for p in trainer.learner.parameters])
    if not torch.equal(before, after):
        raise ResetRLError("batch-gradient agreement: the weights moved while measuring")
    return gradients, figures


def measure(config: Config, methods: list[str], batches: int) -> dict:
    """Per method: agreement over all batches and over each half (a rough spread), mean |g|^2, and
    the ratio of the agreement to the first method's."""
    rows = {}
    for method in methods:
        with tempfile.TemporaryDirectory() as run_dir:
            gradients, figures = batch_gradients(config.model_copy(update={"method": method}), batches, Path(run_dir))
        half = batches // 2
        rows[method] = {
            "agreement": agreement(gradients),
            "agreement_halves": [agreement(gradients[:half]), agreement(gradients[half:])] if half >= 2 else None,
            "mean_squared_norm": float(torch.stack([g.double().pow(2).sum() for g in gradients]).mean()),
            "mean_reward": sum(f["reward"] for f in figures) / len(figures),
            "active_sequences_per_batch": sum(f["active_sequences"] for f in figures) / len(figures),
        }
        print(f"resetrl: {method}: agreement {rows[method]['agreement']:.3f}", flush=True)
    first = rows[methods[0]]["agreement"]
    for row in rows.values():
        row[f"over_{methods[0]}"] = row["agreement"] / first if first else None
    return {"model": config.model.name, "batches": batches, "prompts_per_batch": config.train.prompts_per_step,
            "methods": rows}


def markdown(result: dict) -> str:
    methods = list(result["methods"])
    lines = [f"Batch-gradient agreement on `{result['model']}`: {result['batches']} batches of "
             f"{result['prompts_per_batch']} prompts per method, no update", "",
             f"| method | agreement | halves | over {methods[0]} | mean squared norm | trained reward | sequences with signal per batch |",
             "|---|---|---|---|---|---|---|"]
    for method, row in result["methods"].items():
        halves = ", ".join(f"{h:.3f}" for h in row["agreement_halves"]) if row["agreement_halves"] else "-"
        ratio = row[f"over_{methods[0]}"]
        ratio = f"{ratio:.2f}" if ratio is not None else "-"
        lines.append(f"| {method} | {row['agreement']:.3f} | {halves} | {ratio} | {row['mean_squared_norm']:.3g} | "
                     f"{row['mean_reward']:.3f} | {row['active_sequences_per_batch']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from resetrl.commands import add_config_arguments
    from resetrl.compare.pipeline import parse_methods

    parser = argparse.ArgumentParser(prog="python -m resetrl.compare.agreement", description=__doc__.split("\n")[0])
    add_config_arguments(parser)
    parser.add_argument("--methods", default="grpo,oracle,grpo_mask", help="methods, the first the reference of the ratio")
    parser.add_argument("--batches", type=int, default=16, help="independent batches per method (default 16)")
    parser.add_argument("--out", help="write the figures to this JSON file (and the table beside it as .md)")
    args = parser.parse_args(argv)
    try:
        if args.batches < 2:
            raise ResetRLError(f"--batches must be at least 2, got {args.batches}")
        result = measure(load_config(args.config, args.preset, args.overrides), parse_methods(args.methods), args.batches)
    except ResetRLError as error:
        print(f"resetrl: error: {error}", file=sys.stderr)
        return 2
    table = markdown(result)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
        Path(args.out).with_suffix(".md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
