"""The trap-chain testbed (docs/trap.md): the generator, its corrupted training data, the checker,
build names per preset."""

import random
import re

import pytest

from resetrl.config import load_config
from resetrl.errors import ResetRLError
from resetrl.micro.build import BuildPlan, micro_config
from resetrl.micro.data import solver_examples
from resetrl.tasks import create_task

STEP = re.compile(r"^(-?\d+) ([+-]) (\d+) = (-?\d+)")


def parse(thought):
    start, op, operand, result = STEP.match(thought).groups()
    return int(start), op, int(operand), int(result)


def corrupted_steps(task, problem, chain):
    """1-indexed steps whose written result is not (written input) op operand."""
    wrong = []
    for step, thought in enumerate(chain, start=1):
        start, op, operand, result = parse(thought)
        if result != (start + operand if op == "+" else start - operand):
            wrong.append(step)
    return wrong


def test_problems_are_easy_and_checked_against_true_values():
    task = create_task("trap_chain")
    problems = task.problems("train", 200, seed=0)
    for problem in problems:
        assert len(problem.meta["program"]) == 8
        assert all(op in "+-" and 1 <= operand <= 3 for op, operand in problem.meta["program"])
        reference = task.reference_chain(problem)
        assert task.first_error(problem, reference) == 0
        assert task.score(re.search(r"boxed\{(-?\d+)", reference[-1]).group(1), problem) == 1.0
    test_questions = {p.question for p in task.problems("test", 500, seed=0)}
    assert not test_questions & {p.question for p in problems}


def test_training_chain_is_wrong_at_the_trap_and_continues_from_the_wrong_value():
    task = create_task("trap_chain", steps=6, trap_step=3)
    problem = task.problems("train", 1, seed=0)[0]
    for seed in range(50):
        chain = task.training_chain(problem, random.Random(seed))
        # each thought starts from the value the previous one wrote
        for before, after in zip(chain, chain[1:]):
            assert parse(after)[0] == parse(before)[3]
        assert corrupted_steps(task, problem, chain) in ([], [3])
        if corrupted_steps(task, problem, chain):
            assert task.first_error(problem, chain) == 3
            assert task.score(re.search(r"boxed\{(-?\d+)", chain[-1]).group(1), problem) == 0.0
            assert parse(chain[2])[3] == problem.meta["values"][2] + 1


@pytest.mark.parametrize("slip_noise", [0.0, 0.03, 0.15])
def test_corruption_rates(slip_noise):
    task = create_task("trap_chain", slip_noise=slip_noise)
    problems = task.problems("train", 3000, seed=0)
    trap, slips = 0, 0
    for problem in problems:
        wrong = corrupted_steps(task, problem, task.training_chain(problem, random.Random(problem.id)))
        trap += 8 in wrong
        slips += sum(step != 8 for step in wrong)
    assert trap / len(problems) == pytest.approx(0.6, abs=0.03)
    assert slips / (7 * len(problems)) == pytest.approx(slip_noise, abs=0.01)


def test_first_error_is_the_earliest_slip():
    task = create_task("trap_chain", slip_noise=0.5)
    checked = 0
    for problem in task.problems("train", 100, seed=0):
        chain = task.training_chain(problem, random.Random(problem.id))
        wrong = corrupted_steps(task, problem, chain)
        if wrong:
            assert task.first_error(problem, chain) == wrong[0]
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("options, message", [({"trap_step": 9}, "trap_step must be in 1..steps"),
                                              ({"trap_wrong": 1.5}, r"trap_wrong must be in \[0, 1\]"),
                                              ({"slip_noise": -0.1}, r"slip_noise must be in \[0, 1\]")])
def test_bad_knobs_are_one_line_errors(options, message):
    with pytest.raises(ResetRLError, match=message):
        create_task("trap_chain", **options)


def test_solver_examples_hold_the_corrupted_chains_deterministically(tokenizer):
    task = create_task("trap_chain", trap_wrong=1.0)
    problems = task.problems("train", 5, seed=0)
    examples = solver_examples(task, tokenizer, lambda p: [1], problems, seed=0)
    assert examples == solver_examples(task, tokenizer, lambda p: [1], problems, seed=0)
    for problem, (_, response) in zip(problems, examples):
        text = tokenizer.decode(response)
        assert f"\\boxed{{{int(problem.answer) + 1}}}" in text  # wrong at the last step, every time
    arith = create_task("arith_chain")
    problem = arith.problems("train", 1, seed=0)[0]
    assert arith.training_chain(problem, random.Random(0)) == arith.reference_chain(problem)


def test_build_names_follow_the_preset():
    assert BuildPlan().name() == "micro" and BuildPlan(seed=2, localizer_noise=0.5).name() == "micro-noisy-0.5-seed2"
    assert BuildPlan(preset="trap").name() == "trap"
    assert BuildPlan(preset="trap", overrides=("task.options.slip_noise=0.15",)).name() == "trap-slip0.15"
    assert BuildPlan(preset="trap", hidden_size=64, solver_steps=100).name() == "trap"  # sizes: in micro_build.json
    assert BuildPlan(preset="trap", seed=1, overrides=("task.options.trap_wrong=0.5",)).name() == "trap-trapwrong0.5-seed1"
    config = micro_config(BuildPlan(preset="trap", overrides=("task.options.slip_noise=0.03",)))
    assert config.task.name == "trap_chain" and config.task.options["slip_noise"] == 0.03
    with pytest.raises(ResetRLError, match="needs an arith_chain or trap_chain preset"):
        micro_config(BuildPlan(preset="trap", overrides=("task.name=gsm8k",)))


def test_a_build_with_another_plan_does_not_replace_a_model(tmp_path, monkeypatch):
    import json

    from resetrl.micro import build

    monkeypatch.setattr(build, "micro_folder", lambda name: tmp_path / name)
    (tmp_path / "trap").mkdir()
    (tmp_path / "trap" / "micro_build.json").write_text(json.dumps({"plan": json.loads(json.dumps(
        build.asdict(BuildPlan(preset="trap"))))}))
    build.check_replaceable(BuildPlan(preset="trap"))  # the same plan again: a rebuild, allowed
    with pytest.raises(ResetRLError, match=r"'trap' already exists.*solver_steps 800 -> 1600.*--name"):
        build.check_replaceable(BuildPlan(preset="trap", solver_steps=1600))
    named = BuildPlan(preset="trap", solver_steps=1600, custom_name="trap-long")
    assert named.name() == "trap-long"
    build.check_replaceable(named)  # a new name: nothing to replace
    with pytest.raises(ResetRLError, match="--name must be a plain name"):
        build.build_micro(BuildPlan(preset="trap", custom_name="../elsewhere"))


def test_build_cli_rejects_a_bad_size(capsys):
    from resetrl.cli import main

    assert main(["micro", "build", "--preset", "trap", "--layers", "0"]) != 0
    assert "--layers must be at least 1" in capsys.readouterr().err


def test_trap_preset_asks_for_sampled_evaluation():
    config = load_config(preset="trap")
    assert config.task.name == "trap_chain" and config.task.test_size >= 512
    assert config.eval.temperature > 0 and config.eval.samples >= 4


def test_phrasings_open_each_thought_with_a_uniform_connective_and_change_nothing_else():
    from collections import Counter

    from resetrl.tasks.trap_chain import CONNECTIVES, connective_of

    plain = create_task("trap_chain", steps=12)
    phrased = create_task("trap_chain", steps=12, phrasings=8)
    counts, position_counts = Counter(), Counter()
    for problem in phrased.problems("train", 400, seed=0):
        chain = phrased.training_chain(problem, random.Random(problem.id))
        unphrased = plain.training_chain(problem, random.Random(problem.id))
        # same corruptions (drawn first), the connective is the only change, the checker reads through it
        assert [t[len(connective_of(t)) + 1:] for t in chain] == unphrased
        assert phrased.first_error(problem, chain) == plain.first_error(problem, unphrased)
        for position, thought in enumerate(chain):
            counts[connective_of(thought)] += 1
            position_counts[(position, connective_of(thought))] += 1
    assert set(counts) == set(CONNECTIVES)
    share = [n / sum(counts.values()) for n in counts.values()]
    assert max(share) - min(share) < 0.03  # uniform over the 8 (4,800 draws)
    assert len(position_counts) == 12 * 8  # drawn independently per thought: every pair occurs
    null = create_task("trap_chain", steps=12, phrasings=1)
    problem = null.problems("train", 1, seed=0)[0]
    assert {connective_of(t) for t in null.training_chain(problem, random.Random(0))} == {"Then,"}
    assert connective_of("7 + 2 = 9") == "" and connective_of("We get -1 - 2 = -3") == "We get"
    with pytest.raises(ResetRLError, match=r"phrasings must be in 0\.\.8"):
        create_task("trap_chain", phrasings=9)


def test_phrased_presets_build_their_named_models_and_the_tokenizer_knows_the_connectives():
    from resetrl.micro.model import build_micro_tokenizer
    from resetrl.tasks.trap_chain import CONNECTIVES

    for s in (8, 1):
        config = load_config(preset=f"trap-phrased{s}")
        assert BuildPlan(preset=f"trap-phrased{s}").name() == config.model.name == f"trap-phrased{s}"
        assert config.task.options["steps"] == 12 and config.task.options["phrasings"] == s
        assert config.format.max_thoughts == 14 and config.format.max_total_tokens == 260
    tokenizer = build_micro_tokenizer(create_task("trap_chain", steps=2, phrasings=8))
    for connective in CONNECTIVES:  # a word of a connective is one token, not spelled in bytes
        words = connective.replace(",", " ,").replace(":", " :").split()
        assert len(tokenizer(connective, add_special_tokens=False).input_ids) <= 2 * len(words)
