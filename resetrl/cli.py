"""The `resetrl` command line: one subcommand per concern, each registered by its own module."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from resetrl import __version__
from resetrl.errors import ResetRLError, RunInterrupted

# Each module defines `register(subparsers)`, adding its subcommand(s) with `set_defaults(func=...)`.
# Imported lazily inside main() so `resetrl --help` stays fast and a broken optional part cannot
# take the whole CLI down.
COMMAND_MODULES = [
    "resetrl.commands.train",
    "resetrl.commands.sft",
    "resetrl.commands.evaluate",
    "resetrl.commands.listing",
    "resetrl.commands.data",
    "resetrl.commands.config",
    "resetrl.commands.micro",
    "resetrl.commands.compare",
    "resetrl.commands.report",
    "resetrl.commands.ics",
    "resetrl.commands.doctor",
    "resetrl.cpi.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resetrl",
        description="RL post-training of language models with resets (GRPO, RRPO, SRPO).",
        epilog="Start with `resetrl train --preset quickstart`; `resetrl presets` lists the built-in configs "
               "and `resetrl config --preset NAME` shows every field. `resetrl COMMAND --help` for a command.",
    )
    parser.add_argument("--version", action="version", version=f"resetrl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and error.name.startswith(module_name.rsplit(".", 1)[0]):
                continue  # that part of resetrl is not there (yet)
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # PyTorch's busy-waiting OpenMP threads make CPU decoding many times slower when anything
    # else runs on the machine (offline.md); must be set before torch is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so a reader that closed the pipe is seen below, not at exit
        return code
    except ResetRLError as error:
        print(f"resetrl: error: {error}", file=sys.stderr)
        return 2
    except RunInterrupted as interrupted:
        print(f"resetrl: {interrupted}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command Ctrl-C stopped
    except KeyboardInterrupt:
        print("resetrl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `resetrl tasks | head -1`: the reader has what it wanted. Silent, as a Unix tool stopped by
        # SIGPIPE; stdout goes to /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE
    except OSError as error:  # a full disk, a read-only or missing path: the message names the file
        print(f"resetrl: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
