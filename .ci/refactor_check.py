"""Bit-identical check for refactors: the same seeded runs before and after a change, compared by
sha256 of what they write (timing fields, and metrics the change added on purpose, excluded).

    python .ci/refactor_check.py --save .ci/refactor_baseline.json   # on the code before the change
    python .ci/refactor_check.py --check .ci/refactor_baseline.json  # after: exit 1 on any difference

Runs (each a fresh `python -m resetrl.cli` process, so seeding starts from scratch): a smoke-preset
train of 2 steps for grpo, rrpo, srpo and oracle, an srpo variant through the update's other paths,
srpo one prompt at a time and the three baselines (VARIANTS), a Thought-ICS comparison on the smoke preset's smallest setting (2 problems, 1
iteration), and a small micro build (MICRO_BUILD). Hashed: metrics.jsonl without its timing and
throughput fields, rollouts.jsonl, eval.json, every checkpoint's safetensors; the ICS folder's
json/jsonl files with the same fields dropped; the micro build's files (weights of both phases,
tokenizer, configs, micro_build.json without its timings)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("grpo", "rrpo", "srpo", "oracle")
# One more run through the update's other paths: the clip loss, one prompt per mini-batch (off-policy
# later mini-batches, whose old log-probabilities come from a no-grad pass), two passes, the
# importance correction and a KL term to the reference policy.
VARIANTS = {"srpo-clip-tis-kl": ("method=srpo", "train.loss=clip", "train.mini_batch_prompts=1",
                                 "train.updates_per_rollout=2", "train.importance_correction=true",
                                 "train.kl_coef=0.01"),
            # One prompt at a time (cluster/shard.py's PromptRoller: what Ray workers run), and the
            # baselines' own collectors and losses (SCoRe: reward KL and clip; Critique-GRPO: the
            # shaped off-policy loss with its entropy term; SPO-Tree: tree rollouts).
            "srpo-per-prompt": ("method=srpo", "generation.per_prompt=true"),
            "score": ("method=score",), "critique_grpo": ("method=critique_grpo",), "spo_tree": ("method=spo_tree",)}
# The micro build: phase 1, sampling its own chains, phase 2 and the skill measurement, at a size that
# runs in about 30 s on one core (the default build takes minutes).
MICRO_BUILD = ("--hidden-size", "32", "--layers", "2", "--solver-problems", "2000", "--solver-steps", "150",
               "--localizer-steps", "20", "--name", "refcheck")
# Values that depend on the clock or the machine's load, not on the computation.
TIMING_PREFIXES = ("time/", "throughput/", "memory/")
TIMING_WORDS = ("seconds", "per_s", "wall", "elapsed", "duration", "peak_rss")
# Metrics a refactor added on purpose (new diagnostics, not changed values): dropped before hashing,
# so everything the baseline has must still be bit-identical. Issue 31: the losses' approx KL.
ADDED_KEYS = ("update/approx_kl",)


def is_timing(key: str) -> bool:
    return key.startswith(TIMING_PREFIXES) or any(word in key for word in TIMING_WORDS) or key in ADDED_KEYS


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if not is_timing(k)}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def json_digest(path: Path) -> str:
    """sha256 of a json or jsonl file's records with their timing fields dropped."""
    text = path.read_text()
    if path.suffix == ".jsonl":
        records = [without_timing(json.loads(line)) for line in text.splitlines() if line.strip()]
    else:
        records = without_timing(json.loads(text))
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args: str, **environment: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **environment}
    done = subprocess.run([sys.executable, "-m", "resetrl.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"refactor_check: `resetrl {' '.join(args)}` failed ({done.returncode}):\n{done.stderr[-3000:]}")


def train_digests(overrides: tuple[str, ...], out: Path) -> dict[str, str]:
    sets = [part for assignment in overrides for part in ("--set", assignment)]
    cli("train", "--preset", "smoke", *sets, "--set", "train.steps=2", "--out", str(out))
    digests = {name: json_digest(out / name) for name in ("metrics.jsonl", "rollouts.jsonl", "eval.json")}
    for weights in sorted(out.glob("checkpoints/**/*.safetensors")):
        digests[str(weights.relative_to(out))] = file_digest(weights)
    return digests


def ics_digests(out: Path) -> dict[str, str]:
    cli("ics", "--preset", "smoke", "--n", "2", "--max-iters", "1", "--compare", "--out", str(out))
    return {str(path.relative_to(out)): json_digest(path)
            for path in sorted([*out.rglob("*.json"), *out.rglob("*.jsonl")])}


def micro_digests(out: Path) -> dict[str, str]:
    """A micro build at its smallest useful size (about 30 s on one core: a 2-layer width-32 model
    whose localizer already boxes steps), into its own cache folder: both phases' weights, the
    tokenizer and config files, and micro_build.json (its measurements; its timings dropped)."""
    cli("micro", "build", *MICRO_BUILD, RESETRL_CACHE=str(out))
    digests = {}
    for path in sorted((out / "models").rglob("*")):
        if path.is_file():
            name = str(path.relative_to(out))
            digests[name] = json_digest(path) if path.suffix == ".json" else file_digest(path)
    return digests


def collect(only: list[str], keep: str | None = None) -> dict[str, dict[str, str]]:
    """The digests of every run (or of `only`'s), their folders under `keep` when given (to diff)."""
    results = {}
    with tempfile.TemporaryDirectory() as temporary:
        scratch = keep or temporary
        runs = {**{method: (f"method={method}",) for method in METHODS}, **VARIANTS}
        for name, overrides in runs.items():
            if not only or name in only:
                print(f"refactor_check: train {name}", flush=True)
                results[f"train/{name}"] = train_digests(overrides, Path(scratch) / name)
        if not only or "ics" in only:
            print("refactor_check: ics", flush=True)
            results["ics"] = ics_digests(Path(scratch) / "ics")
        if not only or "micro" in only:
            print("refactor_check: micro", flush=True)
            results["micro"] = micro_digests(Path(scratch) / "micro")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", help="write the digests to this file")
    group.add_argument("--check", help="compare with the digests in this file")
    parser.add_argument("--only", nargs="*", default=[], help=f"a subset of {', '.join([*METHODS, *VARIANTS])}, ics, micro")
    parser.add_argument("--keep", help="write the runs' folders here (a new folder), to diff them when a digest differs")
    args = parser.parse_args()
    results = collect(args.only, args.keep)
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"refactor_check: saved {sum(map(len, results.values()))} digests to {args.save}")
        return 0
    baseline = json.loads(Path(args.check).read_text())
    if args.only:
        baseline = {run: digests for run, digests in baseline.items() if run in results}
    differences = []
    for run, digests in results.items():
        for name, digest in digests.items():
            expected = baseline.get(run, {}).get(name)
            if expected != digest:
                differences.append(f"{run}: {name} {'differs' if expected else 'not in the baseline'}")
        missing = set(baseline.get(run, {})) - set(digests)
        differences += [f"{run}: {name} missing" for name in sorted(missing)]
    for line in differences:
        print(f"refactor_check: {line}")
    print(f"refactor_check: {'DIFFERENT' if differences else 'identical'} "
          f"({sum(map(len, results.values()))} digests over {', '.join(results)})")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
