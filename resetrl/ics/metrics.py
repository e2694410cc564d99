"""Paper B's self-correction metrics, from trajectories: accuracy at iteration 0 and after correction
(variants S and A from the same trajectories), lift, wrong->right and right->wrong transitions, exits
by kind, and where the task knows the true first error: localization accuracy (exact, within one
step, clean prefix = at or before) and how often a resample fixes the answer from a clean prefix
versus from a prefix that still holds the error."""

from __future__ import annotations

from collections import Counter

from resetrl.ics.loop import Trajectory
from resetrl.localization import localization_scores

VARIANTS = ("S", "A")
NOT_LOCALIZED = ("regenerate", "refine")  # statuses of baselines that do not localize


def _mean(values) -> float | None:
    values = list(values)
    return float(sum(values) / len(values)) if values else None


def summarize(trajectories: list[Trajectory]) -> dict:
    """One method's figures over its trajectories (a flat dict of numbers, None where undefined)."""
    n = len(trajectories)
    initial = [t.first.correct for t in trajectories]
    summary: dict = {"n": n, "accuracy/initial": _mean(initial)}
    for variant in VARIANTS:
        final = [t.selected[variant].correct for t in trajectories]
        accuracy = _mean(final)
        summary[f"accuracy/{variant}"] = accuracy
        summary[f"lift/{variant}"] = None if accuracy is None else accuracy - summary["accuracy/initial"]
        summary[f"wrong_to_right/{variant}"] = sum(not a and b for a, b in zip(initial, final))
        summary[f"right_to_wrong/{variant}"] = sum(a and not b for a, b in zip(initial, final))
    for kind, count in sorted(Counter(t.exit for t in trajectories).items()):
        summary[f"exits/{kind}"] = count
    summary["chains/mean"] = _mean(len(t.iterations) for t in trajectories)
    summary["tokens/mean"] = _mean(trajectory_tokens(t) for t in trajectories)

    # Localization events (not the baselines that always start over), each with the chain that followed.
    events = [(it, t.iterations[k + 1].attempt if k + 1 < len(t.iterations) else None)
              for t in trajectories for k, it in enumerate(t.iterations)
              if it.located is not None and it.located.source not in NOT_LOCALIZED]
    if events:
        statuses = Counter(it.located.source for it, _ in events)
        summary.update({f"localize/status/{status}": count for status, count in sorted(statuses.items())})
        known = [(it, after) for it, after in events if not it.attempt.correct and it.attempt.first_error]
        scored = [it for it, _ in known if it.located.step >= 1]
        scores = localization_scores([it.located.step for it in scored], [it.attempt.first_error for it in scored])
        # Unstructured chains (token-ics) are one segment: step 1 is trivially exact and a clean prefix,
        # so their figures against the true first error are left blank (docs/ics.md), not 100%.
        trivial = bool(scored) and not any(it.attempt.structured for it in scored)
        summary.update({f"localize/{key}": None if trivial and key != "n" else value for key, value in scores.items()})
        # Does resampling fix the answer more often from a clean prefix (Paper B: 2-4x)?
        for clean in (True, False):
            fixed = [after.correct for it, after in known
                     if after is not None and it.located.step >= 1
                     and (it.located.step <= it.attempt.first_error) == clean]
            label = "clean_prefix" if clean else "dirty_prefix"
            summary[f"fix_rate/{label}"] = None if trivial else _mean(fixed)
            summary[f"fix_rate/{label}_n"] = 0 if trivial else len(fixed)

    verdicts = [(it.verdict, it.attempt.correct) for t in trajectories for it in t.iterations
                if it.verdict is not None and it.verdict.votes]
    if verdicts:  # self-verification (L3) against the truth
        summary["verify/accuracy"] = _mean(v.verified == right for v, right in verdicts)
        summary["verify/yes_on_right"] = sum(v.verified and right for v, right in verdicts)
        summary["verify/yes_on_wrong"] = sum(v.verified and not right for v, right in verdicts)
        summary["verify/no_on_right"] = sum(not v.verified and right for v, right in verdicts)
        summary["verify/no_on_wrong"] = sum(not v.verified and not right for v, right in verdicts)
        summary["verify/unparsed_votes"] = sum(vote is None for v, _ in verdicts for vote in v.votes)
        summary["verify/yes_votes"] = sum(vote is True for v, _ in verdicts for vote in v.votes)
        summary["verify/no_votes"] = sum(vote is False for v, _ in verdicts for vote in v.votes)
        # how the votes were read (verification.VOTE_SOURCES): a real box, or a parser's fallback
        read_as = Counter(how for v, _ in verdicts for how in v.read_as)
        summary.update({f"verify/read/{how}": count for how, count in sorted(read_as.items())})
    return summary


def trajectory_tokens(trajectory: Trajectory) -> int:
    """Generated tokens of one problem: chains, localizer and verifier answers."""
    total = 0
    for iteration in trajectory.iterations:
        total += iteration.attempt.new_tokens
        total += iteration.verdict.tokens if iteration.verdict else 0
        total += iteration.located.tokens if iteration.located else 0
    return total


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def comparison_table(summaries: dict[str, dict], variant: str) -> str:
    """One markdown table, a row per method; accuracies in %, lifts in points, `variant` first."""
    other = "A" if variant == "S" else "S"
    header = (f"| method | acc@0 | acc {variant} | lift {variant} | w->r {variant} | r->w {variant} | acc {other} | "
              f"lift {other} | exits (verified/disagree/max/vote) | chains | tokens |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for method, s in summaries.items():
        exits = "/".join(str(s.get(f"exits/{kind}", 0)) for kind in ("verified", "disagree", "max_iterations", "vote"))
        lines.append(
            f"| {method} | {_percent(s['accuracy/initial'])} | {_percent(s[f'accuracy/{variant}'])} | "
            f"{_points(s[f'lift/{variant}'])} | {s[f'wrong_to_right/{variant}']} | {s[f'right_to_wrong/{variant}']} | "
            f"{_percent(s[f'accuracy/{other}'])} | {_points(s[f'lift/{other}'])} | {exits} | "
            f"{s['chains/mean']:.1f} | {s['tokens/mean']:.0f} |")
    return "\n".join(lines)


def localization_table(summaries: dict[str, dict]) -> str:
    """Where the loop resampled from, against the true first error, and how often that fixed the
    answer (methods that localize, on tasks that know the true first error)."""
    header = ("| method | localizations | exact | within one | clean prefix | fixed from clean prefix | "
              "fixed from dirty prefix |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for method, s in summaries.items():
        if not s.get("localize/n"):
            continue
        lines.append(
            f"| {method} | {s['localize/n']} | {_percent(s['localize/exact'])} | {_percent(s['localize/within_one'])} | "
            f"{_percent(s['localize/clean_prefix'])} | {_percent(s['fix_rate/clean_prefix'])} "
            f"(n={s['fix_rate/clean_prefix_n']}) | {_percent(s['fix_rate/dirty_prefix'])} "
            f"(n={s['fix_rate/dirty_prefix_n']}) |")
    return "\n".join(lines) if len(lines) > 2 else ""
