"""`resetrl eval`: greedy (or sampled) pass@1 of a model or a trained run on a task's test split
(no resets), or on every benchmark of a suite (`--suite paper`)."""

from __future__ import annotations

import json
from pathlib import Path

from resetrl.commands import add_config_arguments, load_from_args
from resetrl.errors import ResetRLError


def register(subparsers) -> None:
    from resetrl.suite import SUITES

    parser = subparsers.add_parser("eval", help="pass@1 on a task's test split, or on a benchmark suite")
    add_config_arguments(parser)
    parser.add_argument("--run", help="evaluate a run folder: its config and its latest checkpoint's weights "
                                      "(--set still applies on top)")
    parser.add_argument("--suite", choices=sorted(SUITES),
                        help="every benchmark of a suite, greedy, eval.size problems each (default 100): "
                             "paper = the papers' benchmarks available offline; offline = every real one")
    parser.add_argument("--out", help="write per-problem records (or the suite's rows) and the summary to this JSON file")
    parser.set_defaults(func=run)


def run(args) -> int:
    from resetrl.evaluation import run_config

    if args.run and (args.config or args.preset):
        raise ResetRLError("--run takes the run's own config; give --set for changes, not --config/--preset")
    config = run_config(Path(args.run), args.overrides) if args.run else load_from_args(args)
    if args.out:
        from resetrl.outputs import check_writable

        if Path(args.out).is_dir():
            raise ResetRLError(f"--out {args.out} is a folder; eval writes one JSON file")
        check_writable(Path(args.out), "--out")  # before the evaluation, not after it
    from resetrl.evaluation import evaluate_test_split, evaluation_runtime

    runtime = evaluation_runtime(config, Path(args.run) if args.run else None)
    if args.suite:
        return _run_suite(args, config, runtime)
    summary, records = evaluate_test_split(runtime)
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps({**summary, "records": records}, indent=1))
    return 0


def _run_suite(args, config, runtime) -> int:
    from resetrl.suite import run_suite, suite_markdown

    rows = run_suite(runtime, args.suite, config.eval.size or 100, config.task.seed)
    model = args.run or config.model.name
    print(suite_markdown(rows, model, args.suite))
    if args.out:
        Path(args.out).write_text(json.dumps({"suite": args.suite, "model": model, "rows": rows}, indent=1))
    return 0
