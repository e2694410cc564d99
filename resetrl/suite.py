"""`resetrl eval --suite`: one model on every offline benchmark of a suite, one table.

The `paper` suite holds the benchmarks of the two papers resetrl follows that exist offline here
(data from registry packages, docs/tasks.md); the others are listed as missing, not silently left
out. Each benchmark is greedy pass@1 on its test split with a 95% Wilson interval, the share of
answers in the expected format, and the mean generated tokens per answer.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

from resetrl.tasks import create_task


@dataclass(frozen=True)
class Benchmark:
    label: str
    papers: str  # docs/method.md's Paper A (resets, SRPO) and Paper B (Thought-ICS)
    task: str
    options: dict = field(default_factory=dict)


SUITES: dict[str, tuple[Benchmark, ...]] = {
    "paper": (
        Benchmark("MATH level 5", "A, B", "math", {"level": 5}),
        Benchmark("CommonsenseQA", "A, B", "commonsenseqa"),
        Benchmark("StrategyQA", "A", "strategyqa"),
    ),
    # Every real benchmark resetrl carries, the paper suite's and the others.
    "offline": (
        Benchmark("GSM8K", "-", "gsm8k"),
        Benchmark("MATH level 5", "A, B", "math", {"level": 5}),
        Benchmark("MATH-500", "-", "math500"),
        Benchmark("CommonsenseQA", "A, B", "commonsenseqa"),
        Benchmark("StrategyQA", "A", "strategyqa"),
        Benchmark("ARC-Challenge", "-", "arc_challenge"),
        Benchmark("HumanEval", "-", "humaneval"),
    ),
}

# The papers' benchmarks no registry package carries (offline.md), named in every paper-suite table.
NOT_OFFLINE = ("olympiad math (A)", "AceReason-Math (A)", "SciKnowEval L3 (A)", "HMMT Nov 2025 (A)",
               "LiveCodeBench v6 (A)", "AMC23 (B)", "AIME (B)", "GPQA (B)")


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a rate; unlike the normal approximation it stays inside [0, 1] at 0 or n."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def run_suite(runtime, suite: str, size: int, seed: int = 0, progress=print) -> list[dict]:
    """One row per benchmark: greedy pass@1 of `runtime`'s model on `size` test problems of each
    (fewer where the split is smaller). The model and engine are shared; only the task changes."""
    from resetrl.evaluation import evaluate  # torch: here, so `resetrl eval --help` lists SUITES fast

    rows = []
    for benchmark in SUITES[suite]:
        task = create_task(benchmark.task, **benchmark.options)
        bench_runtime = dataclasses.replace(runtime, task=task)  # its examples follow the task
        problems = task.problems("test", size, seed)
        progress(f"resetrl: suite {suite}: {benchmark.label} ({len(problems)} problems)")
        started = time.perf_counter()
        summary, _ = evaluate(bench_runtime, problems)
        n = len(problems)
        seconds = time.perf_counter() - started
        low, high = wilson_interval(summary["eval/accuracy"] * n, n)
        rows.append({"benchmark": benchmark.label, "papers": benchmark.papers, "task": benchmark.task,
                     "options": benchmark.options, "n": n, "accuracy": summary["eval/accuracy"],
                     "ci95": [low, high], "answered": summary["eval/answered"],
                     "tokens_per_answer": summary["eval/tokens"], "seconds_per_problem": seconds / max(n, 1),
                     "check_timeouts": summary.get("eval/check_timeouts", 0.0)})
    return rows


def suite_markdown(rows: list[dict], model: str, suite: str) -> str:
    lines = [f"Suite `{suite}`, model `{model}`, greedy pass@1", "",
             "| benchmark | paper | problems | accuracy | 95% interval | answer format | tokens per answer | seconds per problem |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        low, high = row["ci95"]
        lines.append(f"| {row['benchmark']} | {row['papers']} | {row['n']} | {row['accuracy']:.3f} | "
                     f"{low:.3f}-{high:.3f} | {row['answered']:.2f} | {row['tokens_per_answer']:.0f} | "
                     f"{row['seconds_per_problem']:.1f} |")
    if suite == "paper":
        lines += ["", "Not available offline (no registry package carries them): " + ", ".join(NOT_OFFLINE) + "."]
    return "\n".join(lines) + "\n"
