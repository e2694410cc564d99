"""A run's learning curves as a picture: held-out accuracy and training reward against step."""

from __future__ import annotations

from pathlib import Path

from resetrl.metrics import read_jsonl


def plot_run(run_dir: Path) -> Path | None:
    """Write run_dir/curves.png from metrics.jsonl; None when there is nothing to plot."""
    rows = read_jsonl(run_dir / "metrics.jsonl")
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = [(r["step"], r["eval/accuracy"]) for r in rows if "eval/accuracy" in r]
    train = [r for r in rows if "reward/all_trained" in r]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    if evals:
        left.plot(*zip(*evals), marker="o")
    left.set(xlabel="step", ylabel="greedy pass@1 (test)", title="held-out accuracy")
    if train:
        steps = [r["step"] for r in train]
        right.plot(steps, [r["reward/fresh"] for r in train], label="fresh samples")
        if any(r.get("groups/reset") for r in train):
            right.plot(steps, [r["reward/reset"] for r in train], label="reset samples")
        right.legend()
    right.set(xlabel="step", ylabel="mean reward", title="training reward")
    figure.tight_layout()
    path = run_dir / "curves.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
