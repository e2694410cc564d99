"""`resetrl eval --suite`: the interval, the table, and a suite run end to end on the tiny model."""

import pytest

from resetrl.suite import NOT_OFFLINE, SUITES, suite_markdown, wilson_interval


def test_wilson_interval_stays_in_range_and_narrows_with_n():
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high and high - low == pytest.approx(0.192, abs=0.002)
    assert wilson_interval(500, 1000)[1] - wilson_interval(500, 1000)[0] < high - low


def test_paper_suite_names_its_missing_benchmarks():
    rows = [{"benchmark": "CommonsenseQA", "papers": "A, B", "n": 4, "accuracy": 0.25, "ci95": [0.05, 0.7],
             "answered": 0.5, "tokens_per_answer": 31.0}]
    table = suite_markdown(rows, "tiny", "paper")
    assert "| CommonsenseQA | A, B | 4 | 0.250 | 0.050-0.700 | 0.50 | 31 |" in table
    assert all(name in table for name in NOT_OFFLINE)
    assert {b.task for b in SUITES["paper"]} == {"math", "commonsenseqa", "strategyqa"}
