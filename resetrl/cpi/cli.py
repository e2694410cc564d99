"""`resetrl cpi`: the CPI theory lab on the command line (docs/cpi.md).

    resetrl cpi measure   samples to certify and improvement per iteration over grids of p and q,
                          fitted log-log slopes, JSON + Markdown + figure in --out
    resetrl cpi run       full CPI runs with random, oracle and noisy-oracle resets at one p
    resetrl cpi exact     the dynamic-programming quantities of one problem, printed

Settings are the `cpi:` section of the config (`resetrl config` lists them), given like training's:
--preset, --config FILE, --set cpi.measure.seeds=20 (lists: --set cpi.measure.p_grid=0.1,0.2,0.4).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from resetrl.commands import add_config_arguments
from resetrl.errors import ResetRLError

SUBCOMMANDS = {
    "measure": "sweep p and q, fit slopes, write JSON/Markdown/plot (settings: cpi.measure)",
    "run": "full CPI runs, one per reset distribution (settings: cpi.run)",
    "exact": "print the exact quantities of one problem (settings: cpi.exact)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cpi` and its subcommands to the main CLI."""
    parser = subparsers.add_parser(
        "cpi",
        help="theory lab: Conservative Policy Iteration with random, oracle and noisy-oracle resets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=run, cpi_command=None)
    commands = parser.add_subparsers(dest="cpi_command", metavar="SUBCOMMAND")
    for name, help_text in SUBCOMMANDS.items():
        description = (f"{help_text}. Every setting is a field of the config's cpi section (`resetrl config` "
                       "lists them), set with --config/--preset/--set, e.g. --set cpi.seed=1.")
        command = commands.add_parser(name, help=help_text, description=description)
        add_config_arguments(command)
        command.add_argument(
            "--out", type=Path, default=Path("runs/cpi"), help="output folder (default %(default)s)"
        )
        command.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    if args.cpi_command is None:
        raise ResetRLError("cpi needs a subcommand: measure, run or exact (see `resetrl cpi --help`)")
    from resetrl.config import load_config
    from resetrl.cpi import plots  # matplotlib only when a figure is drawn
    from resetrl.cpi import report as reports

    config = load_config(args.config, args.preset, args.overrides).cpi
    name = args.cpi_command
    if name == "exact":
        from resetrl.cpi.grid import RESETS, exact_point

        exact = config.exact
        rows = {
            reset: exact_point(config.problem, exact.p, reset, exact.oracle_accuracy, config.certify)
            for reset in RESETS
        }
        report = reports.exact_report(config.problem, exact.p, exact.oracle_accuracy, rows)
        reports.write_results(args.out, name, {reset: asdict(point) for reset, point in rows.items()}, report)
        print(report)
        return 0
    if name == "measure":
        from resetrl.cpi.measure import run_measurement

        results = run_measurement(config, progress=not args.no_progress)
        report, plot = reports.measure_report(results), plots.plot_measurement
    else:
        from resetrl.cpi.runs import run_comparison

        results = run_comparison(config, progress=not args.no_progress)
        report, plot = reports.run_report(results), plots.plot_runs
    reports.write_results(args.out, name, results, report)
    plot(results, args.out / f"cpi_{name}.png")
    print(report)
    print(f"wrote {args.out}/{name}.json, {name}.md, cpi_{name}.png")
    return 0
