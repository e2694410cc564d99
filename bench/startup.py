"""Start-up time of the CLI's quick commands: each a fresh process, wall and CPU seconds, median of N.

The target (issue 29): `--help`, `--version`, `config`, `tasks`, `presets`, `models` and a config
error under 1.5 s on the 2-core machine; they must not load torch or transformers. `--tree` measures
another checkout (e.g. one exported with `git archive <commit> | tar -x -C /tmp/before`) for a
before/after pair; the machine is shared, so run both in one sitting.

    python bench/startup.py [--repeats 5] [--tree /tmp/before]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (
    ["--help"], ["--version"], ["config", "--preset", "quickstart"], ["tasks"], ["presets"], ["models"],
    ["train", "--preset", "quickstart", "--set", "train.lrr=1"],  # a config error
)


def timed(tree: Path, arguments: list[str]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one `python -m resetrl.cli ...` in `tree`, and its exit code."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_WAIT_POLICY": "PASSIVE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", "resetrl.cli", *arguments], env=env, cwd=tree,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]), help="checkout to measure")
    args = parser.parse_args()
    tree = Path(args.tree).resolve()
    print(f"tree {tree}; median of {args.repeats} fresh processes; load average {os.getloadavg()[0]:.2f}")
    print(f"{'command':55s} {'wall s':>7s} {'cpu s':>7s} {'exit':>5s}")
    for arguments in COMMANDS:
        runs = [timed(tree, arguments) for _ in range(args.repeats)]
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"{'resetrl ' + ' '.join(arguments):55s} {wall:7.2f} {cpu:7.2f} {runs[-1][2]:5d}")


if __name__ == "__main__":
    main()
