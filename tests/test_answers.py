"""Multiple-choice and yes/no answers (CommonsenseQA, StrategyQA) and the majority-vote normal form."""

import pytest

from resetrl.tasks.answers import choice_letter, score_choice, score_yes_no, vote_key, yes_no


def test_choice_letters_in_any_dress():
    for answer in ("B", "(B)", "b", "(b)", "B) the river", "B. river", "Answer: B", "the answer is (B)"):
        assert choice_letter(answer) == "B", answer
    assert choice_letter("a lake") is None  # free text is not choice A
    assert choice_letter("river", ["bank", "river", "sea"]) == "B"  # the text of a choice
    assert choice_letter("E", ["x", "y", "z"]) is None  # no such choice
    assert score_choice("\\text{(C)}", "C") == 1.0 and score_choice("D", "C") == 0.0 and score_choice(None, "C") == 0.0


def test_yes_no():
    assert yes_no("Yes.") is True and yes_no("\\text{no}") is False and yes_no("maybe") is None
    assert yes_no("Right") is True and yes_no("wrong") is False  # the vocabulary ICS verdicts use too
    assert score_yes_no("TRUE", "yes") == 1.0 and score_yes_no("no", True) == 0.0 and score_yes_no(None, "no") == 0.0
    with pytest.raises(ValueError):
        score_yes_no("yes", "perhaps")


def test_vote_key_groups_equivalent_answers():
    assert vote_key("12") == vote_key("12.0") == vote_key(" 12 ") == "12"
    assert vote_key("(b)") == vote_key("B") == "B"
    assert vote_key("Yes") == vote_key("true") == "yes"
    assert vote_key("1,000") == "1000" and vote_key("x + 1") == "x+1"
    assert vote_key(None) is None and vote_key("  ") is None
