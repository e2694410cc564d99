"""`resetrl train`: GRPO / RRPO / SRPO / oracle training from a config or preset."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from resetrl.commands import add_config_arguments, load_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train with GRPO, RRPO, SRPO or oracle resets",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model with RL from a preset or YAML config, changed field by field with --set.\n"
                    "The run folder gets config.yaml, metrics.jsonl, rollouts.jsonl, checkpoints/, eval.json,\n"
                    "curves.png and report.html. Ctrl-C stops at once; --resume continues from the last checkpoint.",
        epilog="examples:\n"
               "  resetrl train --preset quickstart                 # the README's first run (about 15 min on 2 CPU cores)\n"
               "  resetrl train --preset smoke --out runs/try       # a pipeline check, under a minute\n"
               "  resetrl train --config my.yaml --set method=grpo --set train.lr=1e-5\n"
               "  resetrl train --preset quickstart --resume --set train.steps=48   # train a finished run longer\n\n"
               "fields: `resetrl config --preset quickstart` prints every field with its value, default and meaning;\n"
               "`resetrl presets` lists the presets, `resetrl tasks` and `resetrl models` the names.")
    add_config_arguments(parser)
    parser.add_argument("--out", help="run folder (default: runs/<preset or config>-<method>)")
    reuse = parser.add_mutually_exclusive_group()
    reuse.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint (the config must match, "
                            "except train.steps, eval.every and checkpoint.every/keep, which may extend it)")
    reuse.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    parser.set_defaults(func=run)


def default_run_dir(args, method: str) -> Path:
    base = args.preset or (Path(args.config).stem if args.config else "default")
    return Path("runs") / f"{base}-{method}"


def run(args) -> int:
    config = load_from_args(args, "train")
    from resetrl.api import train
    from resetrl.cluster.distributed import launched_rank
    from resetrl.outputs import RUN_FILES

    run_dir = Path(args.out) if args.out else default_run_dir(args, config.method)
    started = time.perf_counter()
    summary = train(config, run_dir, resume=args.resume, overwrite=args.overwrite)
    if launched_rank() != 0:  # under torchrun only rank 0 reports (docs/scale.md)
        return 0
    minutes = (time.perf_counter() - started) / 60
    print(json.dumps(summary, indent=2))
    written = [name + ("/" if (run_dir / name).is_dir() else "") for name in RUN_FILES
               if name != "config.yaml" and (run_dir / name).exists()]
    print(f"resetrl: done in {minutes:.1f} min; accuracy {summary['initial_accuracy']} -> "
          f"{summary['final_accuracy']}; results in {run_dir}/ ({', '.join(written)})")
    return 0
