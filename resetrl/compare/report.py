"""The comparison as Markdown: accuracy per eval point, final accuracy against GRPO, generated tokens,
tokens to reach GRPO's final accuracy, and localization accuracy of the reset methods."""

from __future__ import annotations

from resetrl.groups import TOKEN_KINDS


def _pm(mean: float, half_width: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f} ± {half_width:.{digits}f}"


def _tokens(value: float | None) -> str:
    if value is None:
        return "not reached"
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def markdown_report(summary: dict, setup: dict) -> str:
    series = summary["series"]
    reference, target = summary.get("reference"), summary.get("target_accuracy")
    if reference is None:  # only arms: each series is paired with the reference method of its arm
        reference = summary.get("reference_method") if any("reference" in e for e in series.values()) else None
    n_seeds = max(len(entry["seeds"]) for entry in series.values())
    lines = [f"# Comparison: {', '.join(series)}", ""]
    lines += [f"- {key}: {value}" for key, value in setup.items()]
    lines += [f"- seeds: {n_seeds}; every cell is the mean ± the half-width of its 95% confidence interval "
              "(Student's t over seeds)", ""]

    steps = next(iter(series.values()))["eval_steps"]
    sampled = any("greedy_mean" in entry for entry in series.values())
    kind = "sampled pass@1 (`eval.temperature`, `eval.samples`)" if sampled else "greedy pass@1"
    lines += [f"## Held-out accuracy ({kind}) at each eval step", "",
              "| method | " + " | ".join(f"step {s}" for s in steps) + " |",
              "|---" * (len(steps) + 1) + "|"]
    for name, entry in series.items():
        cells = [_pm(m, h) for m, h in zip(entry["accuracy_mean"], entry["accuracy_ci95"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    lines += ["", "## Final accuracy, gain and generated tokens per run", ""]
    header = "| method | final accuracy | gain over step 0 |"
    if reference:
        header += f" minus {reference} (paired) | detectable difference (80% power) |"
    if sampled:
        header += " final greedy |"
    # Token columns of the kinds some series generated (fresh and reset always, as before).
    kinds = [kind for kind in TOKEN_KINDS if kind in ("fresh", "reset", "localization")
             or any(entry["tokens_total"].get(kind, (0.0,))[0] for entry in series.values())] + ["total"]
    header += "".join(f" tokens {kind} |" for kind in kinds)
    if reference:
        header += f" tokens to reach {reference}'s final ({target:.3f}) |" if target is not None else " tokens to reach |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for name, entry in series.items():
        cells = [_pm(entry["final_accuracy"], entry["final_accuracy_ci95"]), _pm(*entry["gain"])]
        if reference:
            difference = entry.get("final_minus_reference")
            own = name == entry.get("reference", reference)
            cells.append("-" if own or not difference else _pm(*difference))
            detectable = entry.get("detectable_difference")
            cells.append("-" if own or detectable is None else f"{detectable:.3f}")
        if sampled:
            cells.append(_pm(*entry["greedy_final"]) if "greedy_final" in entry else "-")
        cells += [_tokens(entry["tokens_total"][kind][0]) for kind in kinds]
        if reference and "seeds_reaching_reference_final" in entry:
            reached = entry["seeds_reaching_reference_final"]
            # An arm's series are measured against the reference of their own arm.
            other = f" of {entry['reference']}'s {entry['target_accuracy']:.3f}" if entry["reference"] != reference else ""
            cells.append(f"{_tokens(entry['tokens_to_reference_final'])}{other} "
                         f"(mean curve; {reached}/{len(entry['seeds'])} seeds reach it)")
        elif reference:
            cells.append("-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    paired = {name: entry for name, entry in series.items()
              if entry.get("minus_reference_by_step") and name != entry.get("reference")}
    if paired:
        lines += ["", f"## Paired difference to {reference} of the same arm (same seed) at each eval step", "",
                  "| series | " + " | ".join(f"step {s}" for s in steps) + " |", "|---" * (len(steps) + 1) + "|"]
        for name, entry in paired.items():
            lines.append(f"| {name} - {entry['reference']} | "
                         + " | ".join(_pm(m, h) for m, h in entry["minus_reference_by_step"]) + " |")
        lines += ["", "Detectable difference: the smallest true mean difference a paired two-sided 5% test over "
                  "these seeds would detect with 80% power, (t + 0.84) x sd / sqrt(n), with the observed sd of the "
                  "paired final differences."]

    localized = {name: entry for name, entry in series.items() if "localization" in entry}
    if localized:
        lines += ["", "## Reset point against the step checker's first error (all parents of all steps)", "",
                  "| method | exact | within one | clean prefix (at or before) | parents |", "|---|---|---|---|---|"]
        for name, entry in localized.items():
            cells = [_pm(*entry["localization"][key]) for key in ("exact", "within_one", "clean_prefix")]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {entry['parents']} |")
    lines += ["", "Token accounting: `fresh` counts every chain sampled from the prompt alone (the trained fresh "
              "group, the parent, which is sampled but never trained, and draws made while looking for a failure "
              "that were not needed); `reset` counts only the continuations' new tokens (the prefix is re-entered, "
              "not generated); `localization` counts SRPO's generated localization answers (their prompts are "
              "not counted)"
              + ("; `correction` counts SCoRe's corrections and Critique-GRPO's refinements, kept or not "
                 "(SCoRe's first attempts count as fresh)" if "correction" in kinds else "")
              + ("; `tree` counts SPO-Tree's segments, a shared segment once, and each leaf's own tokens"
                 if "tree" in kinds else "")
              + ". Evaluation tokens are not counted. Every method trains 8 rollouts per prompt."]
    return "\n".join(lines) + "\n"
