"""The localization sweep: SRPO's final accuracy as a function of how well the policy localizes.

Micro models are built with a fraction x of their localization labels replaced by a random step
(`resetrl micro build --localizer-noise x`; phase 1, the solver, is shared). SRPO runs on each; RRPO
(a random reset step) and oracle resets (the checker's first error) run on the clean model and mark
the two ends; GRPO gives the no-reset line. The x axis is the localization accuracy measured during
training (the reset step against the checker's first error, on the policy's own failed chains).
"""

from __future__ import annotations

from pathlib import Path

from resetrl.compare.aggregate import load_results, summarize, write_json
from resetrl.compare.grid import ConfigSource, RunSpec, run_grid
from resetrl.compare.plots import plot_sweep
from resetrl.errors import ResetRLError


def parse_noise_levels(text: str) -> list[float]:
    try:
        levels = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ResetRLError(f"--noise: expected comma-separated numbers in [0, 1], got {text!r}") from None
    if not levels or any(not 0 <= level <= 1 for level in levels):
        raise ResetRLError(f"--noise: levels must be in [0, 1], got {text!r}")
    return levels


def ensure_variant(noise: float, preset: str) -> tuple[str, dict]:
    """(model name for model.name, build info) of the seed-0 micro model with this noise; built if missing."""
    from resetrl.micro.build import BuildPlan, build_micro
    from resetrl.models.micro import build_info, micro_folder, variant_name

    name = variant_name(0, noise, preset)  # `trap-noisy-0.5` for the trap preset, never the micro model
    info = build_info(micro_folder(name))
    if not info or info.get("plan", {}).get("preset") != preset:
        print(f"resetrl: building {name} (localizer noise {noise:g})")
        _, info = build_micro(BuildPlan(localizer_noise=noise, preset=preset))
    return name, info


def localizer_sweep(source: ConfigSource, noise_levels: list[float], seeds: list[int], out: Path, jobs: int = 1,
                    with_grpo: bool = True) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    preset = source.preset or "micro"
    variants = {noise: ensure_variant(noise, preset) for noise in noise_levels}
    base_model, _ = ensure_variant(0.0, preset)
    # The clean model's series keep the plain method names, so a `compare` run of the same config in
    # the same folder is reused instead of repeated.
    labels = {noise: "srpo" if noise == 0 else f"srpo@noise{noise:g}" for noise in noise_levels}
    noise_of = {label: noise for noise, label in labels.items()}
    specs = [RunSpec("srpo", seed, labels[noise], (f"model.name={variants[noise][0]}",))
             for noise in noise_levels for seed in seeds]
    # The two ends before the GRPO line: a sweep cut short still has its own axis.
    for method in ["rrpo", "oracle"] + (["grpo"] if with_grpo else []):
        specs += [RunSpec(method, seed, method, (f"model.name={base_model}",)) for seed in seeds]
    folders = run_grid(specs, source, out / "runs", jobs)
    summary = summarize(load_results(folders, specs), reference="grpo")

    points, rows = [], []
    for name, entry in summary["series"].items():
        noise = noise_of.get(name)
        measured = entry.get("localization", {})
        exact, exact_ci = measured.get("exact", (float("nan"), 0.0))
        final, final_ci = entry["final_accuracy"], entry["final_accuracy_ci95"]
        kind = entry["method"]
        points.append({"label": name if noise is None else f"noise {noise:g}", "kind": kind, "localization": exact,
                       "localization_ci": exact_ci, "accuracy": final, "accuracy_ci": final_ci})
        build_exact = variants[noise][1]["skills"]["localization"]["exact"] if noise is not None else None
        rows.append({"series": name, "noise": noise, "build_exact": build_exact, "exact": (exact, exact_ci),
                     "within_one": measured.get("within_one"), "clean_prefix": measured.get("clean_prefix"),
                     "final": (final, final_ci), "gain": entry["gain"],
                     "minus_grpo": entry.get("final_minus_reference")})
    plot_sweep(points, out / "sweep.png")
    markdown = sweep_markdown(rows, len(seeds), source)
    (out / "sweep.md").write_text(markdown)
    write_json(out / "sweep.json", {"noise_levels": noise_levels, "seeds": seeds, "rows": rows, "points": points,
                                    "summary": summary})
    return {"summary": summary, "rows": rows, "markdown": markdown}


def sweep_markdown(rows: list[dict], n_seeds: int, source: ConfigSource) -> str:
    def pm(pair) -> str:
        # No value, or none measured (GRPO has no reset point): a dash, not "nan".
        return "-" if not pair or pair[0] != pair[0] else f"{pair[0]:.3f} ± {pair[1]:.3f}"

    lines = ["# SRPO against localization accuracy", "",
             f"Config: {source.preset or source.config_path} {' '.join(source.overrides)}; {n_seeds} seeds per row; "
             "mean ± 95% CI half-width. `exact at build`: the model's own failed test chains when it was built; "
             "the other localization columns: every parent during RL.", "",
             "| series | localizer noise | exact at build | exact during RL | within one | clean prefix | final accuracy | gain over step 0 | minus grpo (paired) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        noise = "-" if row["noise"] is None else f"{row['noise']:g}"
        build = "-" if row["build_exact"] is None else f"{row['build_exact']:.3f}"
        lines.append(f"| {row['series']} | {noise} | {build} | {pm(row['exact'])} | {pm(row['within_one'])} | "
                     f"{pm(row['clean_prefix'])} | {pm(row['final'])} | {pm(row['gain'])} | "
                     f"{'-' if row['series'] == 'grpo' else pm(row['minus_grpo'])} |")
    return "\n".join(lines) + "\n"
