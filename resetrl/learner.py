"""The update: a step's scored samples -> mini-batches -> log-probabilities -> loss -> optimizer steps.

What the trainer hands over is a list of `Sample`s with their advantages; what comes back is the
update's metrics. The learner owns the trained model (under cluster.fsdp its shards), the optimizer,
the reference policy of a KL term and the learner ranks' share of every micro-batch
(resetrl/cluster/distributed.py): a run on one process is the one-rank case."""

from __future__ import annotations

import copy
import math
import random
from contextlib import nullcontext
from dataclasses import dataclass
from typing import NamedTuple

import torch

from resetrl.advantages import token_advantages, with_reward_kl
from resetrl.config import Config
from resetrl.logprobs import collate, response_logprobs
from resetrl.losses import (LossInputs, aggregation_normalizer, default_aggregation, loss_knobs, policy_loss,
                            ratio_diagnostics, truncated_importance_weights)
from resetrl.methods import METHODS
from resetrl.precision import compute
from resetrl.scoring import Sample


class Learner:
    def __init__(self, config: Config, runtime, dist):
        """`runtime`'s model is the one trained (its pad id pads the micro-batches); `dist` is the
        learner group (learner_group in resetrl/cluster/distributed.py)."""
        self.config, self.runtime, self.dist = config, runtime, dist
        cfg = config
        method = METHODS.get(cfg.method)
        # A KL term (in the loss, or in SCoRe's reward) needs the reference policy: the adapter
        # switched off, or a frozen copy.
        self.needs_reference = cfg.train.kl_coef > 0 or method.reward_kl
        self.reference = None
        if self.needs_reference and not cfg.model.lora:
            self.reference = self.dist.training_model(copy.deepcopy(runtime.model).eval().requires_grad_(False),
                                                      keep_whole=False)
        # The model the update trains: runtime.model, or under cluster.fsdp its shards (rank 0 keeping
        # runtime.model whole for rollouts, evaluation and checkpoints, resetrl/cluster/fsdp.py).
        self.model = self.dist.training_model(runtime.model)
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.train.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.parameters, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(self.parameters, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.whole_optimizer = self.dist.whole_optimizer(self.optimizer)  # what checkpoints save and load
        self.loss_name = method.loss(cfg.train)
        own_options = method.loss_options(cfg)  # a method's own loss options (Critique-GRPO's, SPO's)
        self.aggregation = (own_options.pop("aggregation", None) or method.aggregation(cfg.train)
                            or default_aggregation(self.loss_name))
        self.loss_knobs = loss_knobs(self.loss_name, cfg.train, own_options)  # only those the loss takes
        self.correct_importance = importance_correction_on(cfg)
        if cfg.train.updates_per_rollout > 1 and self.loss_name != "clip":
            print(f"resetrl: warning: train.updates_per_rollout={cfg.train.updates_per_rollout} with loss "
                  f"{self.loss_name!r}: passes after the first are uncorrected off-policy steps; loss=clip "
                  "weights them by the ratio to the sampling policy")

    def gather_weights(self) -> None:
        """FSDP: rank 0's whole copy (runtime.model, which rolls out) takes the updated shards."""
        self.dist.gather_weights(self.model, self.runtime.model)

    def update(self, samples: list[Sample], step: int = 0) -> dict[str, float]:
        """The step's optimizer steps on the trained samples (docs/method.md section 6): the step's
        prompts, shuffled from (seed, step), are split into mini-batches of `train.mini_batch_prompts`
        prompts, each prompt's samples together, one AdamW step each; `train.updates_per_rollout`
        passes over them (verl's ppo_mini_batch_size and ppo_epochs).

        The loss's `old_logprobs` are the sampling engine's log-probabilities of each token; where a
        backend gives none, the trainer's own under the policy that sampled (the first mini-batch's
        first pass; the others' in a no-grad pass before the first step). Mini-batches after the
        first are off-policy: that is where loss=clip's ratio acts. The engine's and the trainer's
        log-probabilities are compared where the trainer's are the sampling policy's."""
        cfg = self.config.train
        n_tokens = sum(s.trained_tokens for s in samples)
        empty = {"update/loss": 0.0, "update/grad_norm": 0.0, "update/skipped": 1.0, "update/nonfinite": 0.0,
                 "update/trained_tokens": float(n_tokens), "update/active_sequences": 0.0,
                 "update/optimizer_steps": 0.0, "update/mini_batches": 0.0}
        parts = [self._prepare(batch) for batch in split_mini_batches(samples, cfg.mini_batch_prompts,
                                                                      f"{cfg.seed}/mini_batches/{step}")]
        parts = [part for part in parts if part is not None]
        if not parts:
            return empty
        mismatch: list[torch.Tensor] = []
        self._fill_old_logprobs(parts[1:], mismatch)
        losses, grad_norms, clip_fractions, approx_kls, ratio_deviation, steps, nonfinite = [], [], [], [], 0.0, 0, False
        for update in range(cfg.updates_per_rollout):
            for part in parts:
                loss, grad_norm, diagnostics = self._optimizer_step(part, mismatch)
                nonfinite = not (math.isfinite(loss) and math.isfinite(grad_norm))
                if nonfinite:  # _optimizer_step did not step; later mini-batches would see the same
                    break
                steps += 1
                if update == 0:
                    losses.append(loss)
                grad_norms.append(grad_norm)
                clip_fractions.append(diagnostics.clip_fraction)
                approx_kls.append(diagnostics.approx_kl)
                ratio_deviation = max(ratio_deviation, diagnostics.ratio_max_deviation)
            if nonfinite:
                break
        values = {"update/loss": sum(losses) / len(losses) if losses else loss,
                  "update/grad_norm": sum(grad_norms) / len(grad_norms) if grad_norms else grad_norm,
                  "update/skipped": float(steps == 0), "update/nonfinite": float(nonfinite),
                  "update/trained_tokens": float(n_tokens),
                  "update/active_sequences": float(sum(len(part.active) for part in parts)),
                  "update/last_pass_loss": loss, "update/ratio_max_deviation": ratio_deviation,
                  "update/clip_fraction": sum(clip_fractions) / len(clip_fractions) if clip_fractions else 0.0,
                  "update/approx_kl": sum(approx_kls) / len(approx_kls) if approx_kls else 0.0,
                  "update/optimizer_steps": float(steps), "update/mini_batches": float(len(parts))}
        differences = self.dist.mean_and_max(mismatch)
        if differences:
            values["logprobs/engine_vs_trainer_mean_abs"], values["logprobs/engine_vs_trainer_max_abs"] = differences
        if self.correct_importance:
            weights = [w[m.bool()] for part in parts for w, m in zip(part.importance_weights, part.masks) if w is not None]
            weights = torch.cat(weights) if weights else torch.ones(0)
            truncated = self.dist.sum(float((weights >= self.config.train.importance_cap).sum()))
            counted = self.dist.sum(float(weights.numel()))
            values["update/importance_truncated_fraction"] = truncated / max(counted, 1.0)
            values["update/importance_weight_mean"] = self.dist.sum(float(weights.sum())) / max(counted, 1.0)
        return values

    def _prepare(self, samples: list[Sample]) -> "MiniBatch | None":
        """One mini-batch's micro-batches (this learner rank's share) and its loss normalizer; None
        when nothing in it carries gradient."""
        cfg = self.config.train
        n_tokens = sum(s.trained_tokens for s in samples)
        # A zero-advantage sample adds nothing to the gradient unless there is a KL term: skip its forward
        # (not under micro-token-mean, where its tokens count in its micro-batch's mean, as in verl).
        every = self.aggregation == "micro-token-mean"
        active = [s for s in samples if (every or s.carries_signal or cfg.kl_coef > 0) and s.trained_tokens > 0]
        if not any(s.carries_signal or cfg.kl_coef > 0 for s in active):
            return None
        # Samples sharing a context (prompt, + reset prefix) side by side: a micro-batch encodes it once.
        active.sort(key=lambda s: (len(s.prompt_ids) + s.train_start, s.prompt_ids + s.response_ids[:s.train_start],
                                   len(s.response_ids)))
        mine = self.dist.shard(active)  # this learner rank's share (all of them on one rank)
        micro_batches = [mine[start:start + cfg.micro_batch_size] for start in range(0, len(mine), cfg.micro_batch_size)]
        all_micro = max(1, math.ceil(len(active) / cfg.micro_batch_size))  # over every learner rank
        normalizer = aggregation_normalizer(self.aggregation, len(samples), n_tokens, all_micro)
        idle = [active[:1]] * self.dist.missing_passes(len(micro_batches))  # FSDP: as many passes on every rank
        none = [None] * len(micro_batches)
        return MiniBatch(active, micro_batches, normalizer, idle, list(none), list(none), list(none))

    def _fill_old_logprobs(self, parts: list["MiniBatch"], mismatch: list[torch.Tensor]) -> None:
        """Before any optimizer step: the old log-probabilities of later mini-batches. The trainer's
        own (a no-grad forward) where the importance correction needs them, under FSDP (every forward
        there is a collective, so with the idle passes) or where the engine gave none; else the
        engine's, with no forward."""
        for part in parts:
            for index, micro in enumerate(part.micro_batches):
                batch = self._collate(micro)
                if batch.sampling_logprobs is not None and not self.dist.shards and not self.correct_importance:
                    part.old_logprobs[index] = batch.sampling_logprobs
                    continue
                with torch.no_grad():
                    trainer_logprobs = self._logprobs(self.model, batch).detach()
                # Without the correction these forwards are FSDP's own or stand in for missing engine
                # log-probabilities: the mismatch stays the first mini-batch's, as on one rank.
                self._sampling_policy(part, index, batch, trainer_logprobs, mismatch if self.correct_importance else [])
            for micro in part.idle if self.dist.shards else ():
                with torch.no_grad():
                    self._logprobs(self.model, self._collate(micro))

    def _sampling_policy(self, part: "MiniBatch", index: int, batch, trainer_logprobs: torch.Tensor,
                         mismatch: list[torch.Tensor]) -> None:
        """Micro-batch `index`'s old log-probabilities from the trainer's own under the weights that
        sampled (`trainer_logprobs`, detached) and the engine's (`batch.sampling_logprobs`), their
        difference on trained tokens appended to `mismatch`. With the importance correction: the
        trainer's own, and the truncated weights min(exp(trainer - engine), C) (verl's TIS); without:
        the engine's where it gave them."""
        trained = batch.loss_mask.to(trainer_logprobs.device).bool()
        part.masks[index] = trained
        if batch.sampling_logprobs is None:
            part.old_logprobs[index] = trainer_logprobs
            return
        sampling_logprobs = batch.sampling_logprobs.to(trainer_logprobs.device)
        mismatch.append((sampling_logprobs - trainer_logprobs)[trained].abs().cpu())
        if self.correct_importance:
            part.old_logprobs[index] = trainer_logprobs
            part.importance_weights[index] = truncated_importance_weights(
                trainer_logprobs, sampling_logprobs, self.config.train.importance_cap, trained)
        else:
            part.old_logprobs[index] = torch.where(trained, sampling_logprobs, trainer_logprobs)

    def _optimizer_step(self, part: "MiniBatch", mismatch: list[torch.Tensor]) -> tuple[float, float, "StepDiagnostics"]:
        """One mini-batch: gradient accumulation over its micro-batches and one optimizer step; returns
        loss, gradient norm and the ratio diagnostics over the mini-batch. A micro-batch without old
        log-probabilities yet (the first mini-batch's first pass: weights not yet stepped, the policy
        that sampled) takes the engine's where the backend gave them, else the trainer's own, and
        records their difference in `mismatch`. The `idle` micro-batches add passes on zero weight:
        under FSDP each forward and backward gathers weights from every rank."""
        cfg, model = self.config.train, self.model
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total_loss, ratio_deviation, clipped, kl_sum, trained_tokens = 0.0, 0.0, 0.0, 0.0, 0.0
        for index, micro in enumerate(part.micro_batches):
            batch = self._collate(micro)
            entropy = None
            if self.loss_knobs.get("entropy_coef"):
                logprobs, entropy = self._logprobs(model, batch, with_entropy=True)
            else:
                logprobs = self._logprobs(model, batch)
            mask = batch.loss_mask.to(logprobs.device)
            if part.old_logprobs[index] is None:
                self._sampling_policy(part, index, batch, logprobs.detach().clone(), mismatch)
            old_logprobs = part.old_logprobs[index].to(logprobs.device)
            weights = part.importance_weights[index]
            reference_logprobs = self._reference_logprobs(batch) if self.needs_reference else None
            advantages = self._advantages(micro, old_logprobs, reference_logprobs, mask)
            inputs = LossInputs(logprobs=logprobs, old_logprobs=old_logprobs, advantages=advantages,
                                mask=mask, ref_logprobs=reference_logprobs, normalizer=part.normalizer,
                                token_weights=None if weights is None else weights.to(logprobs.device),
                                off_policy=torch.tensor([s.off_policy for s in micro], device=logprobs.device),
                                entropy=entropy)
            loss = policy_loss(self.loss_name, inputs, self.aggregation, cfg.kl_coef, cfg.kl_estimator, **self.loss_knobs)
            diagnostics = ratio_diagnostics(inputs, cfg.clip_eps)  # (the clip loss's bound, whatever the loss)
            loss.backward()
            total_loss += loss.item()
            ratio_deviation = max(ratio_deviation, diagnostics["ratio_max_deviation"])
            clipped += diagnostics["clipped_tokens"]
            kl_sum += diagnostics["approx_kl_sum"]
            trained_tokens += diagnostics["trained_tokens"]
        for micro in part.idle:
            batch = self._collate(micro)
            logprobs = self._logprobs(model, batch)
            if self.needs_reference:
                self._reference_logprobs(batch)
            (logprobs.sum() * 0).backward()
        # Learner ranks: the sum of every rank's share is the full batch's (each loss is / the step's normalizer).
        self.dist.all_reduce_gradients(self.parameters)
        total_loss, ratio_deviation = self.dist.sum(total_loss), self.dist.max(ratio_deviation)
        clipped, kl_sum, trained_tokens = self.dist.sum(clipped), self.dist.sum(kl_sum), self.dist.sum(trained_tokens)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, cfg.grad_clip))
        if math.isfinite(total_loss) and math.isfinite(grad_norm):  # else skipped: it would poison every weight
            self.optimizer.step()
        return total_loss, grad_norm, StepDiagnostics(ratio_deviation, clipped / max(trained_tokens, 1.0),
                                                      kl_sum / max(trained_tokens, 1.0))

    def _collate(self, micro: list[Sample]):
        """A micro-batch as the log-probability code takes it (each sample trained from its train_start)."""
        return collate([s.prompt_ids for s in micro], [s.response_ids for s in micro],
                       [s.train_start for s in micro], self.runtime.pad_id, [s.logprobs for s in micro])

    def _logprobs(self, model, batch, with_entropy: bool = False):
        # Under FSDP a row's shared context is not encoded once for all its rows (logprobs.py).
        with compute(self.config.model.dtype, next(model.parameters()).device):
            return response_logprobs(model, batch, share_contexts=not self.dist.shards, with_entropy=with_entropy)

    def _advantages(self, micro: list[Sample], old_logprobs: torch.Tensor, reference_logprobs: torch.Tensor | None,
                    mask: torch.Tensor) -> torch.Tensor:
        """[B] advantages, or [B, R] where a sample's tokens differ: tree segments (SPO-Tree), or a
        KL penalty inside the reward (SCoRe), which needs the old and reference log-probabilities."""
        device = old_logprobs.device
        coefficients = torch.tensor([s.reward_kl_coef for s in micro], device=device)
        if not any(s.segment_advantages for s in micro) and not bool(coefficients.any()):
            return torch.tensor([s.advantage for s in micro], device=device)
        advantages = token_advantages(micro, mask.shape[1]).to(device)
        if bool(coefficients.any()):
            advantages = with_reward_kl(advantages, coefficients, old_logprobs, reference_logprobs, mask)
        return advantages

    @torch.no_grad()
    def _reference_logprobs(self, batch) -> torch.Tensor:
        model = self.model
        if self.reference is not None:
            return self._logprobs(self.reference, batch)
        with model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext():
            return self._logprobs(model, batch)



class StepDiagnostics(NamedTuple):
    """One optimizer step's ratio diagnostics (losses.ratio_diagnostics) over its mini-batch: the
    largest |ratio - 1|, the share of trained tokens the clip bounds, the mean (r - 1) - log r."""

    ratio_max_deviation: float
    clip_fraction: float
    approx_kl: float


@dataclass
class MiniBatch:
    """One optimizer step's samples: those carrying gradient (`active`), this rank's micro-batches of
    them, the loss normalizer, FSDP's idle passes, and per micro-batch the old log-probabilities,
    the importance weights (with the correction on and the engine's log-probabilities known) and
    the trained-token mask they were computed on."""

    active: list[Sample]
    micro_batches: list[list[Sample]]
    normalizer: float
    idle: list[list[Sample]]
    old_logprobs: list[torch.Tensor | None]
    importance_weights: list[torch.Tensor | None]
    masks: list[torch.Tensor | None]


def importance_correction_on(config: Config) -> bool:
    """train.importance_correction resolved: auto is on where the engine and the trainer compute
    differently (vLLM's kernels, or bf16), off where they agree (the hf engine in fp32)."""
    setting = config.train.importance_correction
    if setting != "auto":
        return setting
    return config.generation.backend == "vllm" or config.model.dtype == "bfloat16"


def split_mini_batches(samples: list[Sample], prompts_per_batch: int | None, seed: str) -> list[list[Sample]]:
    """The step's samples as optimizer mini-batches: prompts shuffled (seeded), `prompts_per_batch`
    prompts each (the last may hold fewer), every prompt's samples together; None = one batch."""
    by_prompt: dict[str, list[Sample]] = {}
    for sample in samples:
        by_prompt.setdefault(sample.problem_id, []).append(sample)
    if prompts_per_batch is None or prompts_per_batch >= len(by_prompt):
        return [samples] if samples else []
    order = list(by_prompt)
    random.Random(seed).shuffle(order)
    return [[s for prompt in order[start:start + prompts_per_batch] for s in by_prompt[prompt]]
            for start in range(0, len(order), prompts_per_batch)]
