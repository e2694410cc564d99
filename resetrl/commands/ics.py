"""`resetrl ics`: Thought-ICS self-correction at inference and its baselines on a task's test split;
`resetrl localize`: self-localization accuracy, thought-structured vs unstructured chains (Paper B).

Both read the config's `ics:` section (`--preset/--config/--set ics.max_iters=5`); each flag below is
a shortcut that sets one field, applied after `--set`. The pipeline is `resetrl.ics.pipeline`."""

from __future__ import annotations

import json
from pathlib import Path

from resetrl.commands import add_config_arguments, load_from_args
from resetrl.ics.config import ICS_ANALYSIS, ICS_COMPARED

# flag destination -> the config field it sets
SHORTCUTS = {"model": "model.name", "task": "task.name", "n": "ics.size", "level": "ics.level",
             "temperature": "ics.temperature", "localize_temperature": "ics.localize_temperature",
             "method": "ics.methods", "variant": "ics.variant", "max_iters": "ics.max_iters",
             "votes": "ics.votes", "verify_samples": "ics.verify_samples", "verify_gate": "ics.verify_gate",
             "resample_temperature": "ics.resample_temperature",
             "verify_temperature": "ics.verify_temperature", "samples": "ics.localize_samples"}


def _add_shared_arguments(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--model", help="model name or folder (sets model.name)")
    parser.add_argument("--task", help="task name (sets task.name; options with --set task.options.steps=3)")
    parser.add_argument("--n", type=int, help="test problems (sets ics.size; default: task.test_size)")
    parser.add_argument("--out", help="output folder (default: runs/ics/<model>-<task>-<level>)")
    parser.add_argument("--level", choices=("L1", "L2", "L3"),
                        help="sets ics.level (default L2). L1: oracle verification, localizer sees the answer; "
                             "L2: oracle verification ('wrong' only), self-localization; L3: self-verification "
                             "and self-localization")
    parser.add_argument("--temperature", type=float,
                        help="first-chain temperature (sets ics.temperature; default: rollout.temperature)")
    parser.add_argument("--localize-temperature", type=float,
                        help="localizer temperature (sets ics.localize_temperature; default: rollout.localize_temperature)")


def register(subparsers) -> None:
    ics = subparsers.add_parser("ics", help="Thought-ICS self-correction at inference, and its baselines")
    _add_shared_arguments(ics)
    ics.add_argument("--method",
                     help=f"method, or several joined by commas (sets ics.methods): "
                          f"{', '.join(ICS_COMPARED + ICS_ANALYSIS)} "
                          "(default: thought-ics; oracle-ics localizes with the true first error)")
    ics.add_argument("--compare", action="store_true",
                     help=f"run every method on the same problems, one table (ics.methods={','.join(ICS_COMPARED)})")
    ics.add_argument("--variant", choices=("S", "A"),
                     help="headline variant (sets ics.variant): S returns the final chain, A the first unless "
                          "verified (default: A at L3, S at L1/L2; both are always reported)")
    ics.add_argument("--max-iters", type=int, help="loop rounds L (sets ics.max_iters; Paper B: 10)")
    ics.add_argument("--votes", type=int, help="majority-vote samples (sets ics.votes; default: max-iters + 1, "
                                               "the loop's budget)")
    ics.add_argument("--verify-samples", type=int, help="self-verification samples k, L3 (sets ics.verify_samples; "
                                                        "default 1)")
    ics.add_argument("--verify-gate",
                     help="how k verification votes certify a chain: any, majority or unanimous (sets ics.verify_gate; "
                          "default majority)")
    ics.add_argument("--resample-temperature", type=float, help="temperature of resampled chains (sets "
                                                                "ics.resample_temperature; default: rollout.temperature)")
    ics.add_argument("--verify-temperature", type=float, help="self-verification temperature (sets "
                                                              "ics.verify_temperature; default: rollout.localize_temperature)")
    ics.set_defaults(func=run)

    localize = subparsers.add_parser("localize", help="self-localization accuracy: structured vs unstructured chains")
    _add_shared_arguments(localize)
    localize.add_argument("--samples", type=int, help="chains sampled per problem and format "
                                                      "(sets ics.localize_samples; default 2)")
    localize.add_argument("--plot", help="PNG of the offset distribution (default: <out>/localization_offsets.png)")
    localize.set_defaults(func=run_localize)


def _config(args):
    """The config with the flags given applied last, as `--set` overrides of their fields."""
    if getattr(args, "compare", False):
        args.method = ",".join(ICS_COMPARED)
    for flag, field in SHORTCUTS.items():
        value = getattr(args, flag, None)
        if value is not None:
            args.overrides.append(f"{field}={value}")
    return load_from_args(args)


def run(args) -> int:
    from resetrl.ics.pipeline import default_out_dir, run_ics

    config = _config(args)
    out = Path(args.out) if args.out else default_out_dir(config)
    result = run_ics(config, out)
    methods, ics = config.ics.methods, config.ics
    n_problems = len(result.report["problems"])
    print(json.dumps(result.summaries if len(methods) > 1 else result.summaries[methods[0]], indent=1))
    print(f"\n{config.model.name} on {config.task.name}, level {ics.level}, {n_problems} problems, "
          f"L = {ics.max_iters} (accuracies in %, lifts in points):\n{result.table}")
    print(f"resetrl: done in {result.seconds / 60:.1f} min; results in {out}/ "
          f"({', '.join(m + '.jsonl' for m in methods)}, summary.json, table.md, accuracy.png)")
    return 0


def run_localize(args) -> int:
    from resetrl.ics.pipeline import default_out_dir, run_localization

    config = _config(args)
    out = Path(args.out) if args.out else default_out_dir(config, prefix="localize-")
    plot = Path(args.plot) if args.plot else out / "localization_offsets.png"
    summary = run_localization(config, out, plot)
    print(json.dumps(summary, indent=1))
    for arm in ("structured", "unstructured"):
        exact, clean = summary.get(f"{arm}/answered/exact"), summary.get(f"{arm}/answered/clean_prefix")
        print(f"{arm:12s}: {summary[f'{arm}/failed']} failures, {summary[f'{arm}/answered']} answered; "
              f"exact {_fmt(exact)}, within one {_fmt(summary.get(f'{arm}/answered/within_one'))}, "
              f"clean prefix {_fmt(clean)} (random guess: exact {_fmt(summary.get(f'{arm}/random/exact'))}, "
              f"clean prefix {_fmt(summary.get(f'{arm}/random/clean_prefix'))})")
    print(f"resetrl: done in {summary['seconds'] / 60:.1f} min; results in {out}/ (summary.json, cases.jsonl), "
          f"plot {plot}")
    return 0


def _fmt(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"
