"""`resetrl eval`: greedy pass@1 of a model on a task's test split (no resets)."""

from __future__ import annotations

import json
from pathlib import Path

from resetrl.commands import add_config_arguments, load_from_args
from resetrl.errors import ResetRLError


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="greedy pass@1 on a task's test split")
    add_config_arguments(parser)
    parser.add_argument("--out", help="write per-problem records and the summary to this JSON file")
    parser.set_defaults(func=run)


def run(args) -> int:
    config = load_from_args(args)
    if args.out:
        from resetrl.outputs import check_writable

        if Path(args.out).is_dir():
            raise ResetRLError(f"--out {args.out} is a folder; eval writes one JSON file")
        check_writable(Path(args.out), "--out")  # before the evaluation, not after it
    from resetrl.evaluation import evaluate
    from resetrl.runtime import build_runtime

    runtime = build_runtime(config, with_lora=False)
    problems = runtime.task.problems("test", config.eval.size or config.task.test_size, config.task.seed)
    summary, records = evaluate(runtime, problems, config.eval.temperature, config.eval.samples)
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps({**summary, "records": records}, indent=1))
    return 0
