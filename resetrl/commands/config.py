"""`resetrl config`: every config field with its value, default and meaning, or the resolved YAML."""

from __future__ import annotations

from resetrl.commands import add_config_arguments


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "config", help="print every config field with its value, default and description",
        description="Every field of the config that --preset/--config/--set resolve to (the defaults "
                    "when none is given): its value, its default where the value differs, and what it means.")
    add_config_arguments(parser)
    parser.add_argument("--yaml", action="store_true",
                        help="print the resolved config as YAML instead (a starting point for --config)")
    parser.set_defaults(func=show_config)


def show_config(args) -> int:
    from resetrl.config import field_rows, load_config

    config = load_config(args.config, args.preset, args.overrides)
    if args.yaml:
        print(config.to_yaml(), end="")
        return 0
    section = ""
    for key, value, default, description in field_rows(config):
        head = key.rpartition(".")[0].split(".")[0]
        if head != section:
            section = head
            print(f"\n[{section}]")
        changed = f"  (default {_inline(default)})" if value != default else ""
        print(f"{key} = {_inline(value)}{changed}\n    {description}")
    return 0


def _inline(value) -> str:
    """A value as one line of YAML, as --set takes it."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
