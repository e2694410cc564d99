"""The RL run: data order, rollouts (fresh + resets) -> groups -> advantages -> the learner's update
(resetrl/learner.py) -> weights to the engine, evaluation, checkpoints.

A run folder holds config.yaml, metrics.jsonl, tensorboard/, rollouts.jsonl, checkpoints/ and
eval.json. Every step is seeded from (seed, step), so a run resumed from its last checkpoint
reproduces the uninterrupted run's next steps."""

from __future__ import annotations

import json
import random
import resource
import shutil
import time
from pathlib import Path

import torch
from tqdm import tqdm

from resetrl.advantages import assign_advantages
from resetrl.checkpoint import STATE_FILE, latest_checkpoint, load_checkpoint, save_checkpoint
from resetrl.config import Config
from resetrl.errors import ResetRLError, RunInterrupted
from resetrl.evaluation import evaluate, test_problems
from resetrl.faults import kill_point
from resetrl.groups import TOKEN_KINDS
from resetrl.learner import Learner
from resetrl.methods import METHODS
from resetrl.metrics import MetricsWriter, add_counts, read_jsonl, truncate_jsonl
from resetrl.outputs import check_run_folder, clear_run_folder, model_record
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
        self.runtime = runtime or build_runtime(config, warms_up=True)
        rt, cfg = self.runtime, config
        # The method's localizer first checks the task gives what it needs (the oracle: first errors).
        self.layout, self.localizer, self.scorer = rollout_parts(rt)
        self.collector = build_collector(rt, self.layout, self.localizer, self.scorer)  # once per run
        self.train_problems = rt.task.problems("train", cfg.task.train_size, cfg.task.seed)
        if not self.train_problems:
            raise ResetRLError(f"task {rt.task.name!r} has no training problems")
        self.test_problems = test_problems(rt.task, cfg)
        self.learner = Learner(cfg, rt, self.dist)  # the update: model, optimizer, loss
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
        rng = self._seed_step(step)
        return self.collector.collect(problems, {p.id: self.runtime.prompt_ids(p) for p in problems}, rng, step)

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
        """Train into the run folder; returns the run's summary (rank 0's; {} on other ranks). A
        folder that holds another run is refused unless `resume` (same config: continue from its
        last checkpoint) or `overwrite` (replace it). Learner rank 0 writes the run (and holds the
        Ray rollout workers, if any); other ranks follow it. The plots, the HTML report and
        summary.json are api.train's, after this."""
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
            load_checkpoint(Path(checkpoint), self.runtime.model, self.learner.optimizer)
        self.dist.start_equal(self.runtime.model, self.learner.model, self.learner.whole_optimizer)
        for step in range(start_step + 1, self.config.train.steps + 1):
            self.train_step(step)
            self._check_finite_weights(f"the update of step {step} (train.lr={self.config.train.lr:g})")
            if self.dist.shards and self._checkpoint_due(step):
                self.learner.whole_optimizer.state_dict()  # rank 0 gathers the optimizer state from every rank's shard
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
            state = load_checkpoint(checkpoint, rt.model, self.learner.whole_optimizer)
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
            save_checkpoint(self.run_dir, 0, rt.model, self.learner.whole_optimizer,
                            {**self._state(0, True), "initial_eval_done": False, "warmup_metrics": warmup_values},
                            cfg.checkpoint.keep)
        rt.end_warmup()  # the frozen base to bf16 after an fp32 warm-up (warmup.dtype), before any rollout
        self._phase = "during the step-0 evaluation"
        if resumed is None and cfg.warmup.steps:
            kill_point("warmup", 0)
        summary, _ = self.evaluate(0)
        summary.update(warmup_values)
        self.metrics.write(0, summary)
        self._logged_step = 0
        save_checkpoint(self.run_dir, 0, rt.model, self.learner.whole_optimizer, self._state(0, True), cfg.checkpoint.keep)
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
        else:  # resumed past step 0: a bf16 run's frozen base, loaded fp32 for its fp32 warm-up, goes to bf16
            rt.end_warmup()
        # Other learner ranks load the same checkpoint, then take this rank's weights (its warm-up).
        self.dist.broadcast_object((str(checkpoint) if checkpoint else None, start_step))
        self.dist.start_equal(rt.model, self.learner.model, self.learner.whole_optimizer)
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
                save_checkpoint(self.run_dir, step, rt.model, self.learner.whole_optimizer, self._state(step, warmup_done),
                                cfg.checkpoint.keep)
            progress.set_postfix(reward=f"{values['reward/all_trained']:.2f}",
                                 reset_groups=int(values["groups/reset"]),
                                 tok_s=f"{values['throughput/tokens_per_s']:.0f}",
                                 acc="-" if last_eval is None else f"{last_eval:.2f}")
        self._phase, self._progress = "after the last step", None
        self.metrics.close()
        _warn_about_skipped_updates(read_jsonl(self.run_dir / "metrics.jsonl"))
        return self._final_summary()  # api.train adds the plots, the report and summary.json

    def _check_finite_weights(self, after: str, model: torch.nn.Module | None = None) -> None:
        """Stop before a checkpoint could hold non-finite weights: the trained ones (each rank its own
        shard under FSDP), or `model`'s."""
        parameters = self.learner.parameters if model is None else [p for p in model.parameters() if p.requires_grad]
        if not all(bool(torch.isfinite(local_part(p)).all()) for p in parameters):
            raise ResetRLError(f"{after} made weights non-finite; lower the learning rate "
                               "(no checkpoint was written with them)")

    def train_step(self, step: int) -> dict[str, float]:
        """One RL step: problems -> rollout -> advantages -> the learner's update -> weights to the
        engine -> record. Rank 0 rolls out and records; every learner rank trains its share of the
        samples; rank 0's metrics are returned."""
        started = time.perf_counter()
        result = None
        if self.dist.is_main:
            result = self.rollout(step, self.batch_for_step(step))
            kill_point("rollout", step)
            # Contexts the backend kept for reuse within the rollout are stale once the weights change.
            self.runtime.backend.release_memory()
            assign_advantages(result.groups, METHODS.get(self.config.method).advantage(self.config.train))
        trained = self.dist.broadcast_object([s for g in result.groups for s in g.samples] if self.dist.is_main else None)
        update_started = time.perf_counter()
        update_values = self.learner.update(trained, step)
        self.learner.gather_weights()
        if not self.dist.is_main:
            return update_values
        values = dict(result.stats)
        add_counts(values, self.scorer.take_stats())  # rollout workers' counts are in result.stats
        values.update(update_values)
        values["time/update"] = time.perf_counter() - update_started
        kill_point("update", step)
        self._push_weights(step, values)
        self._record(step, result, values, started)
        return values

    def _push_weights(self, step: int, values: dict[str, float]) -> None:
        """An engine with its own copy of the weights (vLLM), or the Ray rollout workers, get the new
        ones (timed there); the backend's counts join the step's metrics."""
        self.runtime.backend.sync_weights()
        if self.workers is not None:
            values["time/weight_push"] = self.workers.push_weights(self.runtime.model, step)
        add_counts(values, self.runtime.backend.take_stats())

    def _record(self, step: int, result, values: dict[str, float], started: float) -> None:
        """The step's throughput, memory and chain counts into `values`; its samples to rollouts.jsonl."""
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

    def _final_summary(self) -> dict:
        rows = read_jsonl(self.run_dir / "metrics.jsonl")
        evals = [(r["step"], r["eval/accuracy"]) for r in rows if "eval/accuracy" in r]
        return {"method": self.config.method, "run_dir": str(self.run_dir), "eval_curve": evals,
                "initial_accuracy": evals[0][1] if evals else None,
                "final_accuracy": evals[-1][1] if evals else None,
                "steps": self.config.train.steps,
                "dtype": self.config.model.dtype, "importance_correction": self.learner.correct_importance,
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
