"""Every prompt a model is shown, in one place: the thought-format chain prompt (docs/method.md section 3),
the free-text prompt of the Token-ICS baseline, the one-turn requests to localize an error, quote
one, verify a chain or refine it (sections 4 and 5), and the second-attempt requests of the SCoRe and
Critique-GRPO baselines (docs/baselines.md). Parsing the answers stays with what uses them."""

from __future__ import annotations

from typing import Sequence

from resetrl.thoughts import format_chain

PROMPT_STYLES = ("raw", "chat")

# The thought-format instructions. "reference": the reference code's training prompt, in our words
# (it asks for the single next step given the previous ones, and for steps that fit the earlier
# ones); "short": resetrl's earlier wording, which the micro testbed's tokenizers hold as one token.
INSTRUCTION_STYLES = {
    "reference": (
        "Solve the problem by producing one reasoning step at a time. Do not solve everything at once: "
        "given the steps taken so far, decide what the single next step should be, write it clearly and "
        "end it with </thought>. Each step is one complete thought, a single observation, calculation or "
        "deduction that makes progress toward the solution, has real content (no filler, no restating "
        "of the problem) and fits logically with the previous steps. When a step reaches the final "
        "answer, write it as \\boxed{answer} and end that step with </thought>.\n\n"
    ),
    "short": (
        "Solve the problem one step at a time. Each step is one thought: a single observation, "
        "calculation or deduction that makes progress. Do not solve everything at once, do not "
        "restate the problem and do not write filler. End every thought with </thought>. "
        "Write the final answer as \\boxed{answer} inside your last thought.\n\n"
    ),
}
INSTRUCTIONS = INSTRUCTION_STYLES["short"]  # the micro testbed's and the tiny model's vocabulary

UNSTRUCTURED_INSTRUCTIONS = (
    "Solve the problem. Reason step by step in plain text, then write the final answer as "
    "\\boxed{answer}.\n\n"
)

# Used when a task has no worked examples of its own.
GENERIC_EXAMPLES: list[tuple[str, list[str]]] = [
    (
        "A shop sells pens at 3 dollars each. Ana buys 4 pens and pays with a 20 dollar bill. "
        "How much change does she get?",
        ["4 pens cost 4 * 3 = 12 dollars.", "Her change is 20 - 12 = 8 dollars, so \\boxed{8}."],
    ),
    (
        "What is the sum of the first 5 positive odd numbers?",
        [
            "The first 5 positive odd numbers are 1, 3, 5, 7, 9.",
            "1 + 3 = 4, 4 + 5 = 9, 9 + 7 = 16, 16 + 9 = 25.",
            "The sum is \\boxed{25}.",
        ],
    ),
]


# -- how a prompt text reaches the model -----------------------------------------------------------

def chat_text(tokenizer, user_text: str) -> str:
    """`user_text` as one user turn through the tokenizer's chat template, ready for the reply."""
    return tokenizer.apply_chat_template([{"role": "user", "content": user_text}], tokenize=False,
                                         add_generation_prompt=True)


def chat_prompt_ids(tokenizer, user_text: str) -> list[int]:
    """Token ids of a one-turn chat prompt (the template writes its own special tokens)."""
    return tokenizer(chat_text(tokenizer, user_text), add_special_tokens=False).input_ids


def styled(text: str, tokenizer, style: str) -> str:
    """`raw`: a completion prompt (the reference code's training setting); `chat`: the same text as
    one user turn through the chat template."""
    if style == "raw":
        return text
    if style == "chat":
        return chat_text(tokenizer, text.rstrip("\n"))
    raise ValueError(f"unknown prompt style {style!r}; known: {', '.join(PROMPT_STYLES)}")


# -- solving ---------------------------------------------------------------------------------------

def question_block(question: str, examples: Sequence[tuple[str, Sequence[str]]] | None,
                   instructions: str = "short") -> str:
    """Instructions, optional worked examples, then `Q: <question>`; the chain follows on the next line."""
    parts = [INSTRUCTION_STYLES[instructions]]
    for example_question, example_thoughts in examples or []:
        parts.append(f"Q: {example_question}\n{format_chain(example_thoughts)}\n")
    parts.append(f"Q: {question}\n")
    return "".join(parts)


def build_prompt(question: str, tokenizer, style: str = "raw",
                 examples: Sequence[tuple[str, Sequence[str]]] | None = None, instructions: str = "reference") -> str:
    """The thought-format prompt text for a question (`instructions`: a key of INSTRUCTION_STYLES)."""
    return styled(question_block(question, examples, instructions), tokenizer, style)


def unstructured_prompt_text(question: str, tokenizer, style: str = "raw",
                             examples: Sequence[tuple[str, Sequence[str]]] | None = None) -> str:
    """The free-text prompt: instructions, optional worked examples written as one paragraph each,
    then `Q: <question>`."""
    parts = [UNSTRUCTURED_INSTRUCTIONS]
    for example_question, example_steps in examples or []:
        parts.append(f"Q: {example_question}\n{' '.join(example_steps)}\n\n")
    parts.append(f"Q: {question}\n")
    return styled("".join(parts), tokenizer, style)


def refine_question(question: str, steps: list[str], level: str) -> str:
    """The question of a Self-Refine turn: the problem, the previous chain and the verdict (the
    correct answer is never shown, at L1 either: it is the generator, not a localizer)."""
    verdict = "It may contain mistakes." if level == "L3" else "Its final answer is wrong."
    return (f"{question}\n\nA previous attempt at this problem:\n{format_chain(steps)}"
            f"{verdict} Review it and write a corrected solution from the start.")


# -- second attempts (SCoRe, Critique-GRPO) --------------------------------------------------------

# SCoRe's hedged request, appended after the question prompt and the first attempt: it never says
# whether the attempt was right (the reference's wording, in our words).
CORRECTION_INSTRUCTION = (
    "\n\nThere may be an error in the solution above, from a misunderstanding of the question. If "
    "there is one, correct it and rewrite the solution step by step, ending each step with </thought> "
    "and giving the final answer as \\boxed{answer}.\n"
)

CRITIQUES = {True: "The generated solution is correct.", False: "The generated solution is incorrect."}


def refinement_prompt(question: str, solution: str, correct: bool) -> str:
    """Critique-GRPO's refinement request: the question, a previous solution and a binary critique
    (the answer is never shown), asking for a corrected solution in the thought format."""
    return (
        f"Question: {question}\n\n"
        f"Previous solution:\n{solution}\n\n"
        f"Critique: {CRITIQUES[correct]}\n\n"
        "Answer the question again: correct the errors the critique points to, if there are any, "
        "reason step by step with every step ending in </thought>, and give the final answer as "
        "\\boxed{answer}. Make sure the new solution addresses the critique."
    )


# -- checking a chain (one user turn each) ---------------------------------------------------------

def numbered_steps(steps: list[str]) -> str:
    """`Step i: <text>` lines: how a thought chain is shown back to the model."""
    return "\n".join(f"Step {index}: {step}" for index, step in enumerate(steps, start=1))


LOCALIZATION_PROMPTS = ("reference", "short")


def localization_prompt(question: str, thoughts: list[str], variant: str = "reference") -> str:
    """Ask for the first erroneous thought of the model's own failed chain (SRPO; Thought-ICS).

    "reference": the reference code's request, in our words, with its two sentences that pull the
    answer toward the earliest error (an early flaw can look fine for several steps; stop at the
    first step that cannot be justified from earlier verified steps) and its rule that nothing
    follows the box. "short": resetrl's earlier wording without them (the micro testbed's
    tokenizers hold its sentences as single tokens)."""
    n = len(thoughts)
    head = ("Your task is to find the first erroneous step in your previous solution.\n\n"
            f"Problem: {question}\n\n"
            f"Your incorrect reasoning chain:\n{numbered_steps(thoughts)}\n\n")
    if variant == "short":
        return head + (
            "The final answer of this chain is wrong, so at least one step is wrong. Find the step where "
            "the key decision first went wrong: the originating step, not the step where the failure "
            "becomes visible. A step is erroneous if its claims cannot be justified from the problem and "
            "the earlier steps alone. Do not solve the problem again. Commit to exactly one step number "
            f"from 1 to {n}. End with \\boxed{{N}} on its own line, where N is the step "
            "index, not the answer.")
    if variant != "reference":
        raise ValueError(f"unknown localization prompt {variant!r}; known: {', '.join(LOCALIZATION_PROMPTS)}")
    return head + (
        "The final answer of this chain is wrong, so at least one step is wrong. Find the originating "
        "step: the one where a key decision or action first derailed the reasoning, not the step where "
        "the failure finally shows. A misreading of the problem, an unjustified assumption or a logical "
        "flaw can look fine for several steps before it surfaces in the wrong answer. A step is "
        "erroneous if its claims cannot be justified from the problem and the earlier verified steps "
        "alone. Do not solve the problem again: your only task is to name the step of that originating "
        "error.\n\n"
        "Requirements:\n"
        f"- Commit to exactly one step number from 1 to {n}.\n"
        "- Stop at the first step you cannot justify.\n"
        f"- Your last line must be \\boxed{{N}}, where N is the index (1 to {n}) of the first erroneous "
        "step above, not the answer to the problem. Write nothing after the \\boxed{N}.")


def quote_prompt(question: str, solution: str) -> str:
    """Ask the model to quote the first erroneous text of its own failed chain (Token-ICS's
    localizer; the same instructions as the thought localizer, without steps)."""
    return (
        "Your task is to find the first error in your previous solution.\n\n"
        f"Problem: {question}\n\n"
        f"Your incorrect solution:\n{solution}\n\n"
        "The final answer of this solution is wrong, so something in it is wrong. Find where the key "
        "decision first went wrong: the originating error, not where the failure becomes visible. A "
        "statement is erroneous if it cannot be justified from the problem and the text before it "
        "alone. Do not solve the problem again. Copy the first erroneous text exactly as it is written "
        "in the solution (a few words, at most one sentence) and end with \\boxed{copied text} on its "
        "own line."
    )


def level_note(level: str, correct_answer: str, no_error_answer: str) -> str:
    """The sentence a Thought-ICS level adds to a localizer prompt (L2 adds none)."""
    if level == "L1":
        return f"\n\nFor reference, the correct final answer is {correct_answer}."
    if level == "L3":
        return ("\n\nNote: that the final answer is wrong is the verdict of your own check, which can be "
                f"mistaken. If every step is justified, end with \\boxed{{{no_error_answer}}} instead.")
    return ""


def neutral_localization_prompt(question: str, thoughts: list[str]) -> str:
    """Thought-ICS at L3 (Paper B's code, the default there): nothing says the chain is wrong; check
    it step by step and box the first erroneous step, or 0 when it is correct."""
    return (
        f"Problem: {question}\n\n"
        f"Your reasoning chain:\n{numbered_steps(thoughts)}\n\n"
        "Check your reasoning chain carefully, one step at a time. If you find an error (a logical flaw, "
        "an arithmetic mistake or a wrong assumption), decide which step number, from 1 to "
        f"{len(thoughts)}, holds the first critical error.\n\n"
        "Give your reasoning and analysis, then end with:\n"
        "- \\boxed{step number} if you found an error\n"
        "- \\boxed{0} if the reasoning is correct"
    )


def self_localization_prompt(question: str, thoughts: list[str], level: str | None, correct_answer: str,
                             l3_prompt: str = "reference", variant: str = "reference") -> str:
    """The `self` localizer's prompt at a Thought-ICS level (None: training). At L3, `l3_prompt`
    "reference" is the neutral prompt of Paper B's code; "note" is the localization prompt plus the
    L3 note (it still says the answer is wrong, then hedges). `variant`: the localization prompt's
    (LOCALIZATION_PROMPTS)."""
    if level == "L3" and l3_prompt == "reference":
        return neutral_localization_prompt(question, thoughts)
    return localization_prompt(question, thoughts, variant) + level_note(level, correct_answer, "0")


def review_prompt(question: str, solution: str, final_answer: str | None) -> str:
    """Paper B's L3 self-verification as its code asks it (the default): a reviewer of "a solution",
    shown the final answer, checks the reasoning step by step and boxes YES or NO."""
    shown = final_answer if final_answer else "(none: the solution boxed no answer)"
    return (
        "You are reviewing a solution to a problem. Study it carefully to judge whether it reached the "
        "right answer.\n\n"
        f"Problem: {question}\n\n"
        f"Solution under review:\n{solution}\n\n"
        f"Final answer: {shown}\n\n"
        "Check the reasoning step by step and decide whether the final answer is correct.\n\n"
        "End with \\boxed{YES} if the solution is correct, or \\boxed{NO} if it contains errors."
    )


def verification_prompt(question: str, solution: str) -> str:
    """Ask the model to check its own solution, in the first person, without showing it the answer
    line and telling it not to solve again (resetrl's earlier L3 prompt: `ics.verify_prompt: first-person`)."""
    return (
        "Your task is to check your previous solution.\n\n"
        f"Problem: {question}\n\n"
        f"Your solution:\n{solution}\n\n"
        "Check every step against the problem and the steps before it. A step is wrong if its claims "
        "cannot be justified from the problem and the earlier steps alone. Do not solve the problem "
        "again. If every step is justified and the final answer is correct, end with \\boxed{YES} on its "
        "own line; otherwise end with \\boxed{NO}."
    )
