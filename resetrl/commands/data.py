"""`resetrl data check PATH`: what resetrl reads from a data file before a run trains on it (docs/data.md)."""

from __future__ import annotations

from resetrl.commands import add_config_arguments

SHOWN = 3  # problems printed as the model sees them
LISTED = 20  # gold answers the scorer rejects, listed by row


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="check your own data file (task.name=dataset)")
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    check = commands.add_parser(
        "check", help="rows per split, the fields and answer type detected, the first problems as the model "
                      "sees them, the gold answers the scorer accepts, and every bad row")
    check.add_argument("path", help="a JSONL, JSON, CSV or parquet file, a folder saved by datasets, or a "
                                    "folder with train.* and test.* files")
    add_config_arguments(check)  # the model (its chat template), task.options overrides, task.reward
    check.set_defaults(func=run_check)


def run_check(args) -> int:
    from resetrl.config import load_config
    from resetrl.models import load_model
    from resetrl.scoring import Scorer, training_reward
    from resetrl.tasks.dataset import DatasetTask
    from resetrl.thoughts import format_chain

    import json

    # The path as a YAML string: a file named `yes` or `123` stays a path.
    overrides = ["task.name=dataset", f"task.options.path={json.dumps(args.path)}", *args.overrides]
    config = load_config(args.config, args.preset, overrides)
    options = {key: value for key, value in config.task.options.items() if key != "bad_rows"}
    task = DatasetTask.checked(**options)
    parsed = task.parsed
    total = sum(len(problems) for problems in parsed.splits.values()) + len(parsed.bad)
    print(f"data: {task.path} ({total:,} rows, {len(parsed.bad):,} bad)")
    print(f"splits: {task.splits}")
    print(f"fields: {task.fields.describe()}")
    print("  (override with task.options.question_field, answer_field, solution_field, answer_type)")

    _, tokenizer = load_model(config.model.name, device="cpu")
    examples = task.examples() if config.format.examples else None
    problems = [problem for split in ("train", "test") for problem in parsed.splits.get(split, [])]
    for problem in problems[:SHOWN]:
        text, style = task.prompt_text(problem, tokenizer, config.format.prompt_style, examples,
                                       config.format.instructions)
        how = ("its chat messages through the chat template" if "messages" in problem.meta
               else f"format.prompt_style={style}")
        print(f"\n--- {problem.meta['where']} as {config.model.name} sees it ({how}) ---\n{text}\n"
              f"--- gold answer: {problem.answer!r}")
        if task.fields.solution and problem.meta.get("solution"):
            print(f"--- warm-up chain:\n{format_chain(task.reference_chain(problem))}", end="")

    unchecked = [p for p in problems if not p.answer]  # code rows without a reference solution
    problems = [p for p in problems if p.answer]
    if unchecked:
        print(f"\n{len(unchecked):,} code row(s) have no reference solution: their tests are not checked")
    scorer = Scorer(tokenizer, task, config.task.score_timeout)
    rejected = []
    for problem in problems:
        if scorer.reward(_gold_answer(task, problem), problem) != 1.0:
            rejected.append(problem)
    failures = scorer.take_stats()
    print(f"\ngold answers the task's scorer accepts (answer type {task.fields.answer_type}): "
          f"{len(problems) - len(rejected):,} / {len(problems):,}"
          + (f" ({int(failures['reward/score_errors'])} raised, {int(failures['reward/score_timeouts'])} timed out)"
             if any(failures.values()) else ""))
    for problem in rejected[:LISTED]:
        print(f"  rejected: {problem.meta['where']}: gold {problem.answer!r}")
    if rejected:
        print(f"  {'(first ' + str(LISTED) + ' listed) ' if len(rejected) > LISTED else ''}a gold that does not "
              "score 1 is a broken row or a wrong answer type (task.options.answer_type)")
    rewards = training_reward(config.task.reward, config.task.reward_weights)
    if rewards is not None:
        scorer = Scorer(tokenizer, task, config.task.score_timeout, rewards)
        values = [scorer.reward(None, p, format_chain([f"The answer is \\boxed{{{_gold_answer(task, p)}}}."]))
                  for p in problems]
        counts = ", ".join(f"{key.split('/')[-1]} {int(value)}" for key, value in scorer.take_stats().items())
        print(f"task.reward {rewards.__name__} on the gold answers: mean {sum(values) / max(len(values), 1):.3f} "
              f"({counts})")
    for where, why in parsed.bad:
        print(f"bad row: {where}: {why}")
    if parsed.bad:
        print(f"{len(parsed.bad):,} bad row(s): a run stops at the first unless task.options.bad_rows=skip")
    empty = [split for split, size in task.split_sizes().items() if size == 0]
    for split in empty:
        print(f"empty split: {split}")
    return 1 if parsed.bad or rejected or empty else 0


def _gold_answer(task, problem) -> str:
    """The gold answer as a model would box it (a code row's: the whole program)."""
    return task.program(problem.answer, problem) if task.fields.answer_type == "code" else problem.answer
