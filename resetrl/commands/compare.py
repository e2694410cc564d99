"""`resetrl compare`: every method at the same rollout budget, several seeds, one report folder.

    resetrl compare --preset micro --methods grpo,rrpo,srpo,oracle --seeds 5 --out runs/compare-micro

writes results.json, results.md (tables with 95% CIs), curves.png and runs/<method>-seed<s>/ (the
core trainer's run folders). Runs already finished with the same config are reused.
"""

from __future__ import annotations

from pathlib import Path

from resetrl.commands import add_config_arguments, require_config


def register(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="run methods x seeds at the same budget; tables with CIs and curves")
    add_config_arguments(parser)
    parser.add_argument("--methods", default="grpo,rrpo,srpo,oracle", help="comma-separated methods (default: all four)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per method (train.seed = first-seed .. first-seed+N-1)")
    parser.add_argument("--first-seed", type=int, default=0, help="first train.seed (default 0)")
    parser.add_argument("--out", help="output folder (default: runs/compare-<preset or config>)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once, in worker processes with one torch thread each (default 1)")
    parser.add_argument("--arm", dest="arms", action="append", default=[], metavar="'NAME: KEY=VALUE ...'",
                        help="another arm of the grid: every method and seed again with these overrides, series "
                             "<method>+NAME, paired with <reference>+NAME (repeatable); 'NAME(m1,m2): ...' runs only "
                             "those methods in it (an arm of the reference method alone is paired with the reference)")
    parser.add_argument("--shared-lr", metavar="LR,LR,...",
                        help="one more arm per learning rate, every method at that train.lr (series <method>+lr<LR>): "
                             "tells a gap between methods from the methods' own learning rates (method_overrides)")
    parser.add_argument("--no-base-arm", action="store_true", help="run only the --arm arms, not the config as given")
    parser.add_argument("--reference", default="grpo", help="method whose final accuracy the others must reach (default grpo)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from resetrl.compare.grid import ConfigSource
    from resetrl.compare.pipeline import arm_methods, compare_methods, parse_arms, parse_methods, shared_lr_arms
    from resetrl.errors import ResetRLError

    methods = parse_methods(args.methods)
    arms = parse_arms(args.arms + shared_lr_arms(args.shared_lr), with_base=not args.no_base_arm)
    if args.seeds < 1:
        raise ResetRLError("--seeds must be at least 1")
    require_config(args, "compare")
    source = ConfigSource(args.config, args.preset, tuple(args.overrides))
    base = args.preset or (Path(args.config).stem if args.config else "default")
    out = Path(args.out) if args.out else Path("runs") / f"compare-{base}"
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    summary = compare_methods(source, methods, seeds, out, jobs=args.jobs, reference=args.reference, arms=arms,
                              methods_of_arm=arm_methods(args.arms))
    print((out / "results.md").read_text())
    print(f"resetrl: compared {', '.join(methods)} over {len(seeds)} seeds; results in {out}/ "
          "(report.html, results.md, results.json, curves.png, runs/)")
    return 0 if summary["series"] else 1
