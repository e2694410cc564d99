"""Subcommands of the `resetrl` CLI; each module registers its own parser."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config / --preset / --set, shared by every command that runs a model."""
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--preset", help="a built-in config (`resetrl presets` lists them)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=1e-4 (repeatable)")


def require_config(args, command: str) -> None:
    """A bare `resetrl train` (no --preset, --config or --set) would start a long run of the untrained
    tiny model: refuse it, naming what to pass. With only --set the defaults are chosen on purpose."""
    from resetrl.errors import ResetRLError

    if not args.config and not args.preset and not args.overrides:
        raise ResetRLError(f"`resetrl {command}` needs --preset or --config, e.g. `resetrl {command} --preset "
                           "quickstart` (`resetrl presets` lists presets, `resetrl config` every field)")
    if not args.config and not args.preset:
        print("resetrl: no --config or --preset given; using the defaults with --set (`resetrl presets` lists presets)")


def load_from_args(args, command: str | None = None):
    """The config of --preset/--config/--set; `command` (train, compare) requires one of them."""
    from resetrl.config import load_config

    if command:
        require_config(args, command)
    elif not args.config and not args.preset:
        print("resetrl: no --config or --preset given; using the defaults (`resetrl presets` lists presets)")
    return load_config(args.config, args.preset, args.overrides)
