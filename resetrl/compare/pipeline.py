"""`compare_methods`: run the grid, then write results.json, results.md and curves.png in one folder."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from resetrl.compare.aggregate import load_results, summarize, write_json
from resetrl.compare.grid import ConfigSource, RunSpec, method_grid, run_grid
from resetrl.compare.plots import plot_curves
from resetrl.compare.report import markdown_report
from resetrl.config import Config
from resetrl.errors import ResetRLError
from resetrl.methods import METHODS
from resetrl.report import write_report_or_warn


def parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        raise ResetRLError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; "
                           f"known: {', '.join(METHODS.names())}")
    return list(dict.fromkeys(methods))


def split_arm(text: str) -> tuple[str, list[str] | None, tuple[str, ...]]:
    """`NAME: key=value ...`, or `NAME(m1,m2): key=value ...` for an arm that runs only those methods
    -> (name, methods or None, overrides)."""
    head, colon, overrides = text.partition(":")
    name, methods = head.strip(), None
    if name.endswith(")") and "(" in name:
        name, _, listed = name[:-1].partition("(")
        name, methods = name.strip(), parse_methods(listed)
    if not name or not colon or not all(c.isalnum() or c in "-_." for c in name):
        raise ResetRLError(f"--arm {text!r}: expected 'NAME: key=value ...' or 'NAME(method,...): key=value ...' with "
                           "a new name of letters, digits, - _ . (e.g. 'sgd: train.optimizer=sgd train.lr=0.5')")
    return name, methods, tuple(overrides.split())


def parse_arms(texts: list[str], with_base: bool = True) -> dict[str, tuple[str, ...]]:
    """`--arm "sgd: train.optimizer=sgd train.lr=0.5"` -> {"sgd": ("train.optimizer=sgd", "train.lr=0.5")};
    the config as given is the arm "" unless `with_base` is false."""
    arms: dict[str, tuple[str, ...]] = {"": ()} if with_base else {}
    for text in texts:
        name, _, overrides = split_arm(text)
        if name in arms:
            raise ResetRLError(f"--arm {text!r}: expected 'NAME: key=value ...' with a new name ({name!r} is taken)")
        arms[name] = overrides
    if not arms:
        raise ResetRLError("--no-base-arm needs at least one --arm")
    return arms


def shared_lr_arms(text: str | None) -> list[str]:
    """`--shared-lr 1e-6,5e-5` -> the --arm texts 'lr1e-06: train.lr=1e-06' and 'lr5e-05: train.lr=5e-05'."""
    arms = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        try:
            rate = float(item)
        except ValueError:
            raise ResetRLError(f"--shared-lr: {item.strip()!r} is not a number (e.g. --shared-lr 1e-6,5e-5)") from None
        if rate <= 0:
            raise ResetRLError(f"--shared-lr: {item.strip()} must be above 0")
        arms.append(f"lr{rate:g}: train.lr={rate:g}")
    return arms


def arm_methods(texts: list[str]) -> dict[str, list[str]]:
    """The arms that run only some methods (`--arm "lr6e-4(grpo,oracle): train.lr=6e-4"`), by name."""
    return {name: methods for name, methods, _ in map(split_arm, texts) if methods is not None}


def describe_setup(config: Config, source: ConfigSource, methods: list[str]) -> dict:
    """What every run shares, for the report's header."""
    budgets = {m: METHODS.get(m).layout(config.rollout.layout, config.rollout.group_size).budget for m in methods}
    loss = config.train.loss if not config.train.grpo_loss else f"{config.train.loss} ({config.train.grpo_loss} for grpo)"
    return {
        "config": " + ".join(filter(None, [source.preset and f"preset {source.preset}", source.config_path])) or "defaults",
        "overrides": " ".join(source.overrides) or "none",
        "model": config.model.name + (" + LoRA" if config.model.lora else " (full fine-tune)"),
        "task": f"{config.task.name} {config.task.options}, {config.task.train_size} train / "
                f"{config.eval.size or config.task.test_size} held-out problems",
        "steps": f"{config.train.steps} x {config.train.prompts_per_step} prompts, eval every {config.eval.every or config.train.steps}",
        "trained rollouts per prompt": ", ".join(f"{m} {b}" for m, b in budgets.items())
                                       + f" (reset layout {config.rollout.layout})",
        "loss": f"{loss}, advantage {config.train.advantage}, lr {config.train.lr}",
        "sampling": f"temperature {config.rollout.temperature}, top-p {config.rollout.top_p}; "
                    f"localization temperature {config.rollout.resolved_localize_temperature}",
    }


def compare_methods(source: ConfigSource, methods: list[str], seeds: list[int], out: Path, jobs: int = 1,
                    reference: str = "grpo", specs: list[RunSpec] | None = None,
                    arms: dict[str, tuple[str, ...]] | None = None,
                    methods_of_arm: dict[str, list[str]] | None = None) -> dict:
    """Run (or reuse) every run, aggregate, and write the report files into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    specs = specs or method_grid(methods, seeds, arms, methods_of_arm)
    started = time.perf_counter()
    folders = run_grid(specs, source, out / "runs", jobs)
    results = load_results(folders, specs)
    summary = summarize(results, reference)
    setup = describe_setup(source.config_for(specs[0]), source, methods)
    if arms and list(arms) != [""]:
        setup["arms"] = "; ".join(
            f"{name or '(as given)'}{'(' + ','.join(methods_of_arm[name]) + ')' if name in (methods_of_arm or {}) else ''}: "
            f"{' '.join(overrides) or '-'}" for name, overrides in arms.items())
    setup["wall time"] = f"{(time.perf_counter() - started) / 60:.1f} min for the runs done now"
    run_seconds = [r.wall_seconds for r in results if r.wall_seconds is not None]
    if run_seconds:  # reused runs too, from their wall_seconds.txt
        setup["wall time"] += (f"; one run {min(run_seconds) / 60:.1f}-{max(run_seconds) / 60:.1f} min "
                               f"(mean {sum(run_seconds) / len(run_seconds) / 60:.1f}, {len(run_seconds)} runs)")
    write_json(out / "results.json", {"setup": setup, "summary": summary,
                                      "runs": [{**asdict(spec), "run_dir": str(folders[spec])} for spec in specs]})
    (out / "results.md").write_text(markdown_report(summary, setup))
    plot_curves(summary, out / "curves.png")
    write_report_or_warn(out)
    return summary
