from resetrl.prompts import build_prompt
from resetrl.thoughts import (THOUGHT_END, ChainLimits, closed_thought_stop, extract_boxed, format_chain,
                              split_thoughts, thought_spans)


def test_extract_boxed_balanced_and_last():
    assert extract_boxed("x \\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert extract_boxed("no answer here") is None
    assert extract_boxed("\\boxed{3} and an unclosed \\boxed{4") == "3"
    assert extract_boxed("\\boxed{ 42 }") == "42"


def test_split_thoughts_keeps_unfinished_tail():
    assert split_thoughts("a</thought>\nb</thought>\nc") == ["a", "b", "c"]
    assert split_thoughts("a</thought>\n  ") == ["a"]
    assert split_thoughts("") == []


def test_thought_spans_are_token_prefixes(tokenizer):
    text = format_chain(["7 + 5 = 12", "12 * 3 = 36, so \\boxed{36}"])
    ids = tokenizer(text, add_special_tokens=False).input_ids
    spans = thought_spans(ids, tokenizer.decode)
    assert len(spans) == 2
    assert spans[0][0] == 0 and spans[0][1] == spans[1][0]
    assert tokenizer.decode(ids[spans[1][1]:]).strip() == ""  # only the trailing newline is outside
    first = tokenizer.decode(ids[: spans[0][1]])
    assert first.endswith(THOUGHT_END) and first.count(THOUGHT_END) == 1


def test_thought_spans_with_merging_decoder():
    # A decoder where the delimiter is spread over several "tokens" (characters).
    ids = [ord(c) for c in "ab</thought>cd</thought>e"]
    decode = lambda xs: "".join(chr(x) for x in xs)
    assert thought_spans(ids, decode) == [(0, 12), (12, 24), (24, 25)]


def test_prompt_styles(tokenizer):
    raw = build_prompt("What is 2+2?", tokenizer, "raw", [("Q1", ["t1", "t2 \\boxed{1}"])])
    assert raw.endswith("Q: What is 2+2?\n") and "t1</thought>" in raw
    chat = build_prompt("What is 2+2?", tokenizer, "chat")
    assert chat.startswith("<|im_start|>user") and chat.endswith("assistant\n")


def test_stop_rules():
    limits = ChainLimits(max_thoughts=3)
    assert closed_thought_stop("so \\boxed{3}</thought>", 1, limits) == "answer"
    assert closed_thought_stop("x</thought>", 3, limits) == "max_thoughts"
    assert closed_thought_stop("x</thought>", 2, limits) is None


def test_prose_thoughts_split_sentences_but_never_math_or_figures():
    from resetrl.thoughts import prose_thoughts

    text = ("It costs \\$5. Then $x = 2. Y$ holds. So \\[a. B\\] follows.\n\n"
            "\\begin{align*} p &= 1. Q &= 2 \\end{align*} done. Draw [asy] draw(A. B); [/asy] Last one.")
    assert prose_thoughts(text) == ["It costs \\$5.", "Then $x = 2. Y$ holds.", "So \\[a. B\\] follows.",
                                     "\\begin{align*} p &= 1. Q &= 2 \\end{align*} done.",
                                     "Draw [asy] draw(A. B); [/asy] Last one."]


def test_end_with_answer_stops_the_chain_at_its_boxed_answer():
    from resetrl.thoughts import end_with_answer

    assert end_with_answer(["a.", "so \\boxed{1}.", "b.", "again \\boxed{1}.", "c."], "1") == \
        ["a.", "so \\boxed{1}. b. again \\boxed{1}."]
    assert end_with_answer(["a."], "7") == ["a.", "The answer is \\boxed{7}."]
