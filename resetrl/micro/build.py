"""`resetrl micro build`: train the micro model from scratch, deterministically from a seed.

Phase 1 (solver): next-token training on reference chains of the train split. The budget is
deliberately short: the model's mistakes come from its real limits (a 0.9M-parameter model, a few
hundred steps, multi-digit multiplication), not from corrupted data; every target it sees is correct.
Phase 1 is cached per seed, so variants that differ only in localization noise share it.

Phase 2 (localizer): the phase-1 model samples chains on train problems at the rollout temperature;
its failed chains, labelled with the step checker's first error (a fraction `localizer_noise` of the
labels replaced by a random step), become localization examples through the chat template, mixed
with as many solver examples. Phase 2 runs at a constant 1e-3 after phase 1's decay to 4e-4: a model
left at the end of a decay sits in a sharp minimum where every RL update of useful size only loses
accuracy (measured: docs/micro.md), while one trained last at the noise level of lr 1e-3 tolerates
RL at 3e-4 (and keeps improving under it).

Then both skills are measured on the test split (`resetrl.micro.measure`) and the model is saved as
a transformers folder in the cache, under the variant's name (`resetrl.micro.variant_name`).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from resetrl.config import Config, load_config
from resetrl.errors import ResetRLError
from resetrl.micro.data import localization_examples, sample_own_failures, solver_examples
from resetrl.micro.measure import measure_skills
from resetrl.micro.model import build_micro_tokenizer, init_micro_model, prompt_phrases
from resetrl.models.micro import build_info, micro_folder, save_micro, variant_name
from resetrl.micro.train import train_on_examples
from resetrl.runtime import Runtime, build_runtime
from resetrl.tasks import create_task


@dataclass(frozen=True)
class BuildPlan:
    """Everything that determines a micro model. Task options and prompt format come from `preset`."""

    seed: int = 0
    localizer_noise: float = 0.0  # fraction of localization labels replaced by a uniform random step
    preset: str = "micro"
    hidden_size: int = 128
    layers: int = 4
    batch_size: int = 32
    solver_problems: int = 20000  # distinct training problems for phase 1 (none from the test split)
    solver_steps: int = 800
    solver_lr: float = 4e-3  # peak, after 20 warm-up steps
    solver_final_lr: float = 4e-4  # end of phase 1's cosine decay
    localizer_lr: float = 1e-3  # phase 2's constant rate (after 20 warm-up steps)
    own_chain_problems: int = 1000  # train problems the phase-1 model solves to produce failures
    own_chain_samples: int = 4  # chains per problem at the rollout temperature
    localizer_steps: int = 300
    replay_fraction: float = 0.5  # share of phase-2 examples that are solver examples
    measure_problems: int = 256  # test problems used to measure both skills
    overrides: tuple[str, ...] = ()  # `--set` changes to the preset's config (e.g. task.options.slip_noise=0.15)
    custom_name: str = ""  # `--name`: a name of the user's instead of the variant's

    def name(self) -> str:
        """The model's name: `--name`, or the variant's: the preset's name (`micro` for the micro
        preset), the `--set` changes to the preset as a tag (`trap-slip0.15`), the localizer noise, the seed."""
        return self.custom_name or variant_name(self.seed, self.localizer_noise, self.preset, self.tag())

    def tag(self) -> str:
        # Sizes and budgets are not in the name (as for `micro`): they are in micro_build.json.
        return "-".join(key.rsplit(".", 1)[-1].replace("_noise", "").replace("_", "") + value.strip()
                        for key, value in (o.split("=", 1) for o in self.overrides))

    def solver_key(self) -> dict:
        """The fields phase 1 depends on (a cached phase-1 model is reused when they match)."""
        keys = ("seed", "preset", "hidden_size", "layers", "batch_size", "solver_problems", "solver_steps", "solver_lr",
                "solver_final_lr")
        return {key: getattr(self, key) for key in keys}


def micro_config(plan: BuildPlan, model_name: str | None = None) -> Config:
    """The preset's config (task, prompt format, sampling), optionally with another model."""
    overrides = [*plan.overrides, *([f"model.name={model_name}"] if model_name else [])]
    config = load_config(preset=plan.preset, overrides=overrides)
    if config.task.name not in ("arith_chain", "trap_chain"):
        raise ResetRLError(f"micro build needs an arith_chain or trap_chain preset; {plan.preset!r} uses {config.task.name!r}")
    return config


def micro_runtime(plan: BuildPlan, folder: Path) -> Runtime:
    """The preset's runtime (prompts, sampling, chain limits, backend) around the model in `folder`."""
    return build_runtime(micro_config(plan, str(folder)), with_lora=False)


def build_solver(plan: BuildPlan, config: Config) -> tuple[Path, dict]:
    """Phase 1, or its cached result. Returns (folder, info)."""
    folder = micro_folder((plan.custom_name or variant_name(plan.seed, 0.0, plan.preset, plan.tag())) + "-solver")
    key = {**plan.solver_key(), "overrides": list(plan.overrides), "task": config.task.options,
           "phrases": prompt_phrases()}
    if build_info(folder).get("solver_key") == key:
        print(f"resetrl: reusing the phase-1 solver in {folder}")
        return folder, build_info(folder)
    started = time.perf_counter()
    task = create_task(config.task.name, **config.task.options)
    tokenizer = build_micro_tokenizer(task)
    model = init_micro_model(tokenizer, plan.seed, hidden_size=plan.hidden_size, layers=plan.layers)
    problems = task.problems("train", plan.solver_problems, config.task.seed)
    # Only the prompt part of a Runtime is needed here; it is the trainer's own prompt builder.
    prompts = Runtime(config, model, tokenizer, task, backend=None, sampling=None, limits=None)
    losses = train_on_examples(model, solver_examples(task, tokenizer, prompts.prompt_ids, problems, plan.seed), plan.solver_steps,
                               plan.batch_size, plan.solver_lr, plan.seed, tokenizer.pad_token_id, "solver",
                               final_lr=plan.solver_final_lr)
    info = {"solver_key": key, "solver_loss": losses[-1], "solver_seconds": time.perf_counter() - started,
            "parameters": sum(p.numel() for p in model.parameters())}
    save_micro(model, tokenizer, folder, info)
    return folder, info


def check_replaceable(plan: BuildPlan) -> None:
    """A build may replace a model of its name only if that model was built from the same plan:
    sizes and budgets are not in the name, and a longer solver once nearly replaced the model a
    finished experiment was run on."""
    built = build_info(micro_folder(plan.name())).get("plan")
    if built is None:
        return
    wanted = json.loads(json.dumps(asdict(plan)))  # tuples as lists, as in micro_build.json
    differences = [f"{key} {built[key]!r} -> {wanted[key]!r}" for key in sorted(built)
                   if key in wanted and key != "custom_name" and built[key] != wanted[key]]
    if differences:
        raise ResetRLError(f"micro build: {plan.name()!r} already exists, built with another plan ({'; '.join(differences)}); "
                           f"pass --name to build this one beside it, or delete {micro_folder(plan.name())}")


def build_micro(plan: BuildPlan) -> tuple[Path, dict]:
    """Both phases, the measurement, and the save. Returns (folder, build info)."""
    if not 0 <= plan.localizer_noise <= 1:
        raise ResetRLError(f"--localizer-noise must be in [0, 1], got {plan.localizer_noise}")
    if plan.custom_name and (not plan.custom_name.strip() or "/" in plan.custom_name or plan.custom_name.startswith(".")):
        raise ResetRLError(f"--name must be a plain name (no '/', not starting with '.'), got {plan.custom_name!r}")
    check_replaceable(plan)
    started = time.perf_counter()
    config = micro_config(plan)
    solver_folder, solver_info = build_solver(plan, config)
    runtime = micro_runtime(plan, solver_folder)  # phase 2 trains runtime.model in place
    model, tokenizer, task = runtime.model, runtime.tokenizer, runtime.task

    # Phase 2: own failed chains (same for every noise level of a seed), then labels, then training.
    phase_started = time.perf_counter()
    torch.manual_seed(plan.seed)
    # Problems further down the train stream than phase 1 used, so the failures are on unseen questions.
    stream = task.problems("train", plan.solver_problems + plan.own_chain_problems, config.task.seed)
    own_problems = stream[plan.solver_problems:]
    failures, sampled = sample_own_failures(runtime.backend, tokenizer, task, runtime.prompt_ids, own_problems,
                                            plan.own_chain_samples, runtime.sampling, runtime.limits)
    if not failures:
        raise ResetRLError("the phase-1 solver made no mistakes to learn localization from; lower solver_steps")
    examples = localization_examples(tokenizer, failures, plan.localizer_noise, plan.seed)
    rng = random.Random(f"micro/replay/{plan.seed}")
    replay_count = round(len(examples) * plan.replay_fraction / (1 - plan.replay_fraction))
    replay = rng.sample(stream[:plan.solver_problems], min(replay_count, plan.solver_problems))
    examples += solver_examples(task, tokenizer, runtime.prompt_ids, replay, plan.seed)
    losses = train_on_examples(model, examples, plan.localizer_steps, plan.batch_size, plan.localizer_lr,
                               plan.seed, tokenizer.pad_token_id, "localizer")
    localizer_seconds = time.perf_counter() - phase_started

    measure_started = time.perf_counter()
    torch.manual_seed(plan.seed)
    test = task.problems("test", plan.measure_problems, config.task.seed)
    skills = measure_skills(runtime, test, seed=plan.seed)
    name = plan.name()
    info = {
        "name": name,
        "plan": asdict(plan),
        "task": {"name": config.task.name, "options": config.task.options, "seed": config.task.seed},
        "parameters": solver_info["parameters"],
        "solver_loss": solver_info["solver_loss"],
        "own_chains": {"sampled": sampled, "failed_with_known_first_error": len(failures)},
        "localizer_loss": losses[-1],
        "skills": skills,
        "seconds": {"solver": solver_info["solver_seconds"], "localizer": localizer_seconds,
                    "measure": time.perf_counter() - measure_started, "total": time.perf_counter() - started},
    }
    folder = save_micro(model, tokenizer, micro_folder(name), info)
    return folder, info
