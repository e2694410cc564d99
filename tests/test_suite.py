"""`resetrl eval --suite`: the interval, the table, and a suite run end to end on the tiny model."""

import json

import pytest

from resetrl.suite import NOT_OFFLINE, SUITES, suite_markdown, wilson_interval


def test_wilson_interval_stays_in_range_and_narrows_with_n():
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high and high - low == pytest.approx(0.192, abs=0.002)
    assert wilson_interval(500, 1000)[1] - wilson_interval(500, 1000)[0] < high - low


def test_paper_suite_names_its_missing_benchmarks():
    rows = [{"benchmark": "CommonsenseQA", "papers": "A, B", "n": 4, "accuracy": 0.25, "ci95": [0.05, 0.7],
             "answered": 0.5, "tokens_per_answer": 31.0, "seconds_per_problem": 2.25}]
    table = suite_markdown(rows, "tiny", "paper")
    assert "| CommonsenseQA | A, B | 4 | 0.250 | 0.050-0.700 | 0.50 | 31 | 2.2 |" in table
    assert all(name in table for name in NOT_OFFLINE)
    assert {b.task for b in SUITES["paper"]} == {"math", "commonsenseqa", "strategyqa"}


def test_a_suite_shares_one_model_across_tasks(monkeypatch):
    """run_suite swaps only the task: each row is that task's own evaluation of the same model."""
    from dataclasses import replace

    from resetrl import suite as suite_module
    from resetrl.config import load_config
    from resetrl.evaluation import evaluate
    from resetrl.runtime import build_runtime
    from resetrl.suite import Benchmark, run_suite
    from resetrl.tasks import create_task

    monkeypatch.setitem(suite_module.SUITES, "two", (Benchmark("adds", "-", "arith_chain", {"steps": 1, "ops": "+"}),
                                                      Benchmark("traps", "-", "trap_chain", {"steps": 2})))
    runtime = build_runtime(load_config(None, "smoke", []))
    rows = run_suite(runtime, "two", size=6, progress=lambda _: None)
    assert [row["benchmark"] for row in rows] == ["adds", "traps"] and all(row["n"] == 6 for row in rows)
    assert type(runtime.task).__name__ == "ArithChain"  # the runtime itself keeps its own task
    trap = create_task("trap_chain", steps=2)
    direct, _ = evaluate(replace(runtime, task=trap), trap.problems("test", 6, 0))
    assert rows[1]["accuracy"] == direct["eval/accuracy"] and rows[1]["tokens_per_answer"] == direct["eval/tokens"]
    assert all(row["seconds_per_problem"] > 0 for row in rows)
    low, high = rows[1]["ci95"]
    assert low <= rows[1]["accuracy"] <= high


def test_eval_run_folder_loads_the_trained_weights(tmp_path, capsys):
    from resetrl.cli import main

    run_dir = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--set", "train.steps=1", "--out", str(run_dir)]) == 0
    out = tmp_path / "eval.json"
    assert main(["eval", "--run", str(run_dir), "--set", "eval.size=4", "--out", str(out)]) == 0
    assert "evaluating " + str(run_dir / "checkpoints" / "step_000001") in capsys.readouterr().out
    assert json.loads(out.read_text())["eval/n"] == 4
    assert main(["eval", "--run", str(tmp_path)]) == 2
    assert "not a run folder (no config.yaml)" in capsys.readouterr().err
    assert main(["eval", "--run", str(run_dir), "--preset", "smoke"]) == 2
