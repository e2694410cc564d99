import pytest

from resetrl.localization import localization_scores, parse_localization
from resetrl.resets import clamp_step, reset_prefix_end
from resetrl.prompts import localization_prompt


def test_prompt_lists_steps():
    for variant in ("reference", "short"):
        prompt = localization_prompt("Q?", ["a", "b", "c"], variant)
        assert "Step 1: a\nStep 2: b\nStep 3: c" in prompt and "1 to 3" in prompt


def test_reference_prompt_pulls_toward_the_earliest_error():
    """Rule 4: the reference's two early-biasing sentences and its nothing-after-the-box rule."""
    reference, short = localization_prompt("Q?", ["a", "b"]), localization_prompt("Q?", ["a", "b"], "short")
    for text in ("look fine for several steps", "Stop at the first step you cannot justify",
                 "earlier verified steps", "Write nothing after the \\boxed{N}"):
        assert text in reference and text not in short
    with pytest.raises(ValueError, match="unknown localization prompt"):
        localization_prompt("Q?", ["a"], "long")


def parsed(text: str, n: int = 3, out_of_range: str = "prose") -> tuple[int, str]:
    result = parse_localization(text, n, out_of_range)
    return result.step, result.status


def test_boxed_in_range_zero_and_the_last_box():
    assert parsed("\\boxed{2}") == (2, "boxed")
    assert parsed("\\boxed{0}") == (0, "no_error")
    assert parsed("\\boxed{1} then \\boxed{2}") == (2, "boxed")  # the last box counts
    assert parsed("\\boxed{ 3 }") == (3, "boxed")  # int() strips white space
    assert parsed("\\boxed{+2}") == (2, "boxed")  # and takes a sign, as Python's int() does
    assert parsed("\\boxed{1_0}", 12) == (10, "boxed")  # and underscores


def test_out_of_range_is_not_a_step():
    """Rule 2: a boxed number outside 1..N (a model boxing its answer) falls to the last "Step k" of
    the prose when in range, else e = 1; `clamp` keeps resetrl's earlier rule."""
    assert parsed("Step 2 adds wrongly, so the answer is \\boxed{42}") == (2, "out_of_range->step_mention")
    assert parsed("the answer is \\boxed{42}") == (1, "out_of_range->1")
    assert parsed("\\boxed{-1}") == (1, "out_of_range->1")
    assert parsed("the answer is \\boxed{42}", out_of_range="clamp") == (3, "clamped")
    assert parsed("\\boxed{-4}", out_of_range="clamp") == (1, "clamped")
    with pytest.raises(ValueError, match="out_of_range"):
        parse_localization("\\boxed{2}", 3, "nearest")


def test_step_mentions_as_the_reference_reads_them():
    """Rule 15: "Step" or "step", white space, digits; the last mention only, used when 1 <= k <= N."""
    assert parsed("I think step 2 is fine but Step 3 is wrong") == (3, "step_mention")
    assert parsed("Step 2 is wrong, not step 7") == (0, "unparsed")  # the last mention is out of range
    assert parsed("STEP 2 is wrong") == (0, "unparsed")  # only a capital or lower-case s
    assert parsed("step2 is wrong") == (0, "unparsed")  # white space is required
    assert parsed("\\boxed{Step 3}") == (3, "step_mention")  # not an integer: the prose holds "Step 3"
    assert parsed("\\boxed{2.5} Step 1") == (1, "step_mention")


def test_boxes_that_do_not_count():
    assert parsed("\\boxed{\\text{2}}") == (0, "unparsed")
    assert parsed("\\boxed{2} and then \\boxed{3") == (0, "unparsed")  # the last box is unclosed
    assert parsed("\\boxed{{2}}") == (0, "unparsed")  # "{2}" is not an integer
    assert parsed("") == (0, "unparsed")
    assert parsed("no idea") == (0, "unparsed")


def test_huge_numbers_do_not_crash():
    """Rule 16: int() refuses more than 4,300 digits; the reference catches it and falls back."""
    huge = "9" * 5000
    assert parsed(f"\\boxed{{{huge}}}") == (0, "unparsed")
    assert parsed(f"\\boxed{{{huge}}} Step 2") == (2, "step_mention")
    assert parsed(f"Step {huge}") == (0, "unparsed")
    assert parsed("\\boxed{" + "1" * 400 + "} Step 1") == (1, "out_of_range->step_mention")


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
