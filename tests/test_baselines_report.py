"""The run report's rollout explorer on SCoRe, Critique-GRPO and SPO-Tree runs: their sample kinds
and advantages in the page's data, and (where Chromium is installed) on the rendered page."""

import pytest

from resetrl.api import write_run_results
from resetrl.metrics import read_jsonl
from resetrl.report.data import run_data
from tests.test_report import browser  # noqa: F401 - the shared Chromium fixture
from tests.test_trainer import scripted_trainer

SHOWN = {"score": ("first attempt", "correction of #1", "shaped reward"),
         "critique_grpo": ("refinement", "(off-policy)", "generated, not trained"),
         "spo_tree": ("tree leaf 1.1", "(per segment)")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folders = {}
    for method in SHOWN:
        folder = tmp_path_factory.mktemp(method)
        write_run_results(folder, scripted_trainer(folder, method=method, steps=1, token_logprob=-0.5).run())
        folders[method] = folder
    return folders


@pytest.mark.parametrize("method", list(SHOWN))
def test_items_carry_the_new_kinds_and_their_advantages(runs, method):
    data = run_data(runs[method])
    chains = [chain for item in data["items"] for chain in item["chains"]]
    kinds = {chain["kind"] for chain in chains}
    expected = {"score": {"attempt", "correction"}, "critique_grpo": {"fresh", "refinement", "unused"},
                "spo_tree": {"leaf", "segment"}}[method]
    assert expected <= kinds
    if method == "score":
        assert all(c["shaped_reward"] is not None for c in chains if c["group_id"] is not None)
        assert any(c["follows"] == 0 for c in chains)
    if method == "spo_tree":
        leaves = [c for c in chains if c["kind"] == "leaf"]
        assert all(len(c["segment_advantages"]) == 2 and c["tree_path"] for c in leaves)
    rows = read_jsonl(runs[method] / "rollouts.jsonl")
    for item in data["items"]:  # every trained sample of the (step, problem) counts in its reward
        trained = [r["reward"] for r in rows if r["problem_id"] == item["problem"] and r["group_id"] is not None]
        assert item["reward"] == pytest.approx(sum(trained) / len(trained))


@pytest.mark.parametrize("method", list(SHOWN))
def test_the_explorer_shows_them(browser, runs, method):  # noqa: F811
    browser.problems.clear()
    browser.open((runs[method] / "report.html").as_uri())
    browser.click(".item")
    detail = browser.evaluate("document.getElementById('detail').innerText")
    for text in SHOWN[method]:
        assert text in detail, text
    assert browser.problems == []
