"""`dataset`: a user's own file as a task (`task.name=dataset`, `task.options.path=PATH`; docs/data.md).

The rows may be shaped as TRL takes them (`prompt` text or chat messages, the answer in `answer`,
`solution` or `ground_truth`, other columns passed on to TRL reward functions), as verl writes them
(`prompt` messages, `data_source`, `reward_model.ground_truth`, `extra_info`), or plainly
(`question`/`problem` + `answer`/`solution`; GSM8K's `#### n` and MATH's `\\boxed{}` are read),
multiple choice (`choices`, or `A`..`E` columns) or code (`test`/`tests` + `entry_point`). The fields
and the answer type are detected; `question_field`, `answer_field`, `solution_field` and
`answer_type` override. A worked solution becomes the warm-up's reference chain (split into thoughts
as GSM8K's and MATH's are).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from resetrl.errors import ResetRLError
from resetrl.prompts import GENERIC_EXAMPLES, question_block
from resetrl.tasks.answers import (
    CHOICE_LETTERS, NO_WORDS, YES_WORDS, choice_letter, score_choice, score_exact, score_yes_no,
)
from resetrl.tasks.base import TASKS, Problem, Task, seeded_split
from resetrl.tasks.checking import math_equal
from resetrl.tasks.choice_data import CHOICE_EXAMPLES, YES_NO_EXAMPLES
from resetrl.tasks.code_data import EXAMPLES as CODE_EXAMPLES
from resetrl.tasks.code_data import program_text
from resetrl.tasks.data_files import TEST_NAMES, RawSplits, Row, read_splits
from resetrl.tasks.math_data import boxed_gold, gsm8k_gold, gsm8k_thoughts
from resetrl.thoughts import BOXED, end_with_answer, prose_thoughts

ANSWER_TYPES = ("math", "choice", "yesno", "exact", "code")
# Where each field is looked for, in order (a dotted name reaches into a nested field).
QUESTION_FIELDS = ("prompt", "question", "problem")
ANSWER_FIELDS = ("reward_model.ground_truth", "answer", "ground_truth", "solution", "answerKey")
SOLUTION_FIELDS = ("solution", "answer", "extra_info.answer", "extra_info.solution")
TEST_FIELDS = ("test", "tests")
CHOICE_INSTRUCTION = "Answer with the letter of the right choice."
CODE_INSTRUCTION = "Write the whole Python function `{}` in \\boxed{{}} in your last thought."
DEFAULT_TEST_FRACTION = 0.1


def field_value(row: dict, name: str) -> Any:
    """A row's field by name; `a.b` is field b of the nested field a (or a column named "a.b")."""
    if name in row:
        return row[name]
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _present(rows: Sequence[Row], name: str) -> bool:
    return any(field_value(row.values, name) not in (None, "") for row in rows)


def _columns(rows: Sequence[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key, value in row.values.items():
            seen[key] = None
            if isinstance(value, dict):
                seen.update({f"{key}.{inner}": None for inner in value})
    return list(seen)


@dataclass
class Fields:
    """What each field of the rows means, detected or set by the options."""

    question: str
    answer: str | None  # None: code rows without a reference solution
    answer_type: str
    solution: str | None  # the worked solution, for warm-up chains
    choices: str | list[str] | None = None  # a list column, or the letter columns A, B, ...
    tests: str | None = None
    shape: str = "plain"  # verl | TRL | plain: how the rows are written

    def describe(self) -> str:
        parts = [f"question: {self.question}", f"answer: {self.answer or '(none)'}",
                 f"answer type: {self.answer_type}", f"worked solution: {self.solution or '(none)'}"]
        if self.choices:
            parts.append(f"choices: {self.choices if isinstance(self.choices, str) else ', '.join(self.choices)}")
        if self.tests:
            parts += [f"tests: {self.tests}", "entry point: entry_point"]
        return f"{self.shape} rows; " + "; ".join(parts)


def detect_fields(rows: Sequence[Row], question_field: str | None, answer_field: str | None,
                  solution_field: str | None, answer_type: str | None, where: str) -> Fields:
    """The fields of `rows`, each option overriding what is detected; no question or answer found is
    an error listing the columns seen and the options that set them."""
    columns = _columns(rows)
    seen = f"columns seen: {', '.join(columns) or '(none)'}"
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise ResetRLError(f"task.options.answer_type={answer_type!r}; known: {', '.join(ANSWER_TYPES)}")
    for option, name in (("question_field", question_field), ("answer_field", answer_field),
                         ("solution_field", solution_field)):
        if name is not None and not _present(rows, name):
            raise ResetRLError(f"{where}: task.options.{option}={name!r} is in no row; {seen}")
    question = question_field or next((name for name in QUESTION_FIELDS if _present(rows, name)), None)
    if question is None:
        raise ResetRLError(f"{where}: no question field found (looked for {', '.join(QUESTION_FIELDS)}); "
                           f"{seen}; set task.options.question_field")
    tests = next((name for name in TEST_FIELDS if _present(rows, name)), None)
    is_code = tests is not None and _present(rows, "entry_point")
    choices: str | list[str] | None = "choices" if _present(rows, "choices") else None
    if choices is None and all(name in columns for name in "AB"):
        choices = [letter for letter in CHOICE_LETTERS if letter in columns]
    candidates = ANSWER_FIELDS + (("canonical_solution",) if is_code else ())
    answer = answer_field or next((name for name in candidates if _present(rows, name)), None)
    if answer is None and not (is_code and answer_type in (None, "code")):
        raise ResetRLError(f"{where}: no answer field found (looked for {', '.join(ANSWER_FIELDS)}); {seen}; "
                           f"set task.options.answer_field")
    if answer_type is None:
        answer_type = ("code" if is_code else "choice" if choices else
                       _type_of_golds([field_value(row.values, answer) for row in rows]))
    if answer_type == "code" and not is_code:
        raise ResetRLError(f"{where}: answer_type=code needs a test or tests field and an entry_point field; {seen}")
    if answer_type == "choice" and not choices:
        raise ResetRLError(f"{where}: answer_type=choice needs a choices list or A, B, ... columns; {seen}")
    solution = solution_field or _worked_solution_field(rows, answer_type)
    shape = ("verl" if _present(rows, "reward_model.ground_truth") or _present(rows, "data_source")
             else "TRL" if question == "prompt" else "plain")
    return Fields(question, answer, answer_type, solution, choices if answer_type == "choice" else None,
                  tests if answer_type == "code" else None, shape)


def _type_of_golds(values: list[Any]) -> str:
    """yesno when every gold is yes/no (or a bool); math when every gold holds a digit, a LaTeX
    command or a worked solution; else exact (a name, a word)."""
    texts = [value for value in values if value not in (None, "")]
    if texts and all(isinstance(v, bool) or str(v).strip().lower() in YES_WORDS | NO_WORDS for v in texts):
        return "yesno"
    if all(re.search(r"[0-9\\]|####", str(value)) for value in texts):
        return "math"
    return "exact"


def _worked_solution_field(rows: Sequence[Row], answer_type: str) -> str | None:
    """The first field that holds a worked solution: one that boxes its answer or ends in `#### n`
    (a field that is the answer itself is no worked solution)."""
    if answer_type == "code":
        return "canonical_solution" if _present(rows, "canonical_solution") else None
    for name in SOLUTION_FIELDS:
        values = [field_value(row.values, name) for row in rows[:50]]
        if any(isinstance(value, str) and (BOXED in value or "####" in value) for value in values):
            return name
    return None


@dataclass
class Parsed:
    """A data set read and checked: the problems per split, and every bad row (where, why)."""

    splits: dict[str, list[Problem]]
    fields: Fields
    origin: str  # how the train/test split was found
    bad: list[tuple[str, str]] = field(default_factory=list)
    test_fraction: float | None = None  # the held-out share, when the data has no test split


def _messages(value: Any) -> list[dict] | None:
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m and "content" in m
                                                  for m in value):
        return [{"role": str(m["role"]), "content": m["content"]} for m in value]
    return None


def _choice_texts(row: dict, fields: Fields) -> list[str] | None:
    if isinstance(fields.choices, list):
        return [str(row[letter]) for letter in fields.choices if row.get(letter) not in (None, "")]
    value = field_value(row, "choices")
    if isinstance(value, dict) and isinstance(value.get("text"), list):  # {"text": [...], "label": [...]}
        value = value["text"]
    if isinstance(value, list) and value and len(value) <= len(CHOICE_LETTERS):
        return [str(choice) for choice in value]
    return None


def _gold(value: Any, fields: Fields, choices: list[str] | None) -> str:
    """The gold answer of a row, as the scorer compares it; ValueError says why a row has none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"no answer in {fields.answer!r}")
    kind = fields.answer_type
    if kind == "code":
        return str(value)
    if kind == "choice":
        if isinstance(value, bool) or not (isinstance(value, (int, str))):
            raise ValueError(f"answer {value!r} is neither a letter, an index nor a choice's text")
        text = str(value).strip()
        letter = None if text.isdigit() else choice_letter(text, choices)
        index = int(text) if text.isdigit() else CHOICE_LETTERS.index(letter) if letter else -1
        if not 0 <= index < len(choices):
            raise ValueError(f"answer {value!r} is not among its {len(choices)} choices")
        return CHOICE_LETTERS[index]
    if kind == "yesno":
        word = ("yes" if value else "no") if isinstance(value, bool) else str(value).strip().lower()
        if word in YES_WORDS:
            return "yes"
        if word in NO_WORDS:
            return "no"
        raise ValueError(f"answer {value!r} is not yes or no")
    text = str(value).strip()
    if "####" in text:
        gold = gsm8k_gold(text)
    elif BOXED in text or "\\boxed " in text:
        gold = boxed_gold(text)
    else:
        gold = text
    if not gold:
        raise ValueError(f"answer field {fields.answer!r} holds no answer after its #### or \\boxed{{}}")
    return gold


def _check_source(row: dict) -> str:
    """HumanEval's `def check(candidate)` as is; a list of assert lines (MBPP) wrapped in one."""
    tests = field_value(row, "test") if field_value(row, "test") not in (None, "") else field_value(row, "tests")
    if isinstance(tests, str) and re.search(r"^def check\(", tests, re.MULTILINE):
        return tests
    lines = tests if isinstance(tests, list) else str(tests).splitlines()
    body = [f"    {line.strip()}" for line in lines if str(line).strip()]
    if not body:
        raise ValueError("no tests")
    return "def check(candidate):\n" + "\n".join(body) + "\n"


def build_problem(row: Row, fields: Fields, split: str, index: int) -> Problem:
    """One row as a Problem; ValueError says what is wrong with a bad row."""
    values = row.values
    prompt = field_value(values, fields.question)
    messages = _messages(prompt)
    if messages is not None:
        users = [i for i, message in enumerate(messages) if message["role"] == "user"]
        if not users:
            raise ValueError(f"the chat prompt in {fields.question!r} has no user message")
        messages = messages[:users[-1] + 1]
        question = str(messages[-1]["content"]).strip()
    elif isinstance(prompt, (str, int, float)) and str(prompt).strip():
        question = str(prompt).strip()
    elif prompt in (None, ""):
        raise ValueError(f"no question in {fields.question!r}")
    else:
        raise ValueError(f"{fields.question!r} is neither text nor a list of chat messages")
    meta: dict[str, Any] = {"where": row.where, "prompt": messages if messages is not None else question,
                            "columns": {k: v for k, v in values.items() if k != fields.question}}
    choices = None
    if fields.answer_type == "choice":
        choices = _choice_texts(values, fields)
        if not choices:
            raise ValueError("no choices (a list of up to 10 texts, or A, B, ... columns)")
        listed = "\n".join(f"{letter}. {choice}" for letter, choice in zip(CHOICE_LETTERS, choices))
        question = f"{question}\n{listed}\n{CHOICE_INSTRUCTION}"
        meta["choices"] = choices
    elif fields.answer_type == "yesno" and "yes or no" not in question.lower():
        question = f"{question} Answer yes or no."
    elif fields.answer_type == "code":
        if not values.get("entry_point"):
            raise ValueError("no entry_point")
        meta.update(test=_check_source(values), entry_point=str(values["entry_point"]))
        question = f"{question}\n{CODE_INSTRUCTION.format(meta['entry_point'])}"
    gold_value = field_value(values, fields.answer) if fields.answer else None
    answer = "" if fields.answer_type == "code" and gold_value in (None, "") else _gold(gold_value, fields, choices)
    if fields.solution:
        solution = field_value(values, fields.solution)
        meta["solution"] = str(solution) if solution not in (None, "") else None
    for name in ("data_source", "extra_info"):
        if name in values:
            meta[name] = values[name]
    ground_truth = field_value(values, "reward_model.ground_truth")
    if ground_truth is not None:
        meta["ground_truth"] = ground_truth
    if messages is not None:
        meta["messages"] = messages
    return Problem(id=f"{split}-{index}", question=question, answer=answer, meta=meta)


def _named_splits(raw: RawSplits, where: str) -> tuple[dict[str, list[Row]], str]:
    """train and (when the data has one) test rows: the data's own splits, or a `split` column."""
    rows, origin = dict(raw.rows), raw.origin
    if list(rows) == ["all"] and any("split" in row.values for row in rows["all"]):
        grouped: dict[str, list[Row]] = {}
        for row in rows["all"]:
            grouped.setdefault(str(row.values.get("split", "")).strip(), []).append(row)
        rows, origin = grouped, "the split column"
    elif list(rows) == ["all"]:
        return {"train": rows["all"]}, ""
    test = next((name for name in TEST_NAMES if name in rows), None)
    unknown = [name for name in rows if name not in ("train", test)]
    if "train" not in rows or unknown:
        raise ResetRLError(f"{where}: splits {', '.join(map(repr, rows))} ({origin}); need train, and test "
                           f"(or {', '.join(TEST_NAMES[1:])}), nothing else")
    named = {"train": rows["train"]}
    if test is not None:
        named["test"] = rows[test]
        if test != "test":
            origin += f"; test = {test}"
    return named, origin


def parse_dataset(path: str, question_field: str | None = None, answer_field: str | None = None,
                  solution_field: str | None = None, answer_type: str | None = None,
                  test_fraction: float | None = None) -> Parsed:
    """Read the data at `path`, detect its fields and build every row's Problem; bad rows are
    collected (where, why), not raised: the caller decides."""
    raw = read_splits(path)
    where = Path(path).name
    splits, origin = _named_splits(raw, where)
    if "test" in splits and test_fraction is not None:
        raise ResetRLError(f"{where}: the data has its own test split ({origin}); drop task.options.test_fraction")
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise ResetRLError(f"task.options.test_fraction must be in (0, 1), got {test_fraction}")
    every_row = [row for rows in splits.values() for row in rows]
    if not every_row:
        raise ResetRLError(f"{where}: no rows")
    fields = detect_fields(every_row, question_field, answer_field, solution_field, answer_type, where)
    problems: dict[str, list[Problem]] = {}
    bad: list[tuple[str, str]] = []
    for split, rows in splits.items():
        problems[split] = []
        for index, row in enumerate(rows):
            try:
                problems[split].append(build_problem(row, fields, split, index))
            except ValueError as error:
                bad.append((row.where, str(error)))
    share = None
    if "test" not in problems:
        share = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
        origin = f"no test split in the data: a seeded held-out share of {share:g} (task.options.test_fraction)"
    return Parsed(problems, fields, origin, bad, share)


@TASKS.register("dataset")
class DatasetTask(Task):
    """Your own data: a JSONL, JSON, CSV or parquet file or a saved datasets folder (docs/data.md).

    Knobs: `path` (required); `question_field`, `answer_field`, `solution_field` (dotted names reach
    into nested fields) and `answer_type` (math | choice | yesno | exact | code) override what is
    detected; `test_fraction` the held-out share when the data has no test split (default 0.1);
    `bad_rows` error (default) or skip (skipped rows are counted and said)."""

    name = "dataset"
    splits = ("from the data: a split column, train.*/test.* files, a DatasetDict's splits, or a seeded "
              "held-out share (test_fraction); `resetrl data check PATH` says which")

    def __init__(self, path: str | None = None, question_field: str | None = None, answer_field: str | None = None,
                 solution_field: str | None = None, answer_type: str | None = None,
                 test_fraction: float | None = None, bad_rows: str = "error"):
        if not path:
            raise ResetRLError("task dataset needs task.options.path: a JSONL, JSON, CSV or parquet file or a "
                               "datasets folder (docs/data.md)")
        if bad_rows not in ("error", "skip"):
            raise ResetRLError(f"task.options.bad_rows must be error or skip, got {bad_rows!r}")
        self._load(str(path), parse_dataset(str(path), question_field, answer_field, solution_field, answer_type,
                                            test_fraction))
        if self.parsed.bad and bad_rows == "error":
            where, why = self.parsed.bad[0]
            more = f" ({len(self.parsed.bad) - 1} more bad row(s))" if len(self.parsed.bad) > 1 else ""
            raise ResetRLError(f"{where}: {why}{more}; task.options.bad_rows=skip skips and counts them, "
                               f"`resetrl data check {self.path}` lists them")
        print(f"resetrl: dataset {self.path}: {self.splits}; {self.fields.describe()}")
        self.skipped = len(self.parsed.bad)
        if self.skipped:
            where, why = self.parsed.bad[0]
            print(f"resetrl: dataset {self.path}: skipped {self.skipped} bad row(s) (task.options.bad_rows=skip; "
                  f"first: {where}: {why})")

    @classmethod
    def checked(cls, path: str | None = None, **options) -> "DatasetTask":
        """The task with its bad rows left out and kept in `parsed.bad`, for `resetrl data check`."""
        if not path:
            raise ResetRLError("resetrl data check needs a PATH")
        task = cls.__new__(cls)
        task._load(str(path), parse_dataset(str(path), **options))
        return task

    def _load(self, path: str, parsed: Parsed) -> None:
        self.path, self.parsed, self.fields = path, parsed, parsed.fields
        sizes = self.split_sizes()
        self.splits = f"train {sizes['train']:,} / test {sizes['test']:,} ({parsed.origin or 'the data'})"

    def _rows(self, split: str) -> list[Problem]:
        """Every problem of `split`, in the data's order."""
        if split not in ("train", "test"):
            raise ResetRLError(f"dataset: unknown split {split!r}; known: test, train")
        if self.parsed.test_fraction is None:
            rows = self.parsed.splits[split]
        else:
            everything = self.parsed.splits["train"]
            chosen = seeded_split(range(len(everything)), split, self.parsed.test_fraction,
                                  f"dataset:{Path(self.path).name}", None, 0)
            rows = [everything[index] for index in sorted(chosen)]
        if not rows:
            raise ResetRLError(f"dataset {self.path}: the {split} split is empty ({self.parsed.origin})")
        return rows

    def split_sizes(self) -> dict[str, int]:
        sizes = {}
        for split in ("train", "test"):
            try:
                sizes[split] = len(self._rows(split))
            except ResetRLError:
                sizes[split] = 0
        return sizes

    def problems(self, split: str, size: int | None, seed: int) -> list[Problem]:
        rows = self._rows(split)
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        return [rows[index] for index in (order if size is None else order[:size])]

    def score(self, answer: str | None, problem: Problem) -> float:
        kind = self.fields.answer_type
        if answer is None:
            return 0.0
        if kind == "math":
            return math_equal(answer, problem.answer)
        if kind == "choice":
            return score_choice(answer, problem.answer, problem.meta["choices"])
        if kind == "yesno":
            return score_yes_no(answer, problem.answer)
        if kind == "exact":
            return score_exact(answer, problem.answer)
        from resetrl.tasks.sandbox import run_tests

        if not answer.strip():
            return 0.0
        return run_tests(self.program(answer, problem), problem.meta["test"], problem.meta["entry_point"]).fraction

    @staticmethod
    def program(code: str, problem: Problem) -> str:
        """The program a code answer makes: a whole function alone; a body (HumanEval's canonical
        solutions) after the row's prompt, which holds the signature."""
        if re.search(rf"\bdef\s+{re.escape(problem.meta['entry_point'])}\s*\(", code):
            return program_text(code, "")
        prompt = problem.meta["prompt"]
        return program_text(code, prompt if isinstance(prompt, str) else "")

    def reference_chain(self, problem: Problem) -> list[str]:
        solution = problem.meta.get("solution")
        if not solution:
            raise ResetRLError(f"dataset: {problem.meta['where']} has no worked solution for a warm-up chain "
                               f"(worked solution field: {self.fields.solution or 'none found'}); set "
                               "task.options.solution_field or warmup.steps=0")
        if self.fields.answer_type == "code":
            return [f"\\boxed{{{self.program(solution, problem).strip()}}}"]
        if "####" in solution:
            return gsm8k_thoughts(solution, problem.answer)
        thoughts = prose_thoughts(solution)
        if self.fields.answer_type == "math":
            return end_with_answer(thoughts, problem.answer)
        return [t for t in thoughts if BOXED not in t] + [f"So the answer is \\boxed{{{problem.answer}}}."]

    def examples(self) -> list[tuple[str, list[str]]]:
        return {"choice": CHOICE_EXAMPLES, "yesno": YES_NO_EXAMPLES, "code": CODE_EXAMPLES}.get(
            self.fields.answer_type, GENERIC_EXAMPLES)

    def prompt_text(self, problem: Problem, tokenizer, style: str,
                    examples: Sequence[tuple[str, Sequence[str]]] | None,
                    instructions: str = "reference") -> tuple[str, str]:
        """A chat-list prompt goes through the model's chat template, whatever format.prompt_style
        says: its earlier turns (a system message) as written, its last user turn holding the
        thought-format instructions, the examples and the question."""
        messages = problem.meta.get("messages")
        if messages is None:
            return super().prompt_text(problem, tokenizer, style, examples, instructions)
        if not getattr(tokenizer, "chat_template", None):
            raise ResetRLError(f"dataset {self.path}: its prompts are chat messages and the model's tokenizer "
                               "has no chat template")
        turn = {"role": "user", "content": question_block(problem.question, examples, instructions).rstrip("\n")}
        text = tokenizer.apply_chat_template(messages[:-1] + [turn], tokenize=False, add_generation_prompt=True)
        return text, "chat"
