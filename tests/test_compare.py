"""`resetrl compare`: statistics, token bookkeeping, the report, and a tiny two-step run end to end."""

from __future__ import annotations

import json

import pytest
import yaml

from resetrl.cli import main
from resetrl.compare.aggregate import RunResult, mean_ci, read_run, summarize, tokens_to_reach
from resetrl.compare.pipeline import parse_methods
from resetrl.compare.plots import plot_sweep
from resetrl.compare.report import markdown_report
from resetrl.compare.sweep import parse_noise_levels
from resetrl.errors import ResetRLError


def test_mean_ci_uses_student_t():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / 3 ** 0.5, rel=1e-3)
    assert mean_ci([0.5]) == (0.5, 0.0)


def test_tokens_to_reach_interpolates():
    assert tokens_to_reach(0.5, [0.2, 0.4, 0.6], [0, 100, 200]) == pytest.approx(150)
    assert tokens_to_reach(0.1, [0.2, 0.4], [0, 100]) == 0
    assert tokens_to_reach(0.9, [0.2, 0.4], [0, 100]) is None


def test_read_run_accumulates_tokens_and_weights_localization(tmp_path):
    rows = [
        {"step": 0, "eval/accuracy": 0.2},
        {"step": 1, "tokens/fresh": 100, "tokens/reset": 40, "tokens/localization": 5, "groups/reset": 1,
         "localization/exact": 1.0, "localization/within_one": 1.0, "localization/clean_prefix": 1.0},
        {"step": 2, "tokens/fresh": 100, "tokens/reset": 40, "tokens/localization": 5, "groups/reset": 3,
         "localization/exact": 0.0, "localization/within_one": 1.0, "localization/clean_prefix": 0.0,
         "eval/accuracy": 0.4},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = read_run(tmp_path, "srpo", "srpo", 0)
    assert run.eval_steps == [0, 2] and run.accuracy == [0.2, 0.4]
    assert run.total_tokens == {"fresh": 200, "reset": 80, "correction": 0, "tree": 0, "localization": 10, "total": 290}
    assert run.localization["exact"] == pytest.approx(0.25)  # 1 of 4 parents, not the mean of step means
    assert run.parents == 4


def fake(series, seed, accuracy, tokens_per_step=100.0):
    tokens = [{"fresh": tokens_per_step * i, "reset": 0.0, "correction": 0.0, "tree": 0.0, "localization": 0.0,
               "total": tokens_per_step * i} for i in range(len(accuracy))]
    return RunResult(series, series, seed, list(range(len(accuracy))), accuracy, tokens)


def test_summary_pairs_seeds_and_finds_tokens_to_reference():
    results = [fake("grpo", 0, [0.2, 0.3, 0.4]), fake("grpo", 1, [0.2, 0.3, 0.4]),
               fake("srpo", 0, [0.2, 0.4, 0.5], 50.0), fake("srpo", 1, [0.2, 0.5, 0.5], 50.0)]
    summary = summarize(results)
    assert summary["target_accuracy"] == pytest.approx(0.4)
    srpo = summary["series"]["srpo"]
    assert srpo["final_minus_reference"][0] == pytest.approx(0.1)
    assert srpo["tokens_to_reference_final"] == pytest.approx(50 * (0.2 / 0.25))  # interpolated on the mean curve
    assert srpo["seeds_reaching_reference_final"] == 2
    report = markdown_report(summary, {"model": "tiny"})
    assert "| srpo | 0.200 ± 0.000 | 0.450 ± 0.635 | 0.500 ± 0.000 |" in report
    assert "tokens to reach grpo's final (0.400)" in report


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ResetRLError, match="known: .*grpo"):
        parse_methods("grpo,ppo")
    with pytest.raises(ResetRLError, match=r"\[0, 1\]"):
        parse_noise_levels("0,2")
    assert parse_noise_levels("1,0,0.5") == [0.0, 0.5, 1.0]


def test_sweep_plot(tmp_path):
    points = [{"label": "noise 0", "kind": "srpo", "localization": 0.6, "localization_ci": 0.02, "accuracy": 0.5, "accuracy_ci": 0.02},
              {"label": "noise 1", "kind": "srpo", "localization": 0.3, "localization_ci": 0.02, "accuracy": 0.45, "accuracy_ci": 0.02},
              {"label": "rrpo", "kind": "rrpo", "localization": 0.33, "localization_ci": 0.01, "accuracy": 0.46, "accuracy_ci": 0.03},
              {"label": "oracle", "kind": "oracle", "localization": 1.0, "localization_ci": 0.0, "accuracy": 0.55, "accuracy_ci": 0.03},
              {"label": "grpo", "kind": "grpo", "localization": float("nan"), "localization_ci": 0.0, "accuracy": 0.44, "accuracy_ci": 0.02}]
    assert plot_sweep(points, tmp_path / "sweep.png").stat().st_size > 1000


def test_sweep_variants_follow_the_preset(monkeypatch, tmp_path):
    """The trap sweep runs SRPO on trap-noisy-x models, never on the micro testbed's own variants."""
    from resetrl.compare import sweep
    from resetrl.micro import build
    from resetrl.models import micro as model

    built = []
    monkeypatch.setattr(model, "build_info", lambda folder: None)
    monkeypatch.setattr(build, "build_micro", lambda plan: built.append(plan) or (tmp_path, {"plan": {"preset": plan.preset}}))
    assert sweep.ensure_variant(0.5, "trap")[0] == "trap-noisy-0.5"
    assert sweep.ensure_variant(0.0, "trap")[0] == "trap"
    assert sweep.ensure_variant(0.5, "micro")[0] == "micro-noisy-0.5"
    assert [(plan.preset, plan.localizer_noise) for plan in built] == [("trap", 0.5), ("trap", 0.0), ("micro", 0.5)]


def test_compare_two_steps_on_the_tiny_model(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--preset", "smoke", "--methods", "grpo,srpo", "--seeds", "2", "--out", str(out),
            "--set", "model.name=tiny", "--set", "warmup.steps=0", "--set", "task.test_size=2",
            "--set", "train.steps=2"]
    assert main(argv) == 0
    for name in ("results.json", "results.md", "curves.png"):
        assert (out / name).exists(), name
    for run in ("grpo-seed0", "grpo-seed1", "srpo-seed0", "srpo-seed1"):
        assert (out / "runs" / run / "metrics.jsonl").exists()
    results = json.loads((out / "results.json").read_text())
    srpo = results["summary"]["series"]["srpo"]
    assert srpo["eval_steps"] == [0, 2] and srpo["seeds"] == [0, 1]
    assert results["summary"]["series"]["grpo"]["tokens_total"]["reset"][0] == 0
    report = (out / "results.md").read_text()
    assert "| grpo |" in report and "| srpo |" in report and "Token accounting" in report
    capsys.readouterr()
    assert main(argv) == 0  # a second call reuses the finished runs
    assert "4 of 4 runs already complete" in capsys.readouterr().out
    # A run made before a config section existed (here `cluster`, added later) is still reused, not re-run.
    saved = out / "runs" / "grpo-seed0" / "config.yaml"
    data = yaml.safe_load(saved.read_text())
    del data["cluster"]
    saved.write_text(yaml.safe_dump(data))
    assert main(argv) == 0
    assert "4 of 4 runs already complete" in capsys.readouterr().out
    assert "cluster" not in saved.read_text()  # the old run folder was left as it was


def test_grid_workers_end_with_a_killed_grid(tmp_path):
    """A `compare --jobs N` killed with SIGKILL leaves no worker training on (they once did)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import os, time\n"
              "from resetrl.compare.grid import worker_pool\n"
              "pool = worker_pool(1)\n"
              "print(pool.submit(os.getpid).result(), flush=True)\n"
              "pool.submit(time.sleep, 600)\n"
              "time.sleep(600)\n")
    grid = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(grid.stdout.readline())
    os.kill(worker, 0)  # alive
    grid.send_signal(signal.SIGKILL)
    grid.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError(f"pool worker {worker} outlived its killed grid process")
