"""Token-ICS and free-text chains: segments, quote parsing and matching, resuming before the quote,
and the fallback to a fresh chain when the quote is not in the chain."""

from __future__ import annotations

from resetrl.ics.engine import ICSSettings
from resetrl.ics.methods import run_method
from resetrl.ics.unstructured import unstructured_attempt, unstructured_prompt_text
from resetrl.localization import find_quote, parse_quote, segment_at, segments
from resetrl.resets import locate_quote
from tests.test_ics import make_engine

CHAIN = "Start with 3.\n3 + 4 = 7. Then 7 * 2 = 15.\n15 - 1 = 14, so \\boxed{14}"


def test_segments_split_at_lines_sentences_and_delimiters():
    assert segments(CHAIN) == ["Start with 3.", "3 + 4 = 7.", "Then 7 * 2 = 15.", "15 - 1 = 14, so \\boxed{14}"]
    assert segments("1 + 2 = 3</thought>\n3 * 2 = 6</thought>") == ["1 + 2 = 3", "3 * 2 = 6"]
    assert segments("x = 3.5 so y = 7") == ["x = 3.5 so y = 7"]  # no split inside a decimal
    assert segment_at(CHAIN, CHAIN.index("7 * 2")) == 3
    assert segment_at(CHAIN, CHAIN.index("\n3 +")) == 2  # between two segments: the next one


def test_quote_parser():
    assert parse_quote('The error is here.\n\\boxed{7 * 2 = 15}') == ("7 * 2 = 15", "boxed")
    assert parse_quote('\\boxed{"7 * 2 = 15"}') == ("7 * 2 = 15", "boxed")
    assert parse_quote('I think "7 * 2 = 15" is wrong') == ("7 * 2 = 15", "quoted")
    assert parse_quote("\\boxed{NONE}") == (None, "no_error")
    assert parse_quote("no idea") == (None, "unparsed")


def test_quote_matching_exact_then_normalized():
    assert find_quote(CHAIN, "7 * 2 = 15") == CHAIN.index("7 * 2 = 15")
    assert find_quote(CHAIN, "then  7 *  2 = 15") == CHAIN.index("Then 7")  # case and spaces ignored
    assert find_quote("a</thought>\nb = 2", "a b = 2") == 0  # a delimiter counts as white space
    assert find_quote(CHAIN, "7 * 2 = 16") is None
    assert find_quote(CHAIN, "   ") is None


def test_locate_quote_found_and_fallback(tokenizer):
    engine, _, problems = make_engine(tokenizer, n_problems=1)
    ids = tokenizer(CHAIN, add_special_tokens=False).input_ids
    attempt = unstructured_attempt(engine, problems[0], [1], ids, "eos", len(ids))
    found = locate_quote(attempt, "\\boxed{7 * 2 = 15}", 5, "L2")
    assert (found.step, found.source, found.position) == (3, "quote:boxed", attempt.text.index("7 * 2"))
    missing = locate_quote(attempt, "\\boxed{8 * 8 = 64}", 5, "L2")
    assert (missing.step, missing.source, missing.position) == (1, "quote_not_found->1", 0)
    assert locate_quote(attempt, "\\boxed{NONE}", 5, "L3").step == 0  # L3: "no error" ends the loop
    assert locate_quote(attempt, "\\boxed{NONE}", 5, "L2").source == "no_error->1"


def test_free_text_chain_ends_at_its_first_answer(tokenizer):
    engine, _, problems = make_engine(tokenizer, n_problems=1)
    text = "1 + 2 = 3, so \\boxed{3}. Q: Start with 5. 5 + 5 = 10 \\boxed{10}"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    attempt = unstructured_attempt(engine, problems[0], [1], ids, "max_tokens", len(ids))
    assert attempt.answer == "3" and attempt.text.startswith("1 + 2 = 3") and "Q:" not in attempt.text
    assert attempt.steps == ["1 + 2 = 3, so \\boxed{3}"] and not attempt.structured


def test_token_ics_resumes_before_the_quote(tokenizer):
    # The quote is the chain's second line: generation resumes with the first line kept as tokens.
    engine, backend, problems = make_engine(tokenizer, n_problems=1, schedule=(False, True))
    first = run_method("token-ics", engine, ICSSettings(max_iters=0), problems, progress=False)[0].first
    second_line = first.text.split("\n")[1].replace("</thought>", "")
    engine, backend, problems = make_engine(tokenizer, n_problems=1, schedule=(False, True),
                                            quotes=(f"\\boxed{{{second_line}}}",))
    (trajectory,) = run_method("token-ics", engine, ICSSettings(level="L2", max_iters=3), problems, progress=False)
    parent, child = trajectory.iterations[0].attempt, trajectory.iterations[1].attempt
    located = trajectory.iterations[0].located
    assert located.source == "quote:boxed" and located.position == parent.text.index(second_line)
    assert child.prefix_tokens > 0 and child.response_ids[:child.prefix_tokens] == parent.response_ids[:child.prefix_tokens]
    assert tokenizer.decode(child.response_ids[:child.prefix_tokens]) == parent.text[:located.position]
    assert trajectory.exit == "verified" and child.correct
    assert any("Copy the first erroneous text" in prompt for prompt in backend.prompts_seen)


def test_token_ics_regenerates_when_the_quote_is_missing(tokenizer):
    engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(False, False, True),
                                      quotes=("\\boxed{this text is not in the chain}",))
    (trajectory,) = run_method("token-ics", engine, ICSSettings(level="L2", max_iters=3), problems, progress=False)
    assert [it.located.source for it in trajectory.iterations[:-1]] == ["quote_not_found->1"] * 2
    assert all(it.attempt.prefix_tokens == 0 and it.attempt.resumed_from == 1 for it in trajectory.iterations[1:])
    assert trajectory.exit == "verified"


def test_unstructured_prompt_has_no_thought_format(tokenizer):
    text = unstructured_prompt_text("Start with 2. Add 3. What is the result?", tokenizer,
                                    examples=[("Q1?", ["1 + 1 = 2", "so \\boxed{2}"])])
    assert "</thought>" not in text and "thought" not in text.lower()
    assert "Q: Q1?\n1 + 1 = 2 so \\boxed{2}\n" in text and text.endswith("Q: Start with 2. Add 3. What is the result?\n")
