"""`resetrl micro`: the micro testbed (docs/micro.md).

    resetrl micro build [--seed S] [--localizer-noise X]   # train a micro model (a few minutes)
    resetrl micro build --preset trap --set task.options.slip_noise=0.15   # the trap testbed's model
    resetrl micro info [NAME ...]                          # what a built model measured
    resetrl micro sweep --noise 0,0.5,1 --seeds 3          # SRPO against localization accuracy
"""

from __future__ import annotations

import json
from pathlib import Path

from resetrl.commands import add_config_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser("micro", help="the micro testbed: build a tiny model with both skills, sweep localization")
    commands = parser.add_subparsers(dest="micro_command", metavar="SUBCOMMAND")

    build = commands.add_parser("build", help="train a micro model from scratch (deterministic from --seed)")
    build.add_argument("--seed", type=int, default=0, help="build seed (default 0; other seeds add -seed<S> to the name)")
    build.add_argument("--localizer-noise", type=float, default=0.0,
                       help="fraction of localization labels replaced by a random step (0 = clean, 1 = no skill)")
    build.add_argument("--preset", default="micro", help="preset whose task and prompt format the model learns "
                       "(the model is named after it: micro, trap, ...)")
    build.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="change the preset's config for this build, e.g. --set task.options.slip_noise=0.15 "
                            "(repeatable; named in the model's name: trap-slip0.15)")
    build.add_argument("--hidden-size", type=int, help="model width (default 128)")
    build.add_argument("--layers", type=int, help="transformer layers (default 4)")
    build.add_argument("--solver-problems", type=int, help="distinct phase-1 training problems (default 20000)")
    build.add_argument("--solver-steps", type=int, help="phase-1 steps (default 800)")
    build.add_argument("--localizer-steps", type=int, help="phase-2 steps (default 300)")
    build.add_argument("--name", help="the model's name (default: the preset's, with the --set changes, "
                       "noise and seed: trap-slip0.15); sizes and budgets are not in the default name")
    build.set_defaults(func=run_build)

    info = commands.add_parser("info", help="print what built micro models measured")
    info.add_argument("names", nargs="*", help="model names (default: every built one)")
    info.set_defaults(func=run_info)

    sweep = commands.add_parser("sweep", help="SRPO final accuracy against measured localization accuracy")
    add_config_arguments(sweep)
    sweep.add_argument("--noise", default="0,0.5,1", help="localizer-noise levels to build and run (default 0,0.5,1)")
    sweep.add_argument("--seeds", type=int, default=3, help="RL seeds per point (default 3)")
    sweep.add_argument("--out", default="runs/micro-sweep", help="output folder (default runs/micro-sweep)")
    sweep.add_argument("--jobs", type=int, default=1, help="runs at once (worker processes, one thread each)")
    sweep.add_argument("--no-grpo", action="store_true", help="leave out the GRPO reference line")
    sweep.set_defaults(func=run_sweep)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_build(args) -> int:
    from resetrl.errors import ResetRLError
    from resetrl.micro.build import BuildPlan, build_micro

    changes = {"seed": args.seed, "localizer_noise": args.localizer_noise, "preset": args.preset,
               "overrides": tuple(args.overrides), "custom_name": args.name or ""}
    for field in ("hidden_size", "layers", "solver_problems", "solver_steps", "localizer_steps"):
        value = getattr(args, field)
        if value is not None:
            if value < 1:
                raise ResetRLError(f"--{field.replace('_', '-')} must be at least 1, got {value}")
            changes[field] = value
    from resetrl.models.micro import weights_sha256

    folder, info = build_micro(BuildPlan(**changes))
    print(describe(info, weights_sha256(info["name"])))
    print(f"resetrl: built {info['name']} in {info['seconds']['total'] / 60:.1f} min; saved to {folder} "
          f"(use it with --set model.name={info['name'] if _is_registered(info['name']) else folder})")
    return 0


def _is_registered(name: str) -> bool:
    from resetrl.models import MODELS, is_built_micro

    return name in MODELS or is_built_micro(name)


def describe(info: dict, weights_sha256: str | None = None) -> str:
    """A few lines: the model, its base accuracy, its localization accuracy against chance, and the
    hash that tells this build from another of the same name."""
    skills, chance = info["skills"], info["skills"]["chance_localization"]
    localization = skills["localization"]
    return "\n".join([
        f"{info['name']}: {info['parameters'] / 1e6:.2f}M parameters, task {info['task']['options']}, "
        f"localizer noise {info['plan']['localizer_noise']}",
        f"  solving   : greedy accuracy {skills['accuracy']:.3f}, sampled (T=0.7) {skills['sampled_accuracy']:.3f} "
        f"on {skills['test_problems']} test problems",
        f"  localizing: {skills['failed_chains']} own failed chains; exact {localization['exact']:.3f} "
        f"(chance {chance['exact']:.3f}), within one {localization['within_one']:.3f} "
        f"(chance {chance['within_one']:.3f}), clean prefix {localization['clean_prefix']:.3f} "
        f"(chance {chance['clean_prefix']:.3f}); answers {localization['parsed']}",
        f"  time      : solver {info['seconds']['solver']:.0f} s, localizer {info['seconds']['localizer']:.0f} s, "
        f"measure {info['seconds']['measure']:.0f} s",
    ] + ([f"  weights   : sha256 {weights_sha256[:12]} (runs record it in model.json)"] if weights_sha256 else []))


def run_info(args) -> int:
    from resetrl.cache import cache_dir
    from resetrl.models.micro import BUILD_INFO, weights_sha256

    folders = [cache_dir("models") / name for name in args.names] if args.names else sorted(
        p.parent for p in cache_dir("models").glob(f"*/{BUILD_INFO}"))
    shown = 0
    for folder in folders:
        path = folder / BUILD_INFO
        info = json.loads(path.read_text()) if path.exists() else {}
        if "skills" in info:
            print(describe(info, weights_sha256(folder.name)))
            shown += 1
        elif args.names:
            print(f"{folder.name}: not built (run `resetrl micro build`)")
    if not shown and not args.names:
        print("no micro model built yet; run `resetrl micro build`")
    return 0


def run_sweep(args) -> int:
    from resetrl.compare.grid import ConfigSource
    from resetrl.compare.sweep import localizer_sweep, parse_noise_levels

    source = ConfigSource(args.config, args.preset or ("micro" if not args.config else None), tuple(args.overrides))
    result = localizer_sweep(source, parse_noise_levels(args.noise), list(range(args.seeds)), Path(args.out),
                             jobs=args.jobs, with_grpo=not args.no_grpo)
    print(result["markdown"])
    print(f"resetrl: sweep results in {args.out}/ (sweep.md, sweep.json, sweep.png, runs/)")
    return 0
