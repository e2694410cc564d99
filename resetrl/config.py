"""Typed, documented configuration: YAML file or preset, overridden by `--set key=value`.

Every field says what it means and its default; a bad value fails at load time naming the field."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from resetrl.cpi.config import CPIConfig
from resetrl.errors import ResetRLError
from resetrl.ics.config import ICSConfig
from resetrl.registry import did_you_mean
from resetrl.sections import Section, comma_list, registered

MethodName = Annotated[str, registered("resetrl.methods", "METHODS")]
LayoutName = Annotated[str, registered("resetrl.groups", "LAYOUTS")]
BackendName = Annotated[str, registered("resetrl.generation", "BACKENDS", "auto")]
GenerationMode = Annotated[str, registered("resetrl.generation.base", "GENERATION_MODES", "auto")]
AdvantageName = Annotated[str, registered("resetrl.advantages", "ADVANTAGES")]
LossName = Annotated[str, registered("resetrl.losses", "LOSSES")]
AggregationName = Annotated[str, registered("resetrl.losses", "AGGREGATIONS")]


class ModelConfig(Section):
    name: str = Field("tiny", description="Registered model name (`resetrl models` lists them: tiny, smollm2-135m, qwen2.5-coder-0.5b, micro, ...), a built micro variant (trap) or a local transformers folder.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="Compute precision (docs/performance.md, 'Precision'). float32: everything fp32. bfloat16: mixed precision, as verl and TRL's bf16=True: trained weights and optimizer state in fp32, every forward (update, rollouts on both backends, evaluation, warm-up) under bf16 autocast, a LoRA adapter's frozen base stored in bf16. auto (default): bfloat16 on a CUDA GPU with native bf16 (not emulated: Ampere or newer) or a CPU with avx512_bf16 or amx_bf16, where a start-up probe at the model's matmul shape (2048 rows on a GPU, 256 on a CPU) measures bf16 at least 1.5x faster; else float32. The run's config.yaml records the choice.")
    device: str = Field("auto", description="auto (cuda when available, else cpu), cpu, cuda, cuda:1, ...")
    lora: bool = Field(True, description="Train a LoRA adapter (peft); false = full fine-tune.")
    lora_rank: int = Field(64, ge=1, description="LoRA rank (reference: 64).")
    lora_alpha: int = Field(64, ge=1, description="LoRA alpha (reference: 64).")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout.")
    lora_target_modules: str | list[str] = Field("all-linear", description="Modules given LoRA (reference: all linear layers).")


class TaskConfig(Section):
    name: str = Field("arith_chain", description="Task name (`resetrl tasks` lists them) or reasoning_gym:<generator>.")
    options: dict[str, Any] = Field(default_factory=dict, description="Task knobs, e.g. {steps: 3, operand_max: 9} for arith_chain.")
    train_size: int | None = Field(400, ge=1, description="Training problems (reference: 400); null = all.")
    test_size: int = Field(100, ge=1, description="Held-out problems for evaluation.")
    seed: int = Field(0, description="Seed of the task's train/test split.")
    score_timeout: float = Field(10.0, gt=0, description="Seconds the task's scorer may take on one answer; one that raises or runs longer scores 0, counted in reward/score_errors and reward/score_timeouts.")
    reward: str | list[str] | None = Field(None, description="Training reward: null = the task's score of the chain's \\boxed{} answer; or a reward registered with resetrl.register_reward, or package.module:function (imported); or a list of them, summed. A function may be written as resetrl's f(problem, completion), TRL's f(prompts, completions, **columns) or verl's f(data_source, solution_str, ground_truth, extra_info) (docs/data.md). Evaluation always reports the task's score.")
    reward_weights: list[float] | None = Field(None, description="Weights of the rewards in task.reward, in order (default: 1 each), as TRL's reward_weights.")

    _reward_list = field_validator("reward_weights", mode="before")(lambda value: comma_list(value))

    @field_validator("reward")
    @classmethod
    def _known_reward(cls, value: str | list[str] | None) -> str | list[str] | None:
        from resetrl.scoring import load_reward

        for name in [value] if isinstance(value, str) else value or []:
            load_reward(name)
        return value

    @model_validator(mode="after")
    def _weights_match(self) -> "TaskConfig":
        from resetrl.scoring import training_reward

        training_reward(self.reward, self.reward_weights)
        return self

    @model_validator(mode="after")
    def _known_options(self) -> "TaskConfig":
        from resetrl.tasks import check_task_options

        check_task_options(self.name, self.options)
        return self


class FormatConfig(Section):
    prompt_style: Literal["raw", "chat"] = Field("raw", description="raw completion prompt (reference) or chat template.")
    instructions: Literal["reference", "short"] = Field("reference", description="The thought-format instructions: reference (the reference code's training prompt: the single next step given the previous ones, steps that fit the earlier ones) or short (resetrl's earlier wording; the micro testbed's tokenizers hold it as one token).")
    examples: bool = Field(False, description="Show the task's two worked examples in the prompt (reference: false, use_examples).")
    max_thoughts: int = Field(20, ge=1, description="Chain stops after this many thoughts (reference: 20).")
    max_thought_tokens: int = Field(256, ge=1, description="A thought longer than this ends the chain (reference: 256).")
    max_total_tokens: int = Field(1024, ge=1, description="Cap on a chain's response tokens (reference: 5120).")
    room_for_thought: bool = Field(True, description="Start a new thought only while max_thought_tokens still fit in max_total_tokens, else the chain stops (reference); false: thoughts start until the budget is spent, the last one cut.")


class RolloutConfig(Section):
    temperature: float = Field(0.7, ge=0, description="Sampling temperature of rollouts (reference: 0.7).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling (reference: 0.95).")
    top_k: int = Field(0, ge=0, description="Top-k filter; 0 = off.")
    group_size: int = Field(8, ge=2, description="GRPO group size; the rollout budget per prompt.")
    layout: LayoutName = Field("1x4", description="Reset layout: parents x continuations: 1x4 (4 fresh + 4 reset), 2x4, 1x8.")
    max_fresh_attempts: int = Field(12, ge=1, description="Fresh chains tried per prompt to find a failure (reference: 12).")
    localize_temperature: float | None = Field(None, ge=0, description="Temperature of SRPO's self-localization call; default: the reference's, 0.3, and 0 (greedy) in the 1x8 layout.")
    localize_top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling of the localization call; default: rollout.top_p (reference). resetrl before 0.2 used 1.0.")
    localize_max_tokens: int = Field(4096, ge=1, description="Token cap of the localization answer (reference: 4096); an answer cut there before its box is counted in reset/source/self:truncated->1.")
    localize_prompt: Literal["reference", "short"] = Field("reference", description="Localization prompt: reference (with the reference's two sentences pulling toward the earliest error, nothing after the box) or short (resetrl's earlier prompt; the micro testbed's).")
    localize_out_of_range: Literal["prose", "clamp"] = Field("prose", description="A boxed step outside 1..N (a model boxing its answer): prose = not a step; the last 'Step k' of the answer if in range, else e = 1 (reference); clamp = the nearest of 1..N (resetrl before 0.2).")
    localize_offset: int = Field(0, ge=0, description="Reset this many thoughts earlier than the localized step, at least at 1 (the reference's SRPO_LOC_OFFSET; 0 = at the localized step).")
    fallback_group: Literal["fresh", "drawn"] = Field("fresh", description="A prompt with no failure in max_fresh_attempts: fresh = its first group-size/2 kept chains plus new fresh draws (reference); drawn = the budget taken from the chains already drawn (resetrl before 0.2: always zero variance).")
    partial_parents: Literal["fallback", "reset"] = Field("fallback", description="A layout with several parents (2x4) that finds fewer failures: fallback = one plain group of the budget (reference); reset = reset groups for the failures found, fresh chains for the rest.")
    mask_prefix: bool = Field(True, description="Train reset samples on their suffix only (false = the 'no mask' variant).")
    merge_empty_prefix: bool = Field(False, description="A reset group whose reset step is 1 (empty prefix, same context as the fresh group) joins the prompt's fresh group as one group (false: two groups, as in the paper).")

    @property
    def resolved_localize_temperature(self) -> float:
        """localize_temperature, or the reference's: 0.3, greedy in the 1x8 layout."""
        if self.localize_temperature is not None:
            return self.localize_temperature
        return 0.0 if self.layout == "1x8" else 0.3

    @model_validator(mode="before")
    @classmethod
    def _moved_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            moved = [f"rollout.{old} -> generation.{new}" for old, new in MOVED_TO_GENERATION.items() if old in data]
            if moved:
                raise ValueError("moved to the generation section: " + ", ".join(moved))
        return data


# Fields that lived in `rollout` before the generation section existed (old name -> new name).
MOVED_TO_GENERATION = {"backend": "backend", "batch_size": "batch_size", "generation_mode": "mode",
                       "prefix_cache_mb": "prefix_cache_mb"}


class VLLMConfig(Section):
    kv_cache_gb: float = Field(2.0, gt=0, description="Memory for vLLM's KV cache in GiB (CPU: taken from RAM; more lets more chains run at once).")
    max_model_len: int | None = Field(None, ge=16, description="Longest prompt + response the engine accepts; default: the model's context length, at most 4096.")
    enforce_eager: bool | Literal["auto"] = Field("auto", description="Run without torch.compile / CUDA graphs. auto: true on a CPU (compiled mode costs 90-170 s at every start there), false on a GPU (CUDA graphs).")
    weight_sync: Literal["auto", "full", "lora"] = Field("auto", description="How new weights reach the engine after an update: full (the whole state dict, LoRA merged in, reloaded in place) or lora (the adapter through a LoRARequest); auto = full, measured faster on CPU (bench/weight_sync.py).")
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1, description="GPU only: share of GPU memory vLLM may take (the trainer needs the rest).")
    block_size: int | None = Field(None, ge=16, description="KV cache block size in tokens; prefix caching reuses whole blocks. Default: 32 on CPU (vLLM's 128 re-encodes up to 127 tokens of every resumed row; 32 measured 1.4x faster), vLLM's own on GPU.")


class GenerationConfig(Section):
    backend: BackendName = Field("auto", description="Generation backend: vllm (rollouts on vLLM; install: README), hf (the project's transformers engine, no extra install) or auto = vllm for a model on a GPU where vLLM is installed, else hf (on this CPU the hf engine measured faster on short chains, vllm on long ones: docs/vllm.md).")
    mode: GenerationMode = Field("auto", description="chain: a whole chain per call, stopped by the thought rules; thought: one call per thought, stopped at </thought> (the reference code's loop; same distribution, more calls); auto: chain on hf, thought on vllm (each measured faster there: docs/vllm.md).")
    batch_size: int = Field(64, ge=1, description="Sequences generated at once (hf: rows per batch; vllm: max_num_seqs).")
    prefix_cache_mb: int = Field(1024, ge=0, description="hf: memory for keys/values of encoded contexts reused by later calls (a reset prefix's prompt, top-ups, next thoughts); 0 = off. vLLM has its own prefix cache.")
    vllm: VLLMConfig = Field(default_factory=VLLMConfig, description="Settings of the vllm backend.")
    per_prompt: bool = Field(False, description="Roll out each prompt of a step alone, seeded from (train.seed, step, prompt index), as Ray rollout workers always do: the run's rollouts are then the same in one process as on any number of workers. False (in-process only): the step's prompts are batched together, seeded once per step, faster on a CPU (docs/scale.md). Set to true by cluster.rollout_workers > 1 or cluster.address.")


class TrainConfig(Section):
    steps: int = Field(24, ge=0, description="RL steps (reference: 24 = 2 epochs x 400 problems / 32).")
    prompts_per_step: int = Field(32, ge=1, description="Prompts per step (reference: 32).")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="adamw (reference) or sgd (plain gradient steps, no momentum: the update keeps how many sequences carry signal).")
    lr: float = Field(5e-5, gt=0, description="Learning rate (AdamW reference: 5e-5; SGD needs a much larger one).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (reference: 0.01).")
    grad_clip: float = Field(1.0, gt=0, description="Gradient norm clip (reference: 1.0).")
    micro_batch_size: int = Field(8, ge=1, description="Sequences per forward/backward (gradient accumulation).")
    mini_batch_prompts: int | None = Field(8, ge=1, description="Prompts per optimizer step (verl ppo_mini_batch_size): the step's prompts, shuffled, are split into mini-batches of this many, each prompt's samples together, one AdamW step each (reference: 8 of 32 prompts, 4 steps per step; later mini-batches are off-policy, where loss=clip's ratio acts). null = one optimizer step over the whole step (resetrl before 0.2).")
    updates_per_rollout: int = Field(1, ge=1, description="Passes (epochs) over one step's mini-batches (TRL num_iterations, verl ppo_epochs; reference: 1); > 1 needs loss=clip for the ratio to correct the drift.")
    advantage: AdvantageName = Field("group_norm", description="Advantage estimator: group_norm (reference SRPO: population std, zeros below 1e-8), grpo (verl's: sample std + 1e-6), mean_only, rloo.")
    grpo_advantage: AdvantageName | None = Field(None, description="Advantage estimator for method=grpo only; 'grpo' (verl's estimator) is what the paper's GRPO baseline used; default: train.advantage, the same as the reset methods (a fair comparison).")
    loss: LossName = Field("pg", description="pg (REINFORCE, reference main loss) or clip (PPO-clip).")
    grpo_loss: LossName | None = Field(None, description="Loss for method=grpo only; 'clip' reproduces the paper's asymmetric setting.")
    loss_aggregation: AggregationName | None = Field(None, description="seq-mean-token-mean, token-mean (one mean over the mini-batch's tokens) or micro-token-mean (each micro-batch's token mean, averaged: verl's legacy worker, the reference's clip loss); default: pg -> seq-mean-token-mean, clip -> token-mean.")
    grpo_loss_aggregation: AggregationName | None = Field(None, description="Loss aggregation for method=grpo only; 'micro-token-mean' is how verl's legacy worker aggregated the paper's GRPO baseline; default: train.loss_aggregation.")
    clip_eps: float = Field(0.2, gt=0, description="PPO clip range.")
    dual_clip: float = Field(3.0, gt=1, description="Dual-clip bound for negative advantages.")
    importance_correction: bool | Literal["auto"] = Field("auto", description="Truncated importance sampling (TIS, as verl's tis_imp_ratio_cap and TRL's vLLM importance-sampling correction): each trained token's policy loss weighted by min(pi_trainer / pi_engine, train.importance_cap), both the probability of the sampled token under the weights that sampled it, so the gap between the generation engine's and the trainer's numerics does not bias the gradient. auto: on where the two compute differently (the vllm backend, or model.dtype bfloat16), off where they agree (the hf engine in fp32: below 1e-4). The reference code does not correct (verl's default): off.")
    importance_cap: float = Field(2.0, gt=0, description="C, the truncation of the importance weight min(pi_trainer / pi_engine, C) (verl's and TRL's default: 2).")
    kl_coef: float = Field(0.0, ge=0, description="KL-to-reference coefficient (reference variant: 0.01).")
    kl_estimator: Literal["low_var_kl", "k3"] = Field("low_var_kl", description="KL estimate: low_var_kl (verl's: k3 with the log-ratio clamped to +-20 and the value to +-10; reference) or k3 (unclamped, resetrl before 0.2).")
    seed: int = Field(0, description="Seed of sampling, data order and initialisation.")
    max_nonfinite_steps: int = Field(3, ge=1, description="A step whose loss or gradient norm is not finite skips its update (counted in update/nonfinite); this many in a row stop the run with an error.")


class ScoreConfig(Section):
    alpha: float = Field(10.0, ge=0, description="SCoRe Stage II shaping: the correction y2 gets R(y2) + alpha (R(y2) - R(y1)) (reference: 10).")
    stage1_steps: int = Field(0, ge=0, description="SCoRe Stage I for the first this many RL steps: y1 gets 0, y2 gets R(y2), and y1's KL coefficient is stage1_kl_first (reference: 0, Stage II only).")
    kl_first: float = Field(0.01, ge=0, description="Stage II: beta of the KL-to-reference penalty in y1's reward, per token / length (reference: 0.01).")
    kl_second: float = Field(0.01, ge=0, description="beta of the KL penalty in y2's reward, both stages (reference: 0.01).")
    stage1_kl_first: float = Field(0.1, ge=0, description="Stage I: beta of the KL penalty in y1's reward (reference: 0.1).")


class CritiqueGRPOConfig(Section):
    shaping_gamma: float = Field(0.1, gt=0, description="Critique-GRPO: gamma of f(p) = p / (p + gamma) on the refinement's (off-policy) tokens (reference: 0.1).")
    entropy_coef: float = Field(0.001, ge=0, description="Critique-GRPO: entropy bonus on every trained token (reference: 0.001).")


class SPOTreeConfig(Section):
    branching: list[int] = Field(default_factory=lambda: [2, 4], description="SPO-Tree: children per node at each depth; the leaves (their product) are a prompt's rollouts, so it should equal rollout.group_size (reference: [2, 4]; the SPO paper's MATH setting: [6, 6, 6]).")
    segment_tokens: int = Field(600, ge=1, description="SPO-Tree: tokens of every segment but the last, which runs to the chain's end (reference: 600).")
    probability_mask: bool = Field(True, description="true (the SPO paper): only tokens whose old probability is below keep_below_prob are trained, each sequence averaged over them (SPO eq. 3); false: every token, one token mean (what the reference code runs: its mask reads a batch key verl never writes).")
    keep_below_prob: float = Field(0.9, gt=0, le=1, description="SPO-Tree: rho of the probability mask (reference: 0.9).")

    @field_validator("branching")
    @classmethod
    def _branching(cls, value: list[int]) -> list[int]:
        if not value or any(children < 1 for children in value):
            raise ValueError("needs one child count >= 1 per depth, e.g. [2, 4]")
        return value


class WarmupConfig(Section):
    steps: int = Field(0, ge=0, description="Supervised warm-up steps on the task's correct chains before RL (0 = none).")
    batch_size: int = Field(8, ge=1, description="Chains per warm-up step.")
    lr: float = Field(2e-4, gt=0, description="Warm-up learning rate.")
    dtype: Literal["model", "float32", "bfloat16"] = Field("model", description="Precision of the warm-up: model (model.dtype's), float32 or bfloat16. float32 under a bfloat16 model warms up in fp32 (a LoRA adapter's frozen base stored in bf16 only after it), then rolls out and trains in bf16: six bf16 warm-up steps of the quickstart ended 0.03-0.05 higher in loss and 0.05-0.06 lower in greedy accuracy than fp32's on 4 of 4 seeds (docs/performance.md, \"Precision\"). Not with cluster.fsdp, whose shards are built before the warm-up.")


class EvalConfig(Section):
    every: int = Field(0, ge=0, description="Evaluate every k steps (0: only before and after training).")
    size: int | None = Field(None, ge=1, description="Problems evaluated; default: task.test_size.")
    split: Literal["test", "validation"] = Field("test", description="The split evaluated: test, or validation (tasks that have one, e.g. arith_chain and trap_chain: problems apart from train and test, for choosing a learning rate: `resetrl eval --run RUN --set eval.split=validation --set eval.size=256`).")
    temperature: float = Field(0.0, ge=0, description="0: greedy pass@1; > 0: eval/accuracy is sampled pass@1 at this temperature (rollout.top_p), and greedy is reported as eval/accuracy_greedy.")
    samples: int = Field(1, ge=1, description="Samples per problem for sampled pass@1 (eval.temperature > 0).")


class CheckpointConfig(Section):
    every: int = Field(1, ge=1, description="Save a checkpoint every k steps.")
    keep: int = Field(2, ge=1, description="Checkpoints kept (the newest).")


class LoggingConfig(Section):
    tensorboard: bool = Field(True, description="Write every metric as TensorBoard events to run_dir/tensorboard.")
    wandb: bool = Field(False, description="Also log every metric to Weights & Biases (an extra: pip install 'resetrl[wandb]').")
    wandb_project: str = Field("resetrl", description="W&B project; the run is named after its run folder.")
    wandb_mode: Literal["offline", "online"] | None = Field(None, description="offline: W&B's files under run_dir/wandb, no network (upload later with `wandb sync`); online: needs a login and the network. Default: $WANDB_MODE if set, else offline.")

    @field_validator("wandb")
    @classmethod
    def _wandb_installed(cls, value: bool) -> bool:
        from importlib.util import find_spec

        if value and find_spec("wandb") is None:
            raise ValueError("wandb is not installed: pip install 'resetrl[wandb]', or set logging.wandb=false")
        return value


class ClusterConfig(Section):
    """Where a run computes (docs/scale.md); the numbers it computes do not depend on it: any number of
    Ray rollout workers gives the same samples, any number of learner ranks the same weights."""

    rollout_workers: int = Field(1, ge=1, description="Rollout workers: 1 = generation in the trainer's process, prompts batched together (as without a cluster); N > 1 = N Ray actors, each with its own generation backend and copy of the weights, the step's prompts handed out one at a time, each seeded from (train.seed, step, prompt index) so the samples are the same for any N. Needs Ray: pip install 'resetrl[scale]'.")
    address: str | None = Field(None, description="Ray cluster: 'auto' (the one `ray start` runs on this node), host:port of its head node, or 'local' (start one for this run, even with 1 worker); default: 'local' when rollout_workers > 1. A cluster the run started is shut down when it ends.")
    worker_cpus: float = Field(1.0, gt=0, description="CPUs Ray reserves for each rollout worker.")
    worker_gpus: float = Field(0.0, ge=0, description="GPUs Ray reserves for each rollout worker (1 on GPU nodes: each worker's engine on its own GPU).")
    start_timeout: float = Field(300.0, gt=0, description="Seconds the workers may take to start (model loaded) before the run stops with an error naming the one that did not.")
    fsdp: bool = Field(False, description="Learner ranks under torchrun hold shards of the trained weights, their gradients and the optimizer state (FSDP2: torch.distributed.fsdp.fully_shard per decoder layer and the root) instead of a whole copy each: for a model whose training state does not fit one device. Rank 0 keeps a whole copy of the weights for rollouts, evaluation and checkpoints (checkpoints are the same as without FSDP). No effect with one learner rank.")

    @property
    def uses_ray(self) -> bool:
        return self.rollout_workers > 1 or self.address is not None

    @field_validator("address")
    @classmethod
    def _address_form(cls, value: str | None) -> str | None:
        if value is None or value in ("auto", "local") or value.startswith("ray://"):
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("must be auto, local, host:port (the head node's `ray start --head` address) or ray://host:port")
        return value

    @model_validator(mode="after")
    def _ray_installed(self) -> "ClusterConfig":
        from importlib.util import find_spec

        if self.uses_ray and find_spec("ray") is None:
            raise ValueError("Ray is not installed: pip install 'resetrl[scale]' (or set cluster.rollout_workers=1 "
                             "and no cluster.address)")
        return self


class Config(Section):
    method: MethodName = Field("srpo", description="grpo, rrpo (random reset), srpo (self-localized reset), oracle (true first error), score (SCoRe), critique_grpo, spo_tree; resetrl/methods.py.")
    method_overrides: dict[MethodName, dict[str, Any]] = Field(default_factory=dict, description="Settings per method, applied when that method runs, under any --set: e.g. {score: {train.lr: 5.0e-5}} (the paper presets hold each baseline's reference settings; compare --arm overrides them).")
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    format: FormatConfig = Field(default_factory=FormatConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig, description="method=score only.")
    critique_grpo: CritiqueGRPOConfig = Field(default_factory=CritiqueGRPOConfig, description="method=critique_grpo only.")
    spo_tree: SPOTreeConfig = Field(default_factory=SPOTreeConfig, description="method=spo_tree only.")
    warmup: WarmupConfig = Field(default_factory=WarmupConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    ics: ICSConfig = Field(default_factory=ICSConfig)
    cpi: CPIConfig = Field(default_factory=CPIConfig, description="The CPI theory lab (`resetrl cpi`); training does not read it.")

    @model_validator(mode="after")
    def _workers_roll_per_prompt(self) -> "Config":
        # Recorded in config.yaml, so a run moved off its workers resumes only with the same draws.
        if self.cluster.uses_ray and not self.generation.per_prompt:
            self.generation.per_prompt = True
        return self

    @model_validator(mode="after")
    def _fp32_warmup_unsharded(self) -> "Config":
        if self.cluster.fsdp and self.warmup.dtype == "float32" and self.model.dtype != "float32":
            raise ValueError("warmup.dtype=float32 under a bf16 model.dtype is not supported with cluster.fsdp (its "
                             "shards are built before the warm-up); set warmup.dtype=model")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


def field_rows(section: BaseModel, prefix: str = "") -> list[tuple[str, Any, Any, str]]:
    """(dotted key, value, default, description) of every leaf field, in declaration order: what
    `resetrl config` prints. A nested section is walked, not listed."""
    rows = []
    for name, info in type(section).model_fields.items():
        value = getattr(section, name)
        if isinstance(value, BaseModel):
            rows += field_rows(value, f"{prefix}{name}.")
            continue
        default = info.default_factory() if info.default_factory else info.default
        rows.append((f"{prefix}{name}", value, default, info.description or ""))
    return rows


def preset_names() -> list[str]:
    folder = resources.files("resetrl") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, origin: str) -> dict:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ResetRLError(f"{origin}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ResetRLError(f"{origin}: must be a mapping of config sections")
    return data


def apply_override(data: dict, assignment: str) -> None:
    """`train.lr=1e-4` -> data["train"]["lr"] = 1e-4 (the value is parsed as YAML)."""
    if "=" not in assignment:
        raise ResetRLError(f"--set {assignment!r}: expected key=value, e.g. train.lr=1e-4")
    key, raw = assignment.split("=", 1)
    set_dotted(data, key.strip(), yaml.safe_load(raw) if raw.strip() else "", f"--set {assignment!r}")


def set_dotted(data: dict, key: str, value: Any, origin: str) -> None:
    """data[a][b] = value for key "a.b"; `origin` names the setting in an error."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ResetRLError(f"{origin}: {part} is not a section")
    node[parts[-1]] = value


def load_config(path: str | None = None, preset: str | None = None, overrides: list[str] = ()) -> Config:
    """Preset, then file, then overrides; validated once at the end."""
    data: dict = {}
    if preset:
        if preset not in preset_names():
            raise ResetRLError(f"unknown preset {preset!r}; known: {', '.join(preset_names())}"
                               + did_you_mean(preset, preset_names()))
        text = (resources.files("resetrl") / "presets" / f"{preset}.yaml").read_text()
        data = _read_yaml(text, f"preset {preset}")
    if path:
        if not Path(path).exists():
            raise ResetRLError(f"config file not found: {path}")
        _merge(data, _read_yaml(Path(path).read_text(), path))
    earlier_task = (data.get("task") or {}).get("name", TaskConfig.model_fields["name"].default)
    for assignment in overrides:
        apply_override(data, assignment)
    _apply_method_overrides(data, overrides)
    _drop_other_task_options(data, earlier_task, overrides)
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        problems = [_problem(item) for item in error.errors()]
        if len(problems) == 1:  # the usual case: one line, as the README shows it
            raise ResetRLError(f"invalid config: {problems[0]}") from None
        raise ResetRLError("invalid config:\n" + "\n".join(f"  {problem}" for problem in problems)) from None


def _apply_method_overrides(data: dict, overrides: list[str]) -> None:
    """The chosen method's `method_overrides` entries, except keys an explicit --set gave."""
    method = data.get("method", Config.model_fields["method"].default)
    settings = (data.get("method_overrides") or {}).get(method)
    if not isinstance(settings, dict):
        return
    explicit = {assignment.split("=", 1)[0].strip() for assignment in overrides}
    for key, value in settings.items():
        if key not in explicit:
            set_dotted(data, key, value, f"method_overrides.{method}.{key}")


def _problem(item: dict) -> str:
    """One pydantic error as `field: what is wrong (got value)`."""
    where = ".".join(str(p) for p in item["loc"]) or "(top level)"
    if item["type"] == "extra_forbidden":
        return f"{where}: not a config field{_field_suggestion(item['loc'])} (`resetrl config` lists them)"
    got = f" (got {item['input']!r})" if item["type"] != "missing" and not isinstance(item["input"], dict) else ""
    return f"{where}: {item['msg'].removeprefix('Value error, ')}{got}"


def _field_suggestion(location: tuple) -> str:
    """" (did you mean 'train.lr'?)" for a mistyped field name, from the fields of its section."""
    section, prefix = Config, ""
    for part in location[:-1]:
        field = section.model_fields.get(str(part)) if isinstance(section, type) else None
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""  # inside a free-form mapping (task.options): the task checks its own keys
        section, prefix = annotation, f"{prefix}{part}."
    suggestion = did_you_mean(str(location[-1]), section.model_fields)
    return suggestion.replace("'", f"'{prefix}", 1) if suggestion else ""


def _drop_other_task_options(data: dict, earlier_task: str, overrides: list[str]) -> None:
    """`--set task.name=gsm8k` over a preset written for another task: the preset's options that the
    new task does not take are dropped (and said); options given with --set are kept and checked."""
    from resetrl.tasks import task_options

    task = data.get("task")
    if not isinstance(task, dict) or task.get("name", earlier_task) == earlier_task:
        return
    options = task.get("options")
    if not isinstance(options, dict) or any(a.split("=", 1)[0].strip() == "task.options" for a in overrides):
        return
    explicit = {a.split("=", 1)[0].strip()[len("task.options."):] for a in overrides
                if a.startswith("task.options.")}
    try:
        known = task_options(str(task["name"])) or []
    except ResetRLError:
        return  # an unknown task name: validation names it
    dropped = [key for key in options if key not in known and key not in explicit]
    if dropped:
        print(f"resetrl: task.name={task['name']}: dropped {earlier_task} option(s) it does not take: "
              f"{', '.join(dropped)}")
        task["options"] = {key: value for key, value in options.items() if key not in dropped}


def _merge(base: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
