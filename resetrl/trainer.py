"""The RL trainer: rollouts (fresh + resets) -> groups -> advantages -> loss -> AdamW update.

A run folder holds config.yaml, metrics.jsonl, tensorboard/, rollouts.jsonl, checkpoints/ and
eval.json. Every step is seeded from (seed, step), so a run resumed from its last checkpoint
reproduces the uninterrupted run's next steps."""

from __future__ import annotations

import copy
import json
import math
import random
import resource
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from resetrl.advantages import assign_advantages, token_advantages, with_reward_kl
from resetrl.checkpoint import STATE_FILE, latest_checkpoint, load_checkpoint, save_checkpoint
from resetrl.config import Config
from resetrl.errors import ResetRLError, RunInterrupted
from resetrl.evaluation import evaluate, test_problems
from resetrl.faults import kill_point
from resetrl.groups import TOKEN_KINDS, Sample
from resetrl.logprobs import collate, response_logprobs
from resetrl.losses import LOSSES, LossInputs, aggregation_normalizer, default_aggregation, truncated_importance_weights
from resetrl.methods import METHODS
from resetrl.metrics import MetricsWriter, add_counts, read_jsonl, truncate_jsonl
from resetrl.outputs import check_run_folder, clear_run_folder, model_record
from resetrl.plots import plot_run
from resetrl.precision import compute
from resetrl.report import write_report_or_warn
from resetrl.cluster.distributed import learner_group, local_part
from resetrl.rollout import build_collector, rollout_parts
from resetrl.runtime import build_runtime
from resetrl.sft import supervised_warmup
from resetrl.tasks.checking import CHECK_STATS


def peak_memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


class Trainer:
    def __init__(self, config: Config, run_dir: str | Path, runtime=None):
        self.config, self.run_dir = config, Path(run_dir)
        # Learner ranks under torchrun (resetrl/cluster/distributed.py); one, this process, otherwise.
        self.dist = learner_group(config.model.device, config.cluster.fsdp)
        self.workers = None  # Ray rollout workers, while a run with cluster.rollout_workers > 1 runs
        self.roller = None  # rolls out one prompt at a time in this process (generation.per_prompt)
        self.runtime = runtime or build_runtime(config)
        rt, cfg = self.runtime, config
        # The method's localizer first checks the task gives what it needs (the oracle: first errors).
        self.layout, self.localizer, self.scorer = rollout_parts(rt)
        self.train_problems = rt.task.problems("train", cfg.task.train_size, cfg.task.seed)
        if not self.train_problems:
            raise ResetRLError(f"task {rt.task.name!r} has no training problems")
        self.test_problems = test_problems(rt.task, cfg)
        method = METHODS.get(cfg.method)
        # A KL term (in the loss, or in SCoRe's reward) needs the reference policy: the adapter
        # switched off, or a frozen copy.
        self.needs_reference = cfg.train.kl_coef > 0 or method.reward_kl
        self.reference = None
        if self.needs_reference and not cfg.model.lora:
            self.reference = self.dist.training_model(copy.deepcopy(rt.model).eval().requires_grad_(False),
                                                      keep_whole=False)
        # The model the update trains: rt.model, or under cluster.fsdp its shards (rank 0 keeping rt.model
        # whole for rollouts, evaluation and checkpoints, resetrl/cluster/fsdp.py).
        self.model = self.dist.training_model(rt.model)
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.train.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.parameters, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(self.parameters, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.whole_optimizer = self.dist.whole_optimizer(self.optimizer)  # what checkpoints save and load
        self.loss_name = method.loss(cfg.train)
        self.loss_options = method.loss_options(cfg)  # a method's own loss options (Critique-GRPO's, SPO's)
        self.aggregation = (self.loss_options.pop("aggregation", None) or method.aggregation(cfg.train)
                            or default_aggregation(self.loss_name))
        self.correct_importance = importance_correction_on(cfg)
        if cfg.train.updates_per_rollout > 1 and self.loss_name != "clip":
            print(f"resetrl: warning: train.updates_per_rollout={cfg.train.updates_per_rollout} with loss "
                  f"{self.loss_name!r}: passes after the first are uncorrected off-policy steps; loss=clip "
                  "weights them by the ratio to the sampling policy")
        if self.layout.parents and cfg.rollout.group_size != self.layout.budget:
            print(f"resetrl: warning: rollout.group_size={cfg.rollout.group_size} is GRPO's group size; method "
                  f"{cfg.method!r} trains the budget of layout {cfg.rollout.layout} ({self.layout.budget} rollouts per prompt)")

    # -- data ---------------------------------------------------------------------------------
    def batch_for_step(self, step: int):
        """Prompts of step `step` (1-indexed): consecutive slices of per-epoch shuffles."""
        per_step, n = self.config.train.prompts_per_step, len(self.train_problems)
        start = (step - 1) * per_step
        batch = []
        for position in range(start, start + per_step):
            epoch, index = divmod(position, n)
            order = list(range(n))
            random.Random(f"{self.config.train.seed}/epoch/{epoch}").shuffle(order)
            batch.append(self.train_problems[order[index]])
        # The same problem twice in one step (a tiny train set) would clash on problem ids.
        return list({p.id: p for p in batch}.values())

    def _seed_step(self, step: int) -> random.Random:
        seed = self.config.train.seed * 1_000_003 + step
        torch.manual_seed(seed)
        return random.Random(seed)

    # -- one step -----------------------------------------------------------------------------
    def rollout(self, step: int, problems):
        if self.workers is not None:  # on Ray actors, one prompt at a time (resetrl/cluster/workers.py)
            return self.workers.rollout(step, problems)
        if self.config.generation.per_prompt:  # here, one prompt at a time, as the workers roll them
            from resetrl.cluster.shard import PromptRoller, roll_each_prompt

            if self.roller is None:
                self.roller = PromptRoller(self.runtime)
            return roll_each_prompt(self.roller, step, problems)
        rt = self.runtime
        collector = build_collector(rt, self.layout, self.localizer, self.scorer, problems, self._seed_step(step), step)
        return collector.collect(problems, {p.id: rt.prompt_ids(p) for p in problems})

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
        losses, grad_norms, clip_fractions, ratio_deviation, steps, nonfinite = [], [], [], 0.0, 0, False
        for update in range(cfg.updates_per_rollout):
            for part in parts:
                loss, grad_norm, deviation, clipped = self._optimizer_step(part, mismatch)
                nonfinite = not (math.isfinite(loss) and math.isfinite(grad_norm))
                if nonfinite:  # _optimizer_step did not step; later mini-batches would see the same
                    break
                steps += 1
                if update == 0:
                    losses.append(loss)
                grad_norms.append(grad_norm)
                clip_fractions.append(clipped)
                ratio_deviation = max(ratio_deviation, deviation)
            if nonfinite:
                break
        values = {"update/loss": sum(losses) / len(losses) if losses else loss,
                  "update/grad_norm": sum(grad_norms) / len(grad_norms) if grad_norms else grad_norm,
                  "update/skipped": float(steps == 0), "update/nonfinite": float(nonfinite),
                  "update/trained_tokens": float(n_tokens),
                  "update/active_sequences": float(sum(len(part.active) for part in parts)),
                  "update/last_pass_loss": loss, "update/ratio_max_deviation": ratio_deviation,
                  "update/clip_fraction": sum(clip_fractions) / len(clip_fractions) if clip_fractions else 0.0,
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
                engine = _engine_logprobs(micro, batch.loss_mask.shape)
                if engine is not None and not self.dist.shards and not self.correct_importance:
                    part.old_logprobs[index] = engine
                    continue
                with torch.no_grad():
                    own = self._logprobs(self.model, batch).detach()
                # Without the correction these forwards are FSDP's own or stand in for missing engine
                # log-probabilities: the mismatch stays the first mini-batch's, as on one rank.
                self._sampling_policy(part, index, micro, own, batch.loss_mask, mismatch if self.correct_importance else [])
            for micro in part.idle if self.dist.shards else ():
                with torch.no_grad():
                    self._logprobs(self.model, self._collate(micro))

    def _sampling_policy(self, part: "MiniBatch", index: int, micro: list[Sample], own: torch.Tensor,
                         loss_mask: torch.Tensor, mismatch: list[torch.Tensor]) -> None:
        """Micro-batch `index`'s old log-probabilities from the trainer's own under the weights that
        sampled (`own`, detached) and the engine's, their difference on trained tokens appended to
        `mismatch`. With the importance correction: the trainer's own, and the truncated weights
        min(exp(own - engine), C) (verl's TIS); without: the engine's where it gave them."""
        engine = _engine_logprobs(micro, own.shape)
        trained = loss_mask.to(own.device).bool()
        part.masks[index] = trained
        if engine is None:
            part.old_logprobs[index] = own
            return
        engine = engine.to(own.device)
        mismatch.append((engine - own)[trained].abs().cpu())
        if self.correct_importance:
            part.old_logprobs[index] = own
            part.importance_weights[index] = truncated_importance_weights(own, engine, self.config.train.importance_cap,
                                                                          trained)
        else:
            part.old_logprobs[index] = torch.where(trained, engine, own)

    def _optimizer_step(self, part: "MiniBatch", mismatch: list[torch.Tensor]) -> tuple[float, float, float, float]:
        """One mini-batch: gradient accumulation over its micro-batches and one optimizer step; returns
        loss, gradient norm, the largest |ratio - 1| and the share of trained tokens whose ratio the
        clip bounds. A micro-batch without old log-probabilities yet (the first mini-batch's first
        pass: weights not yet stepped, the policy that sampled) takes the engine's where the backend
        gave them, else the trainer's own, and records their difference in `mismatch`. The `idle`
        micro-batches add passes on zero weight: under FSDP each forward and backward gathers weights
        from every rank."""
        cfg, model = self.config.train, self.model
        loss_function = LOSSES.get(self.loss_name)
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total_loss, ratio_deviation, clipped, trained_tokens = 0.0, 0.0, 0.0, 0.0
        for index, micro in enumerate(part.micro_batches):
            batch = self._collate(micro)
            entropy = None
            if self.loss_options.get("entropy_coef"):
                logprobs, entropy = self._logprobs(model, batch, with_entropy=True)
            else:
                logprobs = self._logprobs(model, batch)
            mask = batch.loss_mask.to(logprobs.device)
            if part.old_logprobs[index] is None:
                self._sampling_policy(part, index, micro, logprobs.detach().clone(), batch.loss_mask, mismatch)
            old_logprobs = part.old_logprobs[index].to(logprobs.device)
            weights = part.importance_weights[index]
            reference_logprobs = self._reference_logprobs(batch) if self.needs_reference else None
            advantages = self._advantages(micro, old_logprobs, reference_logprobs, mask)
            inputs = LossInputs(logprobs=logprobs, old_logprobs=old_logprobs, advantages=advantages,
                                mask=mask, ref_logprobs=reference_logprobs, normalizer=part.normalizer,
                                token_weights=None if weights is None else weights.to(logprobs.device),
                                off_policy=torch.tensor([s.off_policy for s in micro], device=logprobs.device),
                                entropy=entropy)
            loss = loss_function(inputs, cfg.clip_eps, cfg.dual_clip, self.aggregation, cfg.kl_coef, cfg.kl_estimator,
                                 **self.loss_options)
            loss.backward()
            total_loss += loss.item()
            with torch.no_grad():
                ratio = (logprobs - old_logprobs).exp()
                ratio_deviation = max(ratio_deviation, float(((ratio - 1).abs() * mask).max()))
                # The clip binds where the ratio left [1 - eps, 1 + eps] in the advantage's direction.
                signs = inputs.token_advantages()
                bound = ((signs > 0) & (ratio > 1 + cfg.clip_eps)) | ((signs < 0) & (ratio < 1 - cfg.clip_eps))
                clipped += float((bound * mask).sum())
                trained_tokens += float(mask.sum())
        for micro in part.idle:
            batch = self._collate(micro)
            logprobs = self._logprobs(model, batch)
            if self.needs_reference:
                self._reference_logprobs(batch)
            (logprobs.sum() * 0).backward()
        # Learner ranks: the sum of every rank's share is the full batch's (each loss is / the step's normalizer).
        self.dist.all_reduce_gradients(self.parameters)
        total_loss, ratio_deviation = self.dist.sum(total_loss), self.dist.max(ratio_deviation)
        clipped, trained_tokens = self.dist.sum(clipped), self.dist.sum(trained_tokens)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, cfg.grad_clip))
        if math.isfinite(total_loss) and math.isfinite(grad_norm):  # else skipped: it would poison every weight
            self.optimizer.step()
        return total_loss, grad_norm, ratio_deviation, clipped / max(trained_tokens, 1.0)

    def _collate(self, micro: list[Sample]):
        """A micro-batch as the log-probability code takes it (each sample trained from its train_start)."""
        return collate([s.prompt_ids for s in micro], [s.response_ids for s in micro],
                       [s.train_start for s in micro], self.runtime.pad_id)

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

    # -- the run ------------------------------------------------------------------------------
    def evaluate(self, step: int) -> tuple[dict[str, float], list[dict]]:
        started = time.perf_counter()
        # Sampled evaluation draws from its own seed, so it does not depend on what training sampled.
        torch.manual_seed(self.config.train.seed * 1_000_003 + 500_000 + step)
        summary, records = evaluate(self.runtime, self.test_problems, self.config.eval.temperature,
                                    self.config.eval.samples)
        summary["time/eval"] = time.perf_counter() - started
        return summary, records

    def _state(self, step: int, warmup_done: bool) -> dict:
        return {"warmup_done": warmup_done, "data_position": step * self.config.train.prompts_per_step,
                "method": self.config.method}

    def run(self, resume: bool = False, overwrite: bool = False) -> dict:
        """Train into the run folder. A folder that holds another run is refused unless `resume`
        (same config: continue from its last checkpoint) or `overwrite` (replace it). Learner rank 0
        writes the run (and holds the Ray rollout workers, if any); other ranks follow it."""
        try:
            if not self.dist.is_main:
                return self._follow()
            if self.config.cluster.uses_ray:
                from resetrl.cluster.workers import RolloutWorkers

                self.workers = RolloutWorkers(self.config)  # they load the model while this process warms up
            return self._run(resume, overwrite)
        finally:
            if self.workers is not None:
                self.workers.close()
                self.workers = None
            self.dist.close()

    def _follow(self) -> dict:
        """A learner rank other than 0: start where rank 0 starts (its checkpoint, then its weights),
        then train its share of every step's samples."""
        checkpoint, start_step = self.dist.broadcast_object(None)
        if checkpoint and not self.dist.shards:  # under FSDP rank 0 hands each rank its share (start_equal)
            load_checkpoint(Path(checkpoint), self.runtime.model, self.optimizer)
        self.dist.start_equal(self.runtime.model, self.model, self.whole_optimizer)
        for step in range(start_step + 1, self.config.train.steps + 1):
            self.train_step(step)
            self._check_finite_weights(f"the update of step {step} (train.lr={self.config.train.lr:g})")
            if self.dist.shards and self._checkpoint_due(step):
                self.whole_optimizer.state_dict()  # rank 0 gathers the optimizer state from every rank's shard
        return {}

    def _checkpoint_due(self, step: int) -> bool:
        return step == self.config.train.steps or step % self.config.checkpoint.every == 0

    def _run(self, resume: bool, overwrite: bool) -> dict:
        cfg, rt = self.config, self.runtime
        extended = check_run_folder(self.run_dir, cfg, resume, overwrite)
        start_step, warmup_done = 0, False
        checkpoint = latest_checkpoint(self.run_dir) if resume else None
        if not checkpoint:
            clear_run_folder(self.run_dir)  # what a killed or replaced run left
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(cfg.to_yaml())
        if not checkpoint:  # a resumed run keeps the record of the model it started from
            (self.run_dir / "model.json").write_text(json.dumps(model_record(cfg), indent=2))
        state = {}
        if checkpoint:
            state = load_checkpoint(checkpoint, rt.model, self.whole_optimizer)
            start_step, warmup_done = state["step"], state["warmup_done"]
            if start_step > cfg.train.steps:
                raise ResetRLError(f"--resume: train.steps={cfg.train.steps} is below the run's last checkpoint "
                                   f"(step {start_step}); pass train.steps >= {start_step}")
            if extended:
                print(f"resetrl: --resume changes {'; '.join(extended)}")
            # A warm-up checkpoint (step 0, not yet evaluated): the step-0 row is written again.
            logged = start_step if state.get("initial_eval_done", True) else -1
            for name in ("metrics.jsonl", "rollouts.jsonl"):
                torn = truncate_jsonl(self.run_dir / name, logged)
                if torn:
                    print(f"resetrl: dropped {torn} torn line(s) of {name} (a write cut short by the kill)")
            print(f"resetrl: resumed from {checkpoint} (step {start_step})")
        elif resume:
            print(f"resetrl: no checkpoint in {self.run_dir}; starting from scratch")
        # TensorBoard drops the events a killed run logged after its last checkpoint.
        self.metrics = MetricsWriter(self.run_dir, cfg.logging, cfg.model_dump(),
                                     purge_step=start_step + 1 if checkpoint else None)
        # Where Ctrl-C found the run (its message) and the last step whose metrics row is whole.
        self._phase, self._logged_step, self._progress = "during start-up", start_step if checkpoint else None, None
        try:
            return self._train(checkpoint, state, start_step, warmup_done)
        except KeyboardInterrupt:
            raise self._interrupted() from None

    def _start(self, resumed: dict | None) -> None:
        """The warm-up (unless `resumed`, a warm-up checkpoint's state, holds it) and the step-0
        evaluation, each followed by a checkpoint of step 0."""
        cfg, rt = self.config, self.runtime
        warmup_values = (resumed or {}).get("warmup_metrics", {})
        if resumed is None and cfg.warmup.steps:
            self._phase = "during the warm-up"
            started = time.perf_counter()
            losses = supervised_warmup(rt, self.train_problems, cfg.warmup.steps, cfg.warmup.batch_size,
                                       cfg.warmup.lr, cfg.train.seed, cfg.train.micro_batch_size)
            warmup_values = {"warmup/final_loss": losses[-1], "time/warmup": time.perf_counter() - started}
            self._check_finite_weights(f"the warm-up (warmup.lr={cfg.warmup.lr:g})", rt.model)
            # Saved before the step-0 evaluation, so a run stopped there resumes without redoing the warm-up.
            save_checkpoint(self.run_dir, 0, rt.model, self.whole_optimizer,
                            {**self._state(0, True), "initial_eval_done": False, "warmup_metrics": warmup_values},
                            cfg.checkpoint.keep)
        self._phase = "during the step-0 evaluation"
        if resumed is None and cfg.warmup.steps:
            kill_point("warmup", 0)
        summary, _ = self.evaluate(0)
        summary.update(warmup_values)
        self.metrics.write(0, summary)
        self._logged_step = 0
        save_checkpoint(self.run_dir, 0, rt.model, self.whole_optimizer, self._state(0, True), cfg.checkpoint.keep)
        print(f"resetrl: step 0 accuracy {summary['eval/accuracy']:.3f} on {len(self.test_problems)} test problems")

    def _interrupted(self) -> RunInterrupted:
        """Ctrl-C: leave the folder as a resume expects it (no checkpoint staging, no metrics or
        rollouts of an unfinished step) and say where the run stopped."""
        if self._progress is not None:
            self._progress.close()
        for staging in (self.run_dir / "checkpoints").glob("*.tmp"):
            shutil.rmtree(staging, ignore_errors=True)
        for name in ("metrics.jsonl", "rollouts.jsonl"):
            truncate_jsonl(self.run_dir / name, self._logged_step if self._logged_step is not None else -1)
        self.metrics.close()
        last = latest_checkpoint(self.run_dir)
        if last is None:
            return RunInterrupted(f"interrupted {self._phase}; no checkpoint was written yet, so --resume starts "
                                  "again" + (" with the warm-up" if self.config.warmup.steps else ""))
        state = json.loads((last / STATE_FILE).read_text())
        held = " (the warm-up's result)" if not state.get("initial_eval_done", True) else ""
        return RunInterrupted(f"interrupted {self._phase}; the last checkpoint is step {state['step']}{held}; "
                              f"continue with --resume (same --out {self.run_dir})")

    def _train(self, checkpoint, state: dict, start_step: int, warmup_done: bool) -> dict:
        cfg, rt = self.config, self.runtime
        if not checkpoint or not state.get("initial_eval_done", True):
            self._start(state if checkpoint else None)
            warmup_done = True
        # Other learner ranks load the same checkpoint, then take this rank's weights (its warm-up).
        self.dist.broadcast_object((str(checkpoint) if checkpoint else None, start_step))
        self.dist.start_equal(rt.model, self.model, self.whole_optimizer)
        if self.workers is not None:
            self.workers.push_weights(rt.model, start_step)

        last_eval = None
        progress = self._progress = tqdm(range(start_step + 1, cfg.train.steps + 1), desc=f"{cfg.method}",
                                         unit="step", initial=start_step, total=cfg.train.steps)
        nonfinite_steps = 0
        for step in progress:
            self._phase = f"at step {step}"
            values = self.train_step(step)
            self._check_finite_weights(f"the update of step {step} (train.lr={cfg.train.lr:g})")
            nonfinite_steps = nonfinite_steps + 1 if values.get("update/nonfinite") else 0
            is_last = step == cfg.train.steps
            if is_last or (cfg.eval.every and step % cfg.eval.every == 0):
                summary, records = self.evaluate(step)
                values.update(summary)
                last_eval = summary["eval/accuracy"]
                if is_last:
                    (self.run_dir / "eval.json").write_text(json.dumps({"step": step, **summary, "records": records}, indent=1))
            values["checks/timeouts"] = float(CHECK_STATS.timeouts)  # answer checks over their time limit, so far
            self.metrics.write(step, values)
            self._logged_step = step
            if nonfinite_steps >= cfg.train.max_nonfinite_steps:
                raise ResetRLError(
                    f"step {step}: non-finite loss or gradient norm in {nonfinite_steps} consecutive steps, "
                    f"each update skipped (train.max_nonfinite_steps); lower train.lr (now {cfg.train.lr:g}); "
                    f"the last checkpoint holds finite weights")
            if self._checkpoint_due(step):
                save_checkpoint(self.run_dir, step, rt.model, self.whole_optimizer, self._state(step, warmup_done),
                                cfg.checkpoint.keep)
            progress.set_postfix(reward=f"{values['reward/all_trained']:.2f}",
                                 reset_groups=int(values["groups/reset"]),
                                 tok_s=f"{values['throughput/tokens_per_s']:.0f}",
                                 acc="-" if last_eval is None else f"{last_eval:.2f}")
        self._phase, self._progress = "after the last step, writing the plots and report", None
        self.metrics.close()
        plot_run(self.run_dir)
        final = self._final_summary()
        # The HTML report is a by-product: a failure is warned about and left as null here, never raised.
        report = write_report_or_warn(self.run_dir)
        final["report"] = report.name if report else None
        (self.run_dir / "summary.json").write_text(json.dumps(final, indent=2))
        _warn_about_skipped_updates(read_jsonl(self.run_dir / "metrics.jsonl"))
        return final

    def _check_finite_weights(self, after: str, model: torch.nn.Module | None = None) -> None:
        """Stop before a checkpoint could hold non-finite weights: the trained ones (each rank its own
        shard under FSDP), or `model`'s."""
        parameters = self.parameters if model is None else [p for p in model.parameters() if p.requires_grad]
        if not all(bool(torch.isfinite(local_part(p)).all()) for p in parameters):
            raise ResetRLError(f"{after} made weights non-finite; lower the learning rate "
                               "(no checkpoint was written with them)")

    def train_step(self, step: int) -> dict[str, float]:
        """Rank 0 rolls out; every learner rank trains its share; rank 0's metrics are returned."""
        started = time.perf_counter()
        if self.dist.is_main:
            problems = self.batch_for_step(step)
            result = self.rollout(step, problems)
            kill_point("rollout", step)
            # Contexts the backend kept for reuse within the rollout are stale once the weights change.
            release_memory = getattr(self.runtime.backend, "release_memory", None)
            if release_memory:
                release_memory()
            assign_advantages(result.groups, METHODS.get(self.config.method).advantage(self.config.train))
        trained = self.dist.broadcast_object([s for g in result.groups for s in g.samples] if self.dist.is_main else None)
        update_started = time.perf_counter()
        update_values = self.update(trained, step)
        self.dist.gather_weights(self.model, self.runtime.model)  # FSDP: rank 0's whole copy for rollouts
        if not self.dist.is_main:
            return update_values
        values = dict(result.stats)
        add_counts(values, self.scorer.take_stats())  # rollout workers' counts are in result.stats
        values.update(update_values)
        values["time/update"] = time.perf_counter() - update_started
        kill_point("update", step)
        # An engine with its own copy of the weights (vLLM) gets the new ones now (timed there).
        self.runtime.backend.sync_weights()
        if self.workers is not None:
            values["time/weight_push"] = self.workers.push_weights(self.runtime.model, step)
        add_counts(values, self.runtime.backend.take_stats())
        values["time/step"] = time.perf_counter() - started
        generated = sum(values.get(f"tokens/{kind}", 0.0) for kind in TOKEN_KINDS)
        rollout_seconds = sum(values.get(f"time/{phase}", 0.0) for phase in ("fresh", "localize", "reset"))
        values["throughput/tokens_per_s"] = generated / max(rollout_seconds, 1e-9)
        values["memory/peak_rss_gb"] = peak_memory_gb()
        samples = result.all_samples()
        # Chains the model closed a thought of without writing anything in it (the report shows them).
        values["chains/with_empty_thought"] = float(sum(any(not t.strip() for t in s.thoughts) for s in samples))
        with open(self.run_dir / "rollouts.jsonl", "a") as handle:
            for sample in samples:
                handle.write(json.dumps(sample.record(step)) + "\n")
        return values

    def _final_summary(self) -> dict:
        rows = read_jsonl(self.run_dir / "metrics.jsonl")
        evals = [(r["step"], r["eval/accuracy"]) for r in rows if "eval/accuracy" in r]
        return {"method": self.config.method, "run_dir": str(self.run_dir), "eval_curve": evals,
                "initial_accuracy": evals[0][1] if evals else None,
                "final_accuracy": evals[-1][1] if evals else None,
                "steps": self.config.train.steps,
                "dtype": self.config.model.dtype, "importance_correction": self.correct_importance,
                "peak_rss_gb": peak_memory_gb()}


def _warn_about_skipped_updates(rows: list[dict]) -> None:
    steps = [r for r in rows if "update/skipped" in r]
    nonfinite = int(sum(r.get("update/nonfinite", 0.0) for r in steps))
    if nonfinite:
        print(f"resetrl: warning: {nonfinite} step(s) skipped their update for a non-finite loss or gradient "
              "norm (update/nonfinite)")
    if steps and all(r["update/skipped"] for r in steps):
        print(f"resetrl: warning: every RL step ({len(steps)}) skipped its update: no group had reward variance"
              + (" or the loss was not finite" if nonfinite else "") + ", so RL never changed the weights")


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


def _engine_logprobs(micro: list[Sample], shape) -> torch.Tensor | None:
    """The sampling engine's log-probabilities of the trained tokens, [B, R] as `collate` aligns them;
    None when a sample has none (a backend that does not report them)."""
    if any(s.logprobs is None or len(s.logprobs) != len(s.response_ids) for s in micro):
        return None
    values = torch.zeros(shape, dtype=torch.float32)
    for row, sample in enumerate(micro):
        trained = sample.logprobs[sample.train_start:]
        if any(value != value for value in trained):  # NaN: a prefix whose log-probabilities are unknown
            return None
        values[row, :len(trained)] = torch.tensor(trained, dtype=torch.float32)
    return values
