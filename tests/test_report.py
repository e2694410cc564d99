"""`resetrl report`: the page's data and escaping (no browser), the trainer and compare writing it, and
the page in headless Chromium (skipped where Chromium is missing, except under
RESETRL_REQUIRE_BROWSER=1, set by .ci/run)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from resetrl.api import write_run_results
from resetrl.cli import main
from resetrl.errors import ResetRLError
from resetrl.report import build_page, write_report
from resetrl.metrics import read_jsonl
from resetrl.report.page import markdown_to_html
from tests.browser import Browser, find_chromium
from tests.test_trainer import scripted_trainer

HOSTILE = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">&amp; \u2028'


def page_data(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    return json.loads(block.group(1))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A scripted srpo run: chains with known first errors, reset groups, localization answers."""
    folder = tmp_path_factory.mktemp("scripted-run")
    write_run_results(folder, scripted_trainer(folder, steps=3).run())  # as api.train after the run
    return folder


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A run folder written by hand whose model text tries to break out of the page."""
    folder = tmp_path_factory.mktemp("hostile-run")
    (folder / "config.yaml").write_text(yaml.safe_dump({"method": "srpo", "task": {"name": "no-such-task"}}))
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 0, "eval/accuracy": 0.5}) + "\n"
                                          + json.dumps({"step": 1, "reward/all_trained": float("nan")}) + "\n")
    base = {"problem_id": "p<1>", "step": 1, "answer": HOSTILE, "stop_reason": "answer", "new_tokens": 3,
            "first_error": None, "suffix_start": 0}
    rows = [{**base, "kind": "fresh", "group_id": 0, "thoughts": [HOSTILE, "fine"], "reward": 1.0, "advantage": 0.5,
             "reset_step": None, "reset_source": None},
            {**base, "kind": "parent", "group_id": None, "thoughts": ["ok", HOSTILE], "reward": 0.0, "advantage": 0.0,
             "reset_step": 2, "reset_source": "self:boxed", "localization": HOSTILE},
            {**base, "kind": "reset", "group_id": 1, "thoughts": ["ok", "fixed"], "reward": 1.0, "advantage": 1.0,
             "reset_step": 2, "reset_source": "self:boxed"}]
    (folder / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


# -- the page without a browser ---------------------------------------------------------------------------

def test_trainer_writes_a_self_contained_report(run_dir):
    page = (run_dir / "report.html").read_text()
    assert json.loads((run_dir / "summary.json").read_text())["report"] == "report.html"
    # Offline: nothing is fetched (no external script, stylesheet, image or font).
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)
    assert "data:image/png;base64," in page  # curves.png inlined
    rows = read_jsonl(run_dir / "rollouts.jsonl")
    data = page_data(page)
    assert len(data["items"]) == len({(r["step"], r["problem_id"]) for r in rows})
    assert sum(len(item["chains"]) for item in data["items"]) == len(rows)
    assert [row["step"] for row in data["runs"][0]["metrics"]] == [0, 1, 2, 3]


def test_items_link_continuations_to_parents_and_know_first_errors(run_dir):
    items = page_data((run_dir / "report.html").read_text())["items"]
    with_parent = [item for item in items if any(c["kind"] == "parent" for c in item["chains"])]
    assert with_parent
    for item in with_parent:
        parents = [c for c in item["chains"] if c["kind"] == "parent"]
        resets = [c for c in item["chains"] if c["kind"] == "reset"]
        assert {c["parent"] for c in resets} == set(range(len(parents)))
        for chain in resets:
            assert chain["reset_step"] == parents[chain["parent"]]["reset_step"]
        assert all(p["localization"] == "\\boxed{2}" for p in parents)  # the scripted localization answer
        assert item["question"].startswith("Start with") and item["gold"]
    chains = [c for item in items for c in item["chains"]]
    # arith_chain knows the first error of every chain (parents had theirs in rollouts.jsonl, the rest
    # come from the task); a chain with no wrong thought is right.
    assert all(c["first_error"] is not None for c in chains)
    assert any(c["first_error"] == 0 for c in chains) and any(c["first_error"] for c in chains if c["kind"] != "parent")
    assert all(c["reward"] == 1.0 for c in chains if c["first_error"] == 0)
    assert any(item["signal"] for item in items)


def test_header_gives_the_run_cost_and_the_tags_a_legend(run_dir):
    page = (run_dir / "report.html").read_text()
    rows, metrics = read_jsonl(run_dir / "rollouts.jsonl"), read_jsonl(run_dir / "metrics.jsonl")
    empty = [any(not t.strip() for t in r["thoughts"]) for r in rows]
    assert f"rollouts: {len(rows):,} chains, {sum(empty):,} with an empty thought" in page
    # The metric counts them per step (the scripted chains hold none; the count is still checked).
    per_step = defaultdict(int)
    for row, has_empty in zip(rows, empty):
        per_step[row["step"]] += has_empty
    assert all(m["chains/with_empty_thought"] == per_step[m["step"]] for m in metrics if m["step"] > 0)
    minutes = sum(m.get(k, 0.0) for m in metrics for k in ("time/step", "time/eval", "time/warmup")) / 60
    assert f"wall time: {minutes:.1f} min" in page and "generated," in page and "peak memory: " in page
    assert "what the tags mean" in page and "mixed rewards" in page and "a thought number in range" in page
    # curves.png draws the accuracy: the interactive chart starts on another metric.
    assert page_data(page)["chart_first"] == ["reward/all_trained", "update/loss"]


def _page_function(name: str) -> str:
    script = (Path(__file__).resolve().parents[1] / "resetrl" / "report" / "page.js").read_text()
    return re.search(rf"\n  function {name}\(.*?\n  }}\n", script, re.S).group(0)


@pytest.mark.skipif(not shutil.which("node"), reason="node runs the page's functions")
def test_chart_ticks_are_round_and_an_empty_thought_of_a_right_chain_is_not_an_error():
    script = _page_function("niceTicks") + _page_function("firstErrorOf") + """
      console.log(JSON.stringify([niceTicks(0.25, 0.531, 4, false), niceTicks(0, 24, 5, true), niceTicks(0, 3, 5, true),
        firstErrorOf({first_error: 2, reward: 1, thoughts: ["a", " ", "c"]}),
        firstErrorOf({first_error: 2, reward: 0, thoughts: ["a", " ", "c"]}),
        firstErrorOf({first_error: 2, reward: 1, thoughts: ["a", "b", "c"]})]));"""
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ticks_y, ticks_steps, few_steps, right_empty, wrong_empty, right_full = json.loads(result.stdout)
    assert ticks_y == [0.2, 0.3, 0.4, 0.5, 0.6]  # was 0.25 / 0.32 / 0.391 / 0.461 / 0.531
    assert ticks_steps == [0, 5, 10, 15, 20, 25] and few_steps == [0, 1, 2, 3]
    assert right_empty == {"text": "thought 2 empty, answer right", "mark": None}
    assert wrong_empty == right_full == {"text": "first error: thought 2", "mark": 2}


def test_model_text_is_escaped_and_nan_is_null(hostile_run):
    page = build_page(hostile_run)
    assert "window.__pwned" in page  # it is there, as data
    assert "<img src=x" not in page and "<script>window" not in page and "</script><script>" not in page
    data = page_data(page)
    chains = data["items"][0]["chains"]
    assert chains[0]["thoughts"][0] == HOSTILE and chains[1]["localization"] == HOSTILE  # exact round trip
    assert data["runs"][0]["metrics"][1]["reward/all_trained"] is None
    assert data["items"][0]["problem"] == "p<1>" and "p<1>" not in page
    assert "could not be rebuilt" in page  # the task is unknown here: no questions, and the page says so
    assert "curves.png could not be drawn" in page  # plot_run needs the trainer's metrics; the page goes on


def test_bad_folders_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(ResetRLError, match="no such folder"):
        build_page(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResetRLError, match="empty folder"):
        build_page(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hi")
    with pytest.raises(ResetRLError, match="not a run folder"):
        build_page(tmp_path / "other")
    with pytest.raises(ResetRLError, match="not a folder"):
        build_page(tmp_path / "other" / "notes.txt")
    assert main(["report", str(tmp_path / "empty")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("resetrl: error:") and error.count("\n") == 1


def test_unfinished_last_line_is_skipped_and_a_broken_one_named(tmp_path):
    good = json.dumps({"step": 0, "eval/accuracy": 0.1})
    (tmp_path / "metrics.jsonl").write_text(good + "\n" + '{"step": 1, "rew')  # a run still writing
    assert read_jsonl(tmp_path / "metrics.jsonl") == [json.loads(good)]
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "rew\n' + good + "\n")
    with pytest.raises(ResetRLError, match=r"metrics.jsonl:1: not a JSON line"):
        build_page(tmp_path)


def test_cli_writes_where_asked(run_dir, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>") and str(out) in capsys.readouterr().out


def test_a_failing_report_does_not_fail_the_run(tmp_path, monkeypatch, capsys):
    def broken(folder):
        raise OSError("disk full")

    monkeypatch.setattr("resetrl.report.page.build_page", broken)
    summary = scripted_trainer(tmp_path, steps=1).run()
    write_run_results(tmp_path, summary)
    assert summary["report"] is None and not (tmp_path / "report.html").exists()
    assert "report.html not written (OSError: disk full)" in capsys.readouterr().out


def test_markdown_tables_become_html():
    text = "# Comparison: a\n\n- model: <tiny>\n\n| method | acc |\n|---|---|\n| srpo | 0.5 ± 0.1 |\n\nUse `x`.\n"
    page = markdown_to_html(text)
    assert "<h2>Comparison: a</h2>" in page and "<li>model: &lt;tiny&gt;</li>" in page
    assert "<tr><td>srpo</td><td>0.5 ± 0.1</td></tr>" in page and "---" not in page
    assert "<p>Use <code>x</code>.</p>" in page


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "cmp"
    assert main(["compare", "--preset", "smoke", "--methods", "grpo,srpo", "--seeds", "1", "--out", str(out),
                 "--set", "warmup.steps=0", "--set", "task.test_size=2", "--set", "train.steps=1"]) == 0
    return out


def test_compare_writes_a_page_with_the_method_table_and_run_links(compare_dir):
    page = (compare_dir / "report.html").read_text()
    assert "<th>method</th>" in page and "<td>srpo</td>" in page  # results.md's tables
    for run in ("grpo-seed0", "srpo-seed0"):
        assert f'href="runs/{run}/report.html"' in page and (compare_dir / "runs" / run / "report.html").exists()
    data = page_data(page)
    assert [run["method"] for run in data["runs"]] == ["grpo", "srpo"]
    assert {item["run"] for item in data["items"]} == {0, 1}


# -- the page in Chromium -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        if os.environ.get("RESETRL_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here (RESETRL_REQUIRE_BROWSER=1) but not found: apt-get install -y chromium")
        pytest.skip("Chromium not installed (apt-get install -y chromium)")
    with Browser(executable) as session:
        yield session


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("RESETRL_TEST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def known_reset_item(run_dir: Path) -> tuple[str, dict, list[dict]]:
    """The explorer key of the first (step, problem) with a parent, the parent and its continuations."""
    by_key = defaultdict(list)
    for row in read_jsonl(run_dir / "rollouts.jsonl"):
        by_key[(row["step"], row["problem_id"])].append(row)
    for (step, problem), rows in by_key.items():
        parents = [r for r in rows if r["kind"] == "parent"]
        if parents and parents[0]["reset_step"] > 1:
            return f"0/{step}/{problem}", parents[0], [r for r in rows if r["kind"] == "reset"]
    raise AssertionError("the scripted run has no reset past the first thought")


def test_run_page_in_chromium(browser, run_dir, artifacts):
    started = time.perf_counter()
    browser.problems.clear()
    browser.open((run_dir / "report.html").as_uri())
    assert browser.problems == []
    assert browser.evaluate("document.querySelectorAll('#chart svg polyline').length") == 1
    key, parent, continuations = known_reset_item(run_dir)
    total = browser.evaluate("document.querySelectorAll('.item').length")
    assert browser.evaluate("document.getElementById('detail').innerText").startswith("Choose a problem")

    browser.click(f'.item[data-key="{key}"]')
    detail = browser.evaluate("document.getElementById('detail').innerText")
    step, problem = key.split("/")[1:]
    assert f"step {step} \u00b7 {problem}" in detail
    for thought in parent["thoughts"]:
        assert thought in detail
    reset_mark = browser.evaluate("Array.from(document.querySelectorAll('.parent > .thoughts .thought.reset'))"
                                  ".map(n => n.innerText)")
    assert reset_mark == [f"{parent['reset_step']} (reset here){parent['thoughts'][parent['reset_step'] - 1]}"]
    assert f"reset at thought {parent['reset_step']} ({parent['reset_source']})" in detail
    assert parent["localization"] in detail and "localization answer" in detail
    assert f"{len([c for c in continuations if c['reset_step'] == parent['reset_step']])} continuations" in detail
    assert f"task's first error: thought {parent['first_error']}" in detail
    assert "advantage " in detail

    browser.screenshot(artifacts / "report-run.png")
    # Filters: a step narrows the list; the item count says so.
    browser.evaluate(f"(() => {{ const s = document.getElementById('filter-step'); s.value = '{step}';"
                     "s.dispatchEvent(new Event('change')); })()")
    shown = browser.evaluate("document.querySelectorAll('.item').length")
    assert 0 < shown < total
    assert browser.evaluate("document.getElementById('item-count').innerText") == f"{shown} of {total} problem-steps"
    assert browser.problems == []
    print(f"browser check of the run page: {time.perf_counter() - started:.1f} s")


def test_hostile_text_stays_text_in_chromium(browser, hostile_run, tmp_path):
    page = write_report(hostile_run, tmp_path / "hostile.html")
    browser.problems.clear()
    browser.open(page.as_uri())
    browser.click(".item")
    assert browser.evaluate("window.__pwned === undefined")
    assert browser.evaluate("document.querySelectorAll('#detail img, #detail script').length") == 0
    assert HOSTILE.strip("\u2028 ").split("&amp;")[0] in browser.evaluate("document.getElementById('detail').innerText")
    assert browser.problems == []


def test_compare_page_in_chromium(browser, compare_dir, artifacts):
    browser.problems.clear()
    browser.open((compare_dir / "report.html").as_uri())
    assert browser.problems == []
    assert browser.evaluate("document.querySelectorAll('#chart svg polyline').length") == 2  # one line per run
    browser.evaluate("(() => { const s = document.getElementById('filter-method'); s.value = 'srpo';"
                     "s.dispatchEvent(new Event('change')); })()")
    keys = browser.evaluate("Array.from(document.querySelectorAll('.item')).map(n => n.dataset.key)")
    assert keys and all(key.startswith("1/") for key in keys)  # run 1 is srpo-seed0
    browser.click(".item")
    assert "srpo-seed0 (srpo)" in browser.evaluate("document.getElementById('detail').innerText")
    browser.screenshot(artifacts / "report-compare.png", full_page=True)
    assert browser.problems == []
