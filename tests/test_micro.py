"""The micro testbed: tokenizer, training data of both skills, the step checker's labels, noise,
variant names, and a whole (tiny) build saved to and loaded from the cache."""

from __future__ import annotations

import random

import pytest
import torch

from resetrl.config import load_config
from resetrl.errors import ResetRLError
from resetrl.micro import REGISTERED_NAMES, variant_name
from resetrl.micro.data import (FailedChain, localization_answer_ids, localization_examples, noisy_label,
                                sample_own_failures, solver_examples)
from resetrl.micro.model import build_micro_tokenizer, prompt_phrases
from resetrl.runtime import Runtime
from resetrl.tasks import create_task
from resetrl.prompts import INSTRUCTIONS, chat_prompt_ids, localization_prompt, question_block
from resetrl.thoughts import BOXED, THOUGHT_END, ChainLimits, format_chain
from resetrl.generation.base import SamplingParams
from tests.conftest import ScriptedBackend


@pytest.fixture(scope="module")
def task():
    return create_task("arith_chain", steps=3)


@pytest.fixture(scope="module")
def micro_tokenizer(task):
    return build_micro_tokenizer(task)


def prompt_ids_for(tokenizer, task, overrides=("format.examples=false",)):
    """The trainer's own prompt builder (Runtime.prompt_ids) for the micro preset's format."""
    config = load_config(preset="micro", overrides=list(overrides))
    return Runtime(config, None, tokenizer, task, None, None, None).prompt_ids


def test_tokenizer_units(micro_tokenizer, task):
    tokens = micro_tokenizer.tokenize("12 * 345 = 4140")
    assert [t for t in tokens if t.isdigit()] == list("123454140")  # one token per digit
    for whole in (THOUGHT_END, BOXED, INSTRUCTIONS, *prompt_phrases()):
        assert len(micro_tokenizer(whole, add_special_tokens=False).input_ids) == 1, whole[:40]
    problem = task.problems("test", 1, 0)[0]
    text = question_block(problem.question, None) + format_chain(task.reference_chain(problem))
    ids = micro_tokenizer(text, add_special_tokens=False).input_ids
    assert micro_tokenizer.decode(ids) == text
    assert len(ids) < 80  # the instructions paragraph is one token


def test_localization_prompt_through_chat_template_round_trips(micro_tokenizer, task, tmp_path):
    problem = task.problems("test", 1, 0)[0]
    user_text = localization_prompt(problem.question, task.reference_chain(problem), "short")
    ids = chat_prompt_ids(micro_tokenizer, user_text)
    assert user_text in micro_tokenizer.decode(ids)
    assert micro_tokenizer.unk_token_id not in ids
    micro_tokenizer.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert chat_prompt_ids(reloaded, user_text) == ids


def test_solver_examples_use_the_trainer_prompt(micro_tokenizer, task):
    problems = task.problems("train", 3, 0)
    prompt_ids = prompt_ids_for(micro_tokenizer, task)
    for problem, (prompt, response) in zip(problems, solver_examples(task, micro_tokenizer, prompt_ids, problems)):
        assert prompt == prompt_ids(problem)
        assert micro_tokenizer.decode(response) == format_chain(task.reference_chain(problem))


def test_failed_chains_are_labelled_by_the_step_checker(micro_tokenizer, task):
    problems = task.problems("train", 6, 0)
    backend = ScriptedBackend(micro_tokenizer, problems, p_right=0.4, seed=1)
    prompt_ids = prompt_ids_for(micro_tokenizer, task)
    failures, sampled = sample_own_failures(backend, micro_tokenizer, task, prompt_ids, problems, 4,
                                            SamplingParams(), ChainLimits())
    assert sampled == 24 and failures
    for failure in failures:
        values = failure.problem.meta["values"]
        # the scripted chains are wrong from one step on: the label is the first wrong running value
        wrong = [i for i, thought in enumerate(failure.thoughts, start=1)
                 if int(thought.split("=")[1].split(",")[0]) != values[i - 1]]
        assert failure.first_error == wrong[0]


def test_localization_examples_and_noise(micro_tokenizer, task):
    problem = task.problems("train", 1, 0)[0]
    thoughts = ["1 + 1 = 2", "2 + 2 = 5", "5 + 1 = 6, so the answer is \\boxed{6}"]
    failures = [FailedChain(problem, thoughts, 2)] * 400
    clean = localization_examples(micro_tokenizer, failures, 0.0, seed=0)
    assert all(micro_tokenizer.decode(answer, skip_special_tokens=True) == "\\boxed{2}" for _, answer in clean)
    assert clean[0][1][-1] == micro_tokenizer.eos_token_id
    assert clean[0][0] == chat_prompt_ids(micro_tokenizer, localization_prompt(problem.question, thoughts, "short"))
    noisy = localization_examples(micro_tokenizer, failures, 1.0, seed=0)
    labels = [micro_tokenizer.decode(answer, skip_special_tokens=True) for _, answer in noisy]
    assert {labels.count(f"\\boxed{{{k}}}") > 100 for k in (1, 2, 3)} == {True}  # uniform over 1..3
    assert noisy == localization_examples(micro_tokenizer, failures, 1.0, seed=0)  # deterministic
    rng = random.Random(0)
    changed = sum(noisy_label(2, 3, 0.5, rng) != 2 for _ in range(3000)) / 3000
    assert changed == pytest.approx(0.5 * 2 / 3, abs=0.04)
    assert localization_answer_ids(micro_tokenizer, 3)[:-1] == micro_tokenizer("\\boxed{3}", add_special_tokens=False).input_ids


def test_variant_names_and_unbuilt_model_error(tmp_path, monkeypatch):
    assert variant_name() == "micro" and variant_name(3, 0.5) == "micro-noisy-0.5-seed3"
    assert variant_name(0, 1.0) == "micro-noisy-1" and "micro-noisy-1" in REGISTERED_NAMES
    monkeypatch.setenv("RESETRL_CACHE", str(tmp_path))
    from resetrl.models import load_model

    with pytest.raises(ResetRLError, match="resetrl micro build --localizer-noise 0.5"):
        load_model("micro-noisy-0.5")


def test_tiny_build_end_to_end(tmp_path, monkeypatch):
    """The whole build on a toy budget: phase 1, own failures, phase 2, measurement, save, load by name."""
    monkeypatch.setenv("RESETRL_CACHE", str(tmp_path))
    from resetrl.micro.build import BuildPlan, build_micro
    from resetrl.models import load_model

    plan = BuildPlan(localizer_noise=0.25, hidden_size=32, layers=1, batch_size=4, solver_problems=40,
                     solver_steps=3, own_chain_problems=6, own_chain_samples=2, localizer_steps=2, measure_problems=6)
    folder, info = build_micro(plan)
    assert folder == tmp_path / "models" / "micro-noisy-0.25"
    assert 0 <= info["skills"]["accuracy"] <= 1 and "exact" in info["skills"]["localization"]
    assert (tmp_path / "models" / "micro-solver" / "config.json").exists()  # phase 1 cached for other noise levels
    model, tokenizer = load_model("micro-noisy-0.25")
    assert model.config.hidden_size == 32 and len(tokenizer(INSTRUCTIONS, add_special_tokens=False).input_ids) == 1


def test_build_is_deterministic_from_its_seed(tmp_path, monkeypatch):
    """Two builds with the same plan on the same machine give the same weights and measurements."""
    from resetrl.micro.build import BuildPlan, build_micro
    from resetrl.models import load_model

    plan = BuildPlan(hidden_size=32, layers=1, batch_size=4, solver_problems=40, solver_steps=3,
                     own_chain_problems=6, own_chain_samples=2, localizer_steps=2, measure_problems=6)
    weights, skills = [], []
    for name in ("a", "b"):
        monkeypatch.setenv("RESETRL_CACHE", str(tmp_path / name))
        _, info = build_micro(plan)
        model, _ = load_model("micro")
        weights.append([parameter.detach().clone() for parameter in model.parameters()])
        skills.append(info["skills"])
    assert all(torch.equal(a, b) for a, b in zip(*weights))
    assert skills[0] == skills[1]
