"""A Thought-ICS run from the one config (its `ics:` section): the methods on a task's test split
into a results folder (`run_ics`), or the self-localization measurement (`run_localization`).
`resetrl ics` and `resetrl localize` only turn their flags into config fields and print."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from resetrl.config import Config
from resetrl.errors import ResetRLError
from resetrl.ics.config import ICS_ANALYSIS, ICS_COMPARED
from resetrl.ics.engine import ChainEngine, ICSSettings
from resetrl.ics.localize import case_record, measure_localization
from resetrl.ics.methods import initial_chains, run_method
from resetrl.ics.metrics import comparison_table, localization_table, summarize
from resetrl.ics.plots import plot_comparison, plot_offsets
from resetrl.runtime import build_runtime
from resetrl.tasks.base import Problem

# The methods that start from the same first chains, so that they differ only in the correction.
STRUCTURED_METHODS = ("thought-ics", "oracle-ics", "regen", "self-refine", "majority")


def ics_settings(config: Config) -> ICSSettings:
    """The engine's settings: the `ics` section; a sampling field set to null takes the rollout
    section's value (top-p/top-k: chains the rollout's, the verifier and localizer top-p 1, no top-k,
    as resetrl's localizer before 0.2)."""
    ics, rollout = config.ics, config.rollout
    return ICSSettings(
        level=ics.level, max_iters=ics.max_iters,
        temperature=_default(ics.temperature, rollout.temperature),
        resample_temperature=_default(ics.resample_temperature, rollout.temperature),
        localize_temperature=_default(ics.localize_temperature, rollout.resolved_localize_temperature),
        localize_max_tokens=rollout.localize_max_tokens,
        localize_prompt=rollout.localize_prompt, localize_out_of_range=rollout.localize_out_of_range,
        verify_temperature=_default(ics.verify_temperature, rollout.resolved_localize_temperature),
        verify_max_tokens=_default(ics.verify_max_tokens, rollout.localize_max_tokens),
        verify_samples=ics.verify_samples, verify_gate=ics.verify_gate, votes=ics.votes,
        top_p=_default(ics.top_p, rollout.top_p), top_k=_default(ics.top_k, rollout.top_k),
        ask_top_p=_default(ics.top_p, 1.0), ask_top_k=_default(ics.top_k, 0),
        verify_prompt=ics.verify_prompt, verdict_parser=ics.verdict_parser,
        localize_prompt_l3=ics.localize_prompt_l3)


def _default(value, fallback):
    return fallback if value is None else value


def default_out_dir(config: Config, prefix: str = "") -> Path:
    """runs/ics/[prefix]<model>-<task>-<level>."""
    model = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.model.name).name)
    return Path("runs") / "ics" / f"{prefix}{model}-{config.task.name.replace(':', '_')}-{config.ics.level}"


@dataclass
class ICSSetup:
    engine: ChainEngine
    settings: ICSSettings
    problems: list[Problem]


def prepare(config: Config) -> ICSSetup:
    """Model, engine, settings and the test problems (`ics.size`, default `task.test_size`)."""
    settings = ics_settings(config)
    runtime = build_runtime(config, with_lora=False)
    problems = runtime.task.problems("test", config.ics.size or config.task.test_size, config.task.seed)
    if not problems:
        raise ResetRLError(f"task {runtime.task.name!r} has no test problems")
    return ICSSetup(ChainEngine.from_runtime(runtime), settings, problems)


@dataclass
class ICSResult:
    report: dict  # summary.json: every method run into the folder so far
    summaries: dict[str, dict]  # this call's methods
    table: str  # table.md
    seconds: float  # this call's wall time


def headline_variant(config: Config) -> str:
    return config.ics.variant or ("A" if config.ics.level == "L3" else "S")


def run_ics(config: Config, out: Path) -> ICSResult:
    """Run `ics.methods` into `out`: <method>.jsonl per method, summary.json, table.md, accuracy.png.
    Methods run one at a time into the same folder share its summary and table."""
    methods = config.ics.methods
    setup = prepare(config)
    engine, settings, problems = setup.engine, setup.settings, setup.problems
    variant = headline_variant(config)
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    initial = initial_chains(engine, settings, problems) if set(methods) & set(STRUCTURED_METHODS) else None
    seconds = {"initial_chains": time.perf_counter() - started}
    summaries = {}
    for method in methods:
        started = time.perf_counter()
        trajectories = run_method(method, engine, settings, problems, initial)
        seconds[method] = time.perf_counter() - started
        summaries[method] = summarize(trajectories)
        with open(out / f"{method}.jsonl", "w") as handle:
            for trajectory in trajectories:
                handle.write(json.dumps(trajectory.record()) + "\n")

    report = {"model": config.model.name, "task": config.task.name, "task_options": config.task.options,
              "level": config.ics.level, "settings": vars(settings), "problems": [p.id for p in problems],
              "seed": config.train.seed, "variant": variant, "seconds": seconds, "tokens": {}, "methods": {}}
    report = _merge_previous(out / "summary.json", report)
    report["methods"].update(summaries)
    report["tokens"].update({method: engine.tokens for method in methods} if len(methods) == 1 else
                            {"+".join(methods): engine.tokens})
    report["seconds"].update(seconds)
    (out / "summary.json").write_text(json.dumps(report, indent=1))
    order = ICS_COMPARED[:1] + ICS_ANALYSIS + ICS_COMPARED[1:]
    ordered = {m: report["methods"][m] for m in order if m in report["methods"]}
    table = comparison_table(ordered, variant)
    localized = localization_table(ordered)
    if localized:
        table += "\n\nResampling points against the true first error (rates in %):\n\n" + localized
    (out / "table.md").write_text(table + "\n")
    plot_comparison(ordered, out / "accuracy.png",
                    f"{Path(config.model.name).name} on {config.task.name}, {config.ics.level}, "
                    f"{len(problems)} problems, L = {settings.max_iters}")
    return ICSResult(report, summaries, table, sum(seconds.values()))


def _merge_previous(path: Path, report: dict) -> dict:
    """Methods run one at a time into the same folder share one summary and table, provided the
    model, task, level, settings, problems and seed are the same (else the old summary is replaced)."""
    if not path.exists():
        return report
    previous = json.loads(path.read_text())
    same = all(previous.get(key) == report[key]
               for key in ("model", "task", "task_options", "level", "settings", "problems", "seed"))
    if not same:
        print(f"resetrl: {path} is from a different run (model, task, level, settings or problems); replacing it")
        return report
    previous["variant"] = report["variant"]
    return previous


def run_localization(config: Config, out: Path, plot: Path) -> dict:
    """Self-localization accuracy, structured vs unstructured chains (`ics.localize_samples` chains per
    problem and format) into `out`: summary.json and cases.jsonl; the offsets plot to `plot`."""
    if config.ics.level == "L3":
        raise ResetRLError("localize measures chains known to be wrong: use --level L2 (default) or L1")
    setup = prepare(config)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary, cases = measure_localization(setup.engine, setup.settings, setup.problems, config.ics.localize_samples)
    summary["seconds"] = time.perf_counter() - started
    summary["model"], summary["task"] = config.model.name, config.task.name
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    with open(out / "cases.jsonl", "w") as handle:
        for case in cases:
            handle.write(json.dumps(case_record(case)) + "\n")
    plot_offsets(summary, plot, f"{Path(config.model.name).name} on {config.task.name} ({config.ics.level}): "
                                f"self-localized vs true first error")
    return summary
