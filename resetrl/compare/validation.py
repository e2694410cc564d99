"""Learning rates chosen on the validation split, never on the test problems the comparison reports.

Every finished run of a `resetrl compare` folder is evaluated at its last checkpoint on the task's
validation split (`eval.split=validation`, `--size` problems, the run's own eval temperature and
samples) into <run>/validation.json (kept: a second call only evaluates new runs). Then per series
(method + arm) the mean over seeds, and per method the series with the highest mean: the rate (arm)
chosen for it.

    python -m resetrl.compare.validation runs/phrased8 --size 256
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from resetrl.compare.aggregate import mean_ci
from resetrl.errors import ResetRLError

VALIDATION_FILE = "validation.json"


def validation_accuracy(run_dir: Path, size: int) -> float:
    """eval/accuracy of the run's last checkpoint on `size` validation problems (cached in the run)."""
    from resetrl.evaluation import evaluate_test_split, evaluation_runtime, run_config

    path = run_dir / VALIDATION_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("eval/n") == size:
            return saved["eval/accuracy"]
    config = run_config(run_dir, ["eval.split=validation", f"eval.size={size}"])
    summary, _ = evaluate_test_split(evaluation_runtime(config, run_dir))
    path.write_text(json.dumps(summary, indent=1))
    return summary["eval/accuracy"]


def choose_rates(compare_dir: Path, size: int = 256) -> dict:
    """{"series": {series: {mean, ci, n}}, "chosen": {method: series}} over the finished runs."""
    runs = sorted(p for p in (compare_dir / "runs").iterdir() if (p / "summary.json").exists()) \
        if (compare_dir / "runs").is_dir() else []
    if not runs:
        raise ResetRLError(f"{compare_dir}: no finished runs in {compare_dir / 'runs'}")
    by_series: dict[str, list[float]] = defaultdict(list)
    for run_dir in runs:
        by_series[run_dir.name.rsplit("-seed", 1)[0]].append(validation_accuracy(run_dir, size))
    series = {name: {"mean": mean_ci(values)[0], "ci": mean_ci(values)[1], "n": len(values)}
              for name, values in by_series.items()}
    chosen: dict[str, str] = {}
    for name, row in series.items():
        method = name.split("+", 1)[0]
        if method not in chosen or row["mean"] > series[chosen[method]]["mean"]:
            chosen[method] = name
    return {"size": size, "series": series, "chosen": chosen}


def markdown(result: dict) -> str:
    lines = [f"Validation split ({result['size']} problems), sampled pass@1 at each run's last checkpoint", "",
             "| series | mean ± 95% CI | seeds | chosen for its method |", "|---|---|---|---|"]
    chosen = set(result["chosen"].values())
    for name, row in result["series"].items():
        lines.append(f"| {name} | {row['mean']:.3f} ± {row['ci']:.3f} | {row['n']} | {'yes' if name in chosen else ''} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resetrl.compare.validation", description=__doc__.split("\n")[0])
    parser.add_argument("compare_dir", type=Path)
    parser.add_argument("--size", type=int, default=256, help="validation problems (default 256)")
    args = parser.parse_args(argv)
    try:
        result = choose_rates(args.compare_dir, args.size)
    except ResetRLError as error:
        print(f"resetrl: error: {error}", file=sys.stderr)
        return 2
    table = markdown(result)
    print(table)
    (args.compare_dir / "validation.json").write_text(json.dumps(result, indent=1))
    (args.compare_dir / "validation.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
