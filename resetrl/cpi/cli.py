"""`resetrl cpi`: the CPI theory lab on the command line (docs/cpi.md).

    resetrl cpi measure   samples to certify and improvement per iteration over grids of p and q,
                          fitted log-log slopes, JSON + Markdown + figure in --out
    resetrl cpi run       full CPI runs with random, oracle and noisy-oracle resets at one p
    resetrl cpi exact     the dynamic-programming quantities of one problem, printed
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

from resetrl.cpi.estimate import CertifyConfig
from resetrl.cpi.experiment import (
    RESETS,
    MeasureConfig,
    ProblemConfig,
    exact_point,
    markdown_report,
    run_comparison,
    run_measurement,
    run_report,
)
from resetrl.cpi.resets import RESET_DISTRIBUTIONS
from resetrl.errors import ResetRLError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cpi` and its subcommands to the main CLI."""
    common = argparse.ArgumentParser(add_help=False)
    problem = common.add_argument_group("problem (the pivot chain, see docs/cpi.md)")
    problem.add_argument(
        "--horizon", type=int, default=ProblemConfig.horizon, help="H, steps per chain (default %(default)s)"
    )
    problem.add_argument(
        "--actions",
        type=int,
        default=ProblemConfig.num_actions,
        help="|Y|, actions per step (default %(default)s)",
    )
    problem.add_argument(
        "--success-sound",
        type=float,
        default=ProblemConfig.success_sound,
        help="P(reward 1) of a sound chain (default %(default)s)",
    )
    problem.add_argument(
        "--success-error",
        type=float,
        default=ProblemConfig.success_error,
        help="P(reward 1) of a derailed chain (default %(default)s)",
    )
    problem.add_argument(
        "--tau",
        type=float,
        default=ProblemConfig.tau,
        help="improvable: some action has advantage > tau (default %(default)s)",
    )
    certify = common.add_argument_group("certification (see docs/cpi.md)")
    certify.add_argument(
        "--confidence",
        type=float,
        default=CertifyConfig.confidence,
        help="1 - delta, over all checkpoints (default %(default)s)",
    )
    certify.add_argument(
        "--margin",
        type=float,
        default=CertifyConfig.margin,
        help="stop when LCB >= margin * estimate (default %(default)s)",
    )
    certify.add_argument(
        "--max-rollouts",
        type=float,
        default=CertifyConfig.max_rollouts,
        help="give up past this many rollouts (default %(default)g)",
    )
    common.add_argument(
        "--seed", type=int, default=0, help="base seed; results are a function of it (default %(default)s)"
    )
    common.add_argument(
        "--out", type=Path, default=Path("runs/cpi"), help="output folder (default %(default)s)"
    )
    common.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    parser = subparsers.add_parser(
        "cpi",
        help="theory lab: Conservative Policy Iteration with random, oracle and noisy-oracle resets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=run, cpi_command=None)
    commands = parser.add_subparsers(dest="cpi_command", metavar="SUBCOMMAND")

    measure = commands.add_parser(
        "measure", parents=[common], help="sweep p and q, fit slopes, write JSON/Markdown/plot"
    )
    measure.add_argument(
        "--p-grid",
        default=",".join(f"{p:g}" for p in MeasureConfig.p_grid),
        help="comma-separated p values (default %(default)s)",
    )
    measure.add_argument(
        "--noisy-accuracy",
        type=float,
        default=MeasureConfig.noisy_accuracy,
        help="q of the noisy oracle in the p sweep (default %(default)s)",
    )
    measure.add_argument(
        "--q-grid",
        default=",".join(f"{q:g}" for q in MeasureConfig.q_grid),
        help="comma-separated q values (default %(default)s)",
    )
    measure.add_argument(
        "--q-sweep-p",
        type=float,
        default=MeasureConfig.q_sweep_p,
        help="p at which q is swept (default %(default)s)",
    )
    measure.add_argument(
        "--seeds",
        type=int,
        default=MeasureConfig.seeds,
        help="certification streams per grid point (default %(default)s)",
    )
    measure.add_argument(
        "--bootstrap",
        type=int,
        default=MeasureConfig.bootstrap,
        help="bootstrap resamples for slope errors (default %(default)s)",
    )

    runs = commands.add_parser("run", parents=[common], help="full CPI runs, one per reset distribution")
    runs.add_argument(
        "--p", type=float, default=0.2, help="probability of reaching the pivot (default %(default)s)"
    )
    runs.add_argument(
        "--resets", default=",".join(RESETS), help="comma-separated reset distributions (default %(default)s)"
    )
    runs.add_argument(
        "--oracle-accuracy", type=float, default=0.5, help="q of the noisy oracle (default %(default)s)"
    )
    runs.add_argument(
        "--iterations", type=int, default=300, help="CPI iterations per run (default %(default)s)"
    )
    runs.add_argument(
        "--proposal-rollouts",
        type=int,
        default=4000,
        help="reset rollouts to choose the greedy policy (default %(default)s)",
    )

    exact = commands.add_parser("exact", parents=[common], help="print the exact quantities of one problem")
    exact.add_argument(
        "--p", type=float, default=0.1, help="probability of reaching the pivot (default %(default)s)"
    )
    exact.add_argument(
        "--oracle-accuracy", type=float, default=0.5, help="q of the noisy oracle (default %(default)s)"
    )


def parse_floats(text: str, option: str) -> tuple[float, ...]:
    """'0.1,0.2' -> (0.1, 0.2); a malformed list is an error naming the option."""
    try:
        values = tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise ResetRLError(f"{option} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise ResetRLError(f"{option} is empty")
    return values


def _configs(args: argparse.Namespace) -> tuple[ProblemConfig, CertifyConfig]:
    if args.seed < 0:
        raise ResetRLError(f"--seed must be a non-negative integer, got {args.seed}")
    problem = ProblemConfig(args.horizon, args.actions, args.success_sound, args.success_error, args.tau)
    certify = CertifyConfig(confidence=args.confidence, margin=args.margin, max_rollouts=args.max_rollouts)
    return problem, certify


def _json_safe(value):
    """Strict JSON: infinite or NaN numbers (an uncertifiable point) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _write(out: Path, name: str, results: dict, report: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(_json_safe(results), indent=1, allow_nan=False) + "\n")
    (out / f"{name}.md").write_text(report)


def run(args: argparse.Namespace) -> int:
    if args.cpi_command is None:
        raise ResetRLError("cpi needs a subcommand: measure, run or exact (see `resetrl cpi --help`)")
    problem, certify = _configs(args)
    from resetrl.cpi import plots  # matplotlib only when a figure is drawn

    if args.cpi_command == "measure":
        measure = MeasureConfig(
            p_grid=parse_floats(args.p_grid, "--p-grid"),
            noisy_accuracy=args.noisy_accuracy,
            q_grid=parse_floats(args.q_grid, "--q-grid"),
            q_sweep_p=args.q_sweep_p,
            seeds=args.seeds,
            seed=args.seed,
            bootstrap=args.bootstrap,
        )
        results = run_measurement(problem, measure, certify, progress=not args.no_progress)
        report = markdown_report(results)
        _write(args.out, "measure", results, report)
        plots.plot_measurement(results, args.out / "cpi_measure.png")
        print(report)
        print(f"wrote {args.out}/measure.json, measure.md, cpi_measure.png")
        return 0

    if args.cpi_command == "run":
        resets = [name.strip() for name in args.resets.split(",") if name.strip()]
        for name in resets:
            RESET_DISTRIBUTIONS.get(name)  # an unknown name fails here, listing the known ones
        results = run_comparison(
            problem,
            args.p,
            resets,
            args.oracle_accuracy,
            args.iterations,
            args.proposal_rollouts,
            certify,
            args.seed,
            progress=not args.no_progress,
        )
        report = run_report(results)
        _write(args.out, "run", results, report)
        plots.plot_runs(results, args.out / "cpi_run.png")
        print(report)
        print(f"wrote {args.out}/run.json, run.md, cpi_run.png")
        return 0

    # exact
    rows = {reset: exact_point(problem, args.p, reset, args.oracle_accuracy, certify) for reset in RESETS}
    lines = [
        f"pivot chain H={problem.horizon} |Y|={problem.num_actions} p={args.p:g} tau={problem.tau:g} "
        f"(noisy oracle q={args.oracle_accuracy:g}), first CPI iteration from the uniform policy",
        "",
        "| reset | reach p | reset on improvable | A_mu(pi_hat) | var(x) | rollouts to certify | improvement |",
        "|---|---|---|---|---|---|---|",
    ]
    for reset, point in rows.items():
        rollouts = "inf" if math.isinf(point.rollouts) else f"{point.rollouts:.4g}"
        lines.append(
            f"| {reset} | {point.reach:.4g} | {point.improvable_mass:.4g} | {point.advantage:.4g} | "
            f"{point.variance:.4g} | {rollouts} | {point.improvement:.4g} |"
        )
    report = "\n".join(lines) + "\n"
    _write(args.out, "exact", {reset: asdict(point) for reset, point in rows.items()}, report)
    print(report)
    return 0
