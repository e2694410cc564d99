"""Everything a run needs, built once from a Config: model (with LoRA), tokenizer, task, prompts,
generation backend, sampling settings and chain limits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from resetrl.config import Config
from resetrl.generation import build_backend, resolve_backend_name
from resetrl.generation.base import GenerationBackend, SamplingParams
from resetrl.models import add_lora, load_model
from resetrl.precision import resolve_dtype, store_frozen_in, warmup_dtype
from resetrl.tasks import Problem, Task, create_task
from resetrl.thoughts import ChainLimits


@dataclass
class Runtime:
    config: Config
    model: torch.nn.Module
    tokenizer: object
    task: Task
    backend: GenerationBackend
    sampling: SamplingParams
    limits: ChainLimits

    @cached_property
    def examples(self) -> list[tuple[str, list[str]]] | None:
        """The task's worked examples when the prompt format shows them (`format.examples`)."""
        return self.task.examples() if self.config.format.examples else None

    def prompt_ids(self, problem: Problem) -> list[int]:
        text, style = self.task.prompt_text(problem, self.tokenizer, self.config.format.prompt_style, self.examples,
                                            self.config.format.instructions)
        # A chat template writes its own special tokens; a raw prompt gets the tokenizer's (e.g. BOS).
        return self.tokenizer(text, add_special_tokens=(style == "raw")).input_ids

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def end_warmup(self) -> None:
        """After an fp32 warm-up of a bf16 run (`warmup.dtype`): the frozen base goes to bf16 for
        the rest of the run. Does nothing otherwise, or when called again."""
        store_frozen_in(self.model, self.config.model.dtype)


def build_runtime(config: Config, with_lora: bool = True, warms_up: bool = False) -> Runtime:
    """`warms_up`: the caller runs `config.warmup` first; in fp32 (`warmup.dtype`) the frozen base
    stays fp32 until `Runtime.end_warmup`."""
    torch.manual_seed(config.train.seed)
    task = create_task(config.task.name, **config.task.options)
    model, tokenizer = load_model(config.model.name, config.model.device)  # fp32: the trained weights' master copy
    device = str(next(model.parameters()).device)
    dtype, why = resolve_dtype(config.model.dtype, model, device)
    if config.model.dtype == "auto":  # recorded resolved, so the run folder says which precision ran
        config.model.dtype = dtype
        print(f"resetrl: model.dtype=auto -> {dtype} ({why})")
    if with_lora and config.model.lora:
        model = add_lora(model, config.model.lora_rank, config.model.lora_alpha, config.model.lora_dropout,
                         config.model.lora_target_modules)
    if not (warms_up and config.warmup.steps and warmup_dtype(config) == "float32"):
        store_frozen_in(model, dtype)
    if config.generation.backend == "auto":  # recorded resolved, so the run folder says which engine ran
        config.generation.backend = resolve_backend_name("auto", device)
        print(f"resetrl: generation.backend=auto -> {config.generation.backend}")
    backend = build_backend(model, tokenizer, config.generation, dtype)
    sampling = SamplingParams(config.rollout.temperature, config.rollout.top_p, config.rollout.top_k)
    limits = ChainLimits(config.format.max_thoughts, config.format.max_thought_tokens,
                         config.format.max_total_tokens, config.format.room_for_thought)
    return Runtime(config, model, tokenizer, task, backend, sampling, limits)
