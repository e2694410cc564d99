"""`resetrl ics`: Thought-ICS self-correction at inference and its baselines on a task's test split;
`resetrl localize`: self-localization accuracy, thought-structured vs unstructured chains (Paper B)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from resetrl.commands import add_config_arguments, load_from_args

# Kept here (not imported from resetrl.ics) so `resetrl --help` does not import torch.
METHODS = ("thought-ics", "regen", "token-ics", "self-refine", "majority")  # --compare runs these
ANALYSIS_METHODS = ("oracle-ics",)  # Thought-ICS with the true first error as localizer
STRUCTURED_METHODS = ("thought-ics", "oracle-ics", "regen", "self-refine", "majority")


def _add_shared_arguments(parser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--model", help="model name or folder (sets model.name)")
    parser.add_argument("--task", help="task name (sets task.name; options with --set task.options.steps=3)")
    parser.add_argument("--n", type=int, help="test problems (default: task.test_size)")
    parser.add_argument("--out", help="output folder (default: runs/ics/<model>-<task>-<level>)")
    parser.add_argument("--level", choices=("L1", "L2", "L3"), default="L2",
                        help="L1: oracle verification, localizer sees the answer; L2: oracle verification "
                             "('wrong' only), self-localization; L3: self-verification and self-localization")
    parser.add_argument("--temperature", type=float, help="first-chain temperature (default: rollout.temperature)")
    parser.add_argument("--localize-temperature", type=float,
                        help="localizer temperature (default: rollout.localize_temperature)")


def register(subparsers) -> None:
    ics = subparsers.add_parser("ics", help="Thought-ICS self-correction at inference, and its baselines")
    _add_shared_arguments(ics)
    ics.add_argument("--method", default="thought-ics",
                     help=f"method, or several joined by commas: {', '.join(METHODS + ANALYSIS_METHODS)} "
                          "(default: thought-ics; oracle-ics localizes with the true first error)")
    ics.add_argument("--compare", action="store_true", help="run every method on the same problems; one table")
    ics.add_argument("--variant", choices=("S", "A"),
                     help="headline variant: S returns the final chain, A the first unless verified "
                          "(default: A at L3, S at L1/L2; both are always reported)")
    ics.add_argument("--max-iters", type=int, default=10, help="loop rounds L (Paper B: 10)")
    ics.add_argument("--votes", type=int, help="majority-vote samples (default: max-iters + 1, the loop's budget)")
    ics.add_argument("--verify-samples", type=int, default=1, help="self-verification samples k (L3)")
    ics.add_argument("--verify-gate", choices=("any", "majority", "unanimous"), default="majority",
                     help="how k verification votes certify a chain")
    ics.add_argument("--resample-temperature", type=float, help="temperature of resampled chains "
                                                                "(default: rollout.temperature)")
    ics.add_argument("--verify-temperature", type=float, help="self-verification temperature "
                                                              "(default: rollout.localize_temperature)")
    ics.set_defaults(func=run)

    localize = subparsers.add_parser("localize", help="self-localization accuracy: structured vs unstructured chains")
    _add_shared_arguments(localize)
    localize.add_argument("--samples", type=int, default=2, help="chains sampled per problem and format")
    localize.add_argument("--plot", help="PNG of the offset distribution (default: <out>/localization_offsets.png)")
    localize.set_defaults(func=run_localize)


def _setup(args, level: str):
    """Config (with --model/--task applied last), runtime, engine, settings and problems."""
    from resetrl.errors import ResetRLError
    from resetrl.ics.engine import ChainEngine, ICSSettings
    from resetrl.runtime import build_runtime

    if args.model:
        args.overrides.append(f"model.name={args.model}")
    if args.task:
        args.overrides.append(f"task.name={args.task}")
    config = load_from_args(args)
    rollout = config.rollout
    try:
        settings = ICSSettings(
            level=level, max_iters=getattr(args, "max_iters", 10),
            temperature=_default(args.temperature, rollout.temperature),
            resample_temperature=_default(getattr(args, "resample_temperature", None), rollout.temperature),
            localize_temperature=_default(args.localize_temperature, rollout.localize_temperature),
            localize_max_tokens=rollout.localize_max_tokens,
            verify_temperature=_default(getattr(args, "verify_temperature", None), rollout.localize_temperature),
            verify_max_tokens=rollout.localize_max_tokens,
            verify_samples=getattr(args, "verify_samples", 1), verify_gate=getattr(args, "verify_gate", "majority"),
            votes=getattr(args, "votes", None), top_p=rollout.top_p, top_k=rollout.top_k)
    except ValueError as error:
        raise ResetRLError(str(error)) from None
    if args.n is not None and args.n < 1:
        raise ResetRLError("--n must be >= 1")
    runtime = build_runtime(config, with_lora=False)
    problems = runtime.task.problems("test", args.n or config.task.test_size, config.task.seed)
    if not problems:
        raise ResetRLError(f"task {runtime.task.name!r} has no test problems")
    return config, runtime, ChainEngine.from_runtime(runtime), settings, problems


def _default(value, fallback):
    return fallback if value is None else value


def _out_dir(args, config, prefix: str = "") -> Path:
    if args.out:
        return Path(args.out)
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.model.name).name)
    return Path("runs") / "ics" / f"{prefix}{model}-{config.task.name.replace(':', '_')}-{args.level}"


def run(args) -> int:
    from resetrl.ics.methods import initial_chains, run_method
    from resetrl.ics.metrics import comparison_table, localization_table, summarize
    from resetrl.ics.plots import plot_comparison

    from resetrl.errors import ResetRLError

    methods = list(METHODS) if args.compare else [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS + ANALYSIS_METHODS]
    if unknown or not methods:
        raise ResetRLError(f"unknown ICS method(s) {', '.join(unknown) or '(none)'}; "
                           f"known: {', '.join(METHODS + ANALYSIS_METHODS)}")
    config, runtime, engine, settings, problems = _setup(args, args.level)
    variant = args.variant or ("A" if args.level == "L3" else "S")
    out = _out_dir(args, config)
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    # The structured methods start from the same first chains, so they differ only in the correction.
    initial = initial_chains(engine, settings, problems) if set(methods) & set(STRUCTURED_METHODS) else None
    seconds = {"initial_chains": time.perf_counter() - started}
    summaries = {}
    for method in methods:
        started = time.perf_counter()
        trajectories = run_method(method, engine, settings, problems, initial)
        seconds[method] = time.perf_counter() - started
        summaries[method] = summarize(trajectories)
        with open(out / f"{method}.jsonl", "w") as handle:
            for trajectory in trajectories:
                handle.write(json.dumps(trajectory.record()) + "\n")

    report = {"model": config.model.name, "task": config.task.name, "task_options": config.task.options,
              "level": args.level, "settings": vars(settings), "problems": [p.id for p in problems],
              "seed": config.train.seed, "variant": variant, "seconds": seconds, "tokens": {}, "methods": {}}
    report = _merge_previous(out / "summary.json", report)
    report["methods"].update(summaries)
    report["tokens"].update({method: engine.tokens for method in methods} if len(methods) == 1 else
                            {"+".join(methods): engine.tokens})
    report["seconds"].update(seconds)
    (out / "summary.json").write_text(json.dumps(report, indent=1))
    order = METHODS[:1] + ANALYSIS_METHODS + METHODS[1:]
    ordered = {m: report["methods"][m] for m in order if m in report["methods"]}
    table = comparison_table(ordered, variant)
    localized = localization_table(ordered)
    if localized:
        table += "\n\nResampling points against the true first error (rates in %):\n\n" + localized
    (out / "table.md").write_text(table + "\n")
    plot_comparison(ordered, out / "accuracy.png",
                    f"{Path(config.model.name).name} on {config.task.name}, {args.level}, "
                    f"{len(problems)} problems, L = {settings.max_iters}")
    print(json.dumps(summaries if len(summaries) > 1 else summaries[methods[0]], indent=1))
    print(f"\n{config.model.name} on {config.task.name}, level {args.level}, {len(problems)} problems, "
          f"L = {settings.max_iters} (accuracies in %, lifts in points):\n{table}")
    print(f"resetrl: done in {sum(seconds.values()) / 60:.1f} min; results in {out}/ "
          f"({', '.join(m + '.jsonl' for m in methods)}, summary.json, table.md, accuracy.png)")
    return 0


def _merge_previous(path: Path, report: dict) -> dict:
    """Methods run one at a time into the same folder share one summary and table, provided the
    model, task, level, settings, problems and seed are the same (else the old summary is replaced)."""
    if not path.exists():
        return report
    previous = json.loads(path.read_text())
    same = all(previous.get(key) == report[key]
               for key in ("model", "task", "task_options", "level", "settings", "problems", "seed"))
    if not same:
        print(f"resetrl: {path} is from a different run (model, task, level, settings or problems); replacing it")
        return report
    previous["variant"] = report["variant"]
    return previous


def run_localize(args) -> int:
    from resetrl.errors import ResetRLError
    from resetrl.ics.localize import case_record, measure_localization
    from resetrl.ics.plots import plot_offsets

    if args.level == "L3":
        raise ResetRLError("localize measures chains known to be wrong: use --level L2 (default) or L1")
    if args.samples < 1:
        raise ResetRLError("--samples must be >= 1")
    config, runtime, engine, settings, problems = _setup(args, args.level)
    out = _out_dir(args, config, prefix="localize-")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary, cases = measure_localization(engine, settings, problems, args.samples)
    summary["seconds"] = time.perf_counter() - started
    summary["model"], summary["task"] = config.model.name, config.task.name
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    with open(out / "cases.jsonl", "w") as handle:
        for case in cases:
            handle.write(json.dumps(case_record(case)) + "\n")
    plot = Path(args.plot) if args.plot else out / "localization_offsets.png"
    plot_offsets(summary, plot, f"{Path(config.model.name).name} on {config.task.name} ({args.level}): "
                                f"self-localized vs true first error")
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
