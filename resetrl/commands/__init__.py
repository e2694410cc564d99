"""Subcommands of the `resetrl` CLI; each module registers its own parser."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config / --preset / --set, shared by every command that runs a model."""
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--preset", help="a built-in config (`resetrl presets` lists them)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.lr=1e-4 (repeatable)")


def load_from_args(args):
    from resetrl.config import load_config

    if not args.config and not args.preset:
        print("resetrl: no --config or --preset given; using the defaults (`resetrl presets` lists presets)")
    return load_config(args.config, args.preset, args.overrides)
