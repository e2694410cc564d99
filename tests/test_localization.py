from resetrl.localization import parse_localization
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
