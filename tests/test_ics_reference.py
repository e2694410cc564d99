"""Thought-ICS against Paper B's reference code, one test per rule (docs/ics.md, "Reference settings"):
the L3 verdict parser, the L3 localizer and verification prompts, the sampling defaults, and
Token-ICS's quote search on text whose lower-casing changes length. Each default is the reference's;
each earlier behaviour stays an option, checked here too."""

from __future__ import annotations

import pytest

from resetrl.config import load_config
from resetrl.generation.base import SamplingParams
from resetrl.ics.config import ICSConfig
from resetrl.ics.engine import ICSSettings
from resetrl.ics.methods import run_method
from resetrl.ics.metrics import summarize
from resetrl.ics.pipeline import ics_settings
from resetrl.ics.verification import VERDICT_PARSERS, parse_verdict
from resetrl.localization import find_quote
from resetrl.prompts import neutral_localization_prompt, review_prompt, self_localization_prompt
from tests.test_ics import make_engine

# -- rule 12: the L3 verdict parser ------------------------------------------------------------------

REFERENCE_READINGS = [
    ("All steps hold.\n\\boxed{YES}", True, "boxed"),
    ("\\boxed{yes}", True, "boxed"),  # the box text is upper-cased first
    ("\\boxed{\\text{Yes}}", True, "boxed"),  # nested braces: the whole box text
    ("\\boxed{no}", False, "boxed"),
    ("\\boxed{EYES}", True, "boxed"),  # a substring test: YES inside a longer word counts
    ("\\boxed{KNOWN}", False, "boxed"),  # ... and so does NO
    ("\\boxed{Not sure}", False, "boxed"),
    ("\\boxed{No, yes}", True, "boxed"),  # YES is tested before NO
    ("\\boxed{YES} ... on reflection \\boxed{NO}", False, "boxed"),  # the last box
    ("\\boxed{\\boxed{YES}}", True, "boxed"),  # nested boxes: the last opening, the inner one
    ("The solution is right. YES.", False, "no_box"),  # no box at all reads as NO
    ("\\boxed{YES} but then \\boxed{YES", False, "no_box"),  # the last box never closes: NO
    ("", False, "no_box"),  # an empty answer
    ("\\boxed{}\nyes, it is correct", True, "prose"),  # a closed box with neither: the words
    ("\\boxed{42} yes, although I cannot check it", False, "prose"),  # "cannot" holds "no"
    ("\\boxed{42}", False, "default"),  # a box with neither and no yes/no anywhere: NO
]


@pytest.mark.parametrize("text, verdict, how", REFERENCE_READINGS)
def test_reference_verdict_parser(text, verdict, how):
    assert VERDICT_PARSERS.get("reference")(text) == (verdict, how)
    assert parse_verdict(text) is verdict  # the default parser is the reference's


def test_exact_parser_is_the_option_and_differs_where_the_reference_says_no():
    assert parse_verdict("The solution is right. YES.", "exact") is True
    assert parse_verdict("\\boxed{YES} but then \\boxed{YES", "exact") is True  # an earlier complete box
    assert parse_verdict("\\boxed{EYES}", "exact") is None and parse_verdict("", "exact") is None
    assert ICSConfig().verdict_parser == ICSSettings().verdict_parser == "reference"


def test_loop_reads_verdicts_by_the_chosen_parser_and_counts_how(tokenizer):
    # an unboxed "YES" certifies nothing under the reference parser; the exact parser certifies it
    for parser, exit_kind in (("reference", "max_iterations"), ("exact", "verified")):
        engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(False,), verdicts=("It is right, YES.",))
        settings = ICSSettings(level="L3", max_iters=2, verdict_parser=parser)
        (trajectory,) = run_method("thought-ics", engine, settings, problems, progress=False)
        assert trajectory.exit == exit_kind
    record = trajectory.record()["iterations"][0]["verdict"]
    assert record["votes"] == [True] and record["read_as"] == ["prose"]
    engine, _, problems = make_engine(tokenizer, n_problems=1, schedule=(False,),
                                      verdicts=("\\boxed{NO}", "no box here", "\\boxed{NO}"))
    (trajectory,) = run_method("thought-ics", engine, ICSSettings(level="L3", max_iters=3, verify_samples=3),
                               problems, progress=False)
    summary = summarize([trajectory])
    assert summary["verify/read/boxed"] == 6 and summary["verify/read/no_box"] == 3
    assert summary["verify/no_votes"] == 9 and summary["verify/yes_votes"] == 0


# -- rule 13: the L3 localizer prompt ---------------------------------------------------------------

def test_l3_localizer_prompt_is_neutral():
    prompt = neutral_localization_prompt("What is 2 + 3?", ["2 + 3 = 6", "so \\boxed{6}"])
    for element in ("Problem: What is 2 + 3?", "Step 1: 2 + 3 = 6", "Step 2: so \\boxed{6}",
                    "one step at a time", "logical flaw", "arithmetic mistake", "wrong assumption",
                    "from 1 to 2", "first critical error", "Give your reasoning",
                    "\\boxed{step number} if you found an error", "\\boxed{0} if the reasoning is correct"):
        assert element in prompt, element
    for biased in ("incorrect", "answer is wrong", "Do not solve"):  # nothing says the chain failed
        assert biased not in prompt
    assert self_localization_prompt("Q", ["a"], "L3", "5") == neutral_localization_prompt("Q", ["a"])
    hedged = self_localization_prompt("Q", ["a"], "L3", "5", l3_prompt="note")  # the option
    assert "is wrong" in hedged and "can be mistaken" in hedged and "\\boxed{0}" in hedged
    assert "Check your reasoning chain" not in self_localization_prompt("Q", ["a"], "L2", "5")  # L3 only
    assert ICSConfig().localize_prompt_l3 == ICSSettings().localize_prompt_l3 == "reference"


# -- rule 14: the L3 verification prompt and its sampling ------------------------------------------

def test_l3_verification_prompt_is_a_third_person_review_with_the_final_answer():
    prompt = review_prompt("What is 2 + 3?", "Step 1: 2 + 3 = 5, so \\boxed{5}", "5")
    for element in ("You are reviewing a solution to a problem", "right answer", "Problem: What is 2 + 3?",
                    "Solution under review:\nStep 1: 2 + 3 = 5", "Final answer: 5", "step by step",
                    "whether the final answer is correct",
                    "\\boxed{YES} if the solution is correct", "\\boxed{NO} if it contains errors"):
        assert element in prompt, element
    for first_person in ("Your solution", "your previous solution", "Do not solve"):
        assert first_person not in prompt
    assert "Final answer: (none" in review_prompt("Q", "Step 1: x", None)  # a chain that boxed nothing


def record_calls(backend, tokenizer):
    """Wrap the scripted backend so every call records (kind, sampling, token cap)."""
    calls = []
    chains, texts = backend.generate_chains, backend.generate_text

    def generate_chains(requests, sampling, limits):
        calls.append(("chain", sampling, None))
        return chains(requests, sampling, limits)

    def generate_text(prompts, sampling, max_new_tokens):
        kind = "verify" if "\\boxed{YES}" in tokenizer.decode(prompts[0]) else "localize"
        calls.append((kind, sampling, max_new_tokens))
        return texts(prompts, sampling, max_new_tokens)

    backend.generate_chains, backend.generate_text = generate_chains, generate_text
    return calls


def test_l3_round_uses_the_reference_prompts_and_sampling(tokenizer):
    # rules 14 and 20: first chain T 1.0, verifier T 0.3 with 1024 tokens, localizer T 0.3, resample
    # T 0.7; top-p 0.9 and top-k 50 on every call
    engine, backend, problems = make_engine(tokenizer, n_problems=1, schedule=(False,),
                                            localizations=("\\boxed{2}",))
    calls = record_calls(backend, tokenizer)
    run_method("thought-ics", engine, ICSSettings(level="L3", max_iters=1), problems, progress=False)
    assert calls == [("chain", SamplingParams(1.0, 0.9, 50), None),
                     ("verify", SamplingParams(0.3, 0.9, 50), 1024),
                     ("localize", SamplingParams(0.3, 0.9, 50), 256),
                     ("chain", SamplingParams(0.7, 0.9, 50), None)]
    verify_prompt, localize_prompt = backend.prompts_seen
    assert "You are reviewing a solution" in verify_prompt
    assert f"Final answer: {problems[0].answer}" not in verify_prompt  # the chain's own (wrong) answer
    assert "Final answer: " in verify_prompt and "\\boxed{0} if the reasoning is correct" in localize_prompt
    # the earlier first-person prompt stays as an option
    engine, backend, problems = make_engine(tokenizer, n_problems=1, schedule=(False,))
    run_method("thought-ics", engine, ICSSettings(level="L3", max_iters=1, verify_prompt="first-person"),
               problems, progress=False)
    assert "Your task is to check your previous solution" in backend.prompts_seen[0]
    assert "Final answer:" not in backend.prompts_seen[0]


# -- rule 20: the sampling defaults, from the config -----------------------------------------------

def test_ics_section_defaults_are_the_references():
    ics = ICSConfig()
    assert (ics.temperature, ics.resample_temperature, ics.localize_temperature, ics.verify_temperature) == (
        1.0, 0.7, 0.3, 0.3)
    assert (ics.top_p, ics.top_k, ics.verify_max_tokens) == (0.9, 50, 1024)
    assert (ics.verify_prompt, ics.verdict_parser, ics.localize_prompt_l3) == ("reference",) * 3
    for name in ("temperature", "resample_temperature", "localize_temperature", "verify_temperature", "top_p",
                 "top_k", "verify_max_tokens", "verify_prompt", "verdict_parser", "localize_prompt_l3"):
        assert "reference" in ICSConfig.model_fields[name].description, name  # each says which is the reference's
    settings = ics_settings(load_config(preset="smoke"))  # the smoke preset samples rollouts at 1.0, top-p 0.95
    assert (settings.temperature, settings.resample_temperature) == (1.0, 0.7)
    assert (settings.top_p, settings.top_k, settings.ask_top_p, settings.ask_top_k) == (0.9, 50, 0.9, 50)
    defaults = ICSSettings()
    assert (defaults.temperature, defaults.resample_temperature, defaults.localize_temperature,
            defaults.verify_temperature, defaults.top_p, defaults.top_k, defaults.verify_max_tokens) == (
        1.0, 0.7, 0.3, 0.3, 0.9, 50, 1024)


def test_settings_reject_unknown_prompt_and_parser_names():
    for field, value in (("verify_prompt", "second-person"), ("verdict_parser", "loose"), ("localize_prompt_l3", "x")):
        with pytest.raises(ValueError):
            ICSSettings(**{field: value})


# -- rule 17: Token-ICS quote search where lower-casing changes a character's length ----------------

def test_find_quote_survives_characters_that_lengthen_when_lower_cased():
    text = "İİİ x"  # "İ".lower() is two characters: the old index map ran past its end here
    assert len(text.lower()) > len(text)
    assert find_quote(text, "X") == text.index("x")  # the case-insensitive match, at the right index
    chain = "İstanbul has 3 bridges. Then 3 + 4 = 8.\nSo \\boxed{8}"
    assert find_quote(chain, "then 3 + 4 =  8") == chain.index("Then")
    assert find_quote(chain, "İSTANBUL HAS") == 0  # a quote holding the character itself
    assert find_quote(chain, "3 + 4 = 9") is None
