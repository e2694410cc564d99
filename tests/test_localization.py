import pytest

from resetrl.localization import clamp_step, localization_scores, parse_localization, reset_prefix_end
from resetrl.prompts import localization_prompt


def test_prompt_lists_steps():
    prompt = localization_prompt("Q?", ["a", "b", "c"])
    assert "Step 1: a\nStep 2: b\nStep 3: c" in prompt and "from 1 to 3" in prompt


def test_parser_and_fallbacks():
    assert parse_localization("\\boxed{2}", 3).status == "boxed"
    assert parse_localization("\\boxed{Step 3}", 3).step == 3
    assert parse_localization("\\boxed{0}", 3).status == "no_error"
    assert parse_localization("\\boxed{9}", 3).step == 3 and parse_localization("\\boxed{9}", 3).status == "clamped"
    mention = parse_localization("I think step 2 is fine but Step 3 is wrong", 3)
    assert (mention.step, mention.status) == (3, "step_mention")
    assert parse_localization("Step 7 is wrong", 3).status == "unparsed"  # out of range mention
    assert parse_localization("no idea", 3).status == "unparsed"
    assert parse_localization("\\boxed{1} then \\boxed{2}", 3).step == 2  # the last boxed counts


def test_chance_localization():  # moved from test_micro (micro.measure.chance_localization)
    chance = localization_scores([1, 1], [1, 3], [3, 3])
    assert chance["chance/exact"] == pytest.approx(1 / 3)
    assert chance["chance/within_one"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert chance["chance/clean_prefix"] == pytest.approx((1 / 3 + 1) / 2)


def test_localization_scores_and_reset_prefix():
    scores = localization_scores([2, 3, 1, 4], [2, 2, 3, 1])
    assert (scores["n"], scores["exact"], scores["within_one"], scores["clean_prefix"]) == (4, 0.25, 0.5, 0.5)
    assert "chance/exact" not in scores
    assert localization_scores([], [])["exact"] is None  # nothing to score, not zero
    spans = [(0, 5), (5, 9), (9, 14)]
    assert [clamp_step(step, 3) for step in (-1, 0, 1, 3, 7)] == [1, 1, 1, 3, 3]
    assert clamp_step(4, 0) == 1  # a chain without thoughts restarts from scratch
    assert [reset_prefix_end(spans, step) for step in (1, 2, 3, 9)] == [0, 5, 9, 9]
