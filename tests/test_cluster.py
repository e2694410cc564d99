"""Past one machine (resetrl/cluster): the same numbers at any scale, on a real local Ray cluster and
two gloo learner ranks, a worker that dies mid-step, and the cluster settings' errors.

The Ray tests skip where Ray is not installed; with RESETRL_REQUIRE_RAY=1 (CI) that is a failure."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resetrl.cli import main
from resetrl.cluster.distributed import LearnerGroup
from resetrl.cluster.shard import PromptRoller, merge_rollouts, prompt_seed
from resetrl.config import load_config
from resetrl.errors import ResetRLError
from resetrl.runtime import build_runtime

# srpo on the smoke preset: with 6 prompts its first step has a group with reward variance (an update).
# A worker takes seconds to start; on a machine shared with long jobs, minutes.
STEP = ["method=srpo", "train.prompts_per_step=6", "train.steps=1", "cluster.start_timeout=1200"]


def rows_of(run_dir: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / name).read_text().splitlines()]


def checkpoint_weights(run_dir: Path, step: int = 1) -> dict[str, torch.Tensor]:
    """The weights of a step's checkpoint (the LoRA adapter's, with LoRA)."""
    from safetensors.torch import load_file

    (weights,) = (run_dir / "checkpoints" / f"step_{step:06d}" / "model").glob("*.safetensors")
    return load_file(weights)


def assert_same_training(one: Path, two: Path, step: int = 1, optimizer: bool = False) -> None:
    """Two runs have the same rollouts, the same loss and gradient norm in `step` (which trained), and
    the same weights after it, within floating-point tolerance; with `optimizer`, the same AdamW state."""
    assert rows_of(one, "rollouts.jsonl") == rows_of(two, "rollouts.jsonl")
    step_one, step_two = rows_of(one, "metrics.jsonl")[step], rows_of(two, "metrics.jsonl")[step]
    assert step_one["update/skipped"] == 0.0 and step_one["update/active_sequences"] > 0  # it trained
    for key in ("update/loss", "update/grad_norm"):
        assert step_two[key] == pytest.approx(step_one[key], rel=1e-4, abs=1e-7), key
    weights_one, weights_two = checkpoint_weights(one, step), checkpoint_weights(two, step)
    assert weights_one.keys() == weights_two.keys()
    for name in weights_one:
        torch.testing.assert_close(weights_two[name], weights_one[name], rtol=1e-5, atol=5e-5)
    if optimizer:
        optimizer_one, optimizer_two = (torch.load(run / "checkpoints" / f"step_{step:06d}" / "optimizer.pt")
                                        for run in (one, two))
        assert optimizer_two["param_groups"] == optimizer_one["param_groups"]
        assert optimizer_one["state"].keys() == optimizer_two["state"].keys()
        for index, state in optimizer_one["state"].items():
            for key, value in state.items():
                torch.testing.assert_close(optimizer_two["state"][index][key], value, rtol=1e-5, atol=1e-8)


def same_samples(a, b) -> bool:
    key = lambda s: (s.problem_id, s.kind, s.group_id, s.response_ids, s.reward, s.reset_step, s.train_start)
    return [key(s) for s in a.all_samples()] == [key(s) for s in b.all_samples()]


# -- without Ray --------------------------------------------------------------------------------
def test_cluster_settings_fail_in_one_line(monkeypatch):
    with pytest.raises(ResetRLError, match="cluster.rollout_workers: Input should be greater than or equal to 1"):
        load_config(preset="smoke", overrides=["cluster.rollout_workers=0"])
    with pytest.raises(ResetRLError, match="cluster.address: must be auto, local, host:port"):
        load_config(preset="smoke", overrides=["cluster.address=nowhere"])
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ResetRLError, match=r"Ray is not installed: pip install 'resetrl\[scale\]'"):
        load_config(preset="smoke", overrides=["cluster.rollout_workers=2"])
    assert load_config(preset="smoke").cluster.uses_ray is False  # the default needs no Ray


def test_a_prompt_rolls_out_the_same_whichever_worker_draws_it():
    """Two in-process workers, each given half the prompts in another order, give the samples one
    worker gives for all of them: per-prompt seeds, an empty prefix cache per prompt."""
    config = load_config(preset="smoke", overrides=STEP)
    one, other = PromptRoller(build_runtime(config)), PromptRoller(build_runtime(config))
    problems = one.runtime.task.problems("train", 4, 0)
    alone = merge_rollouts([one.roll(1, index, p) for index, p in enumerate(problems)], problems, 1.0)
    split = [other.roll(1, 3, problems[3]), one.roll(1, 1, problems[1]),
             other.roll(1, 0, problems[0]), one.roll(1, 2, problems[2])]
    together = merge_rollouts(split, problems, 1.0)
    assert same_samples(alone, together)
    assert [g.id for g in together.groups] == list(range(len(together.groups)))
    assert together.stats["groups/total"] == len(together.groups)
    assert prompt_seed(0, 1, 2) != prompt_seed(0, 2, 1)


def test_in_process_per_prompt_rollouts_are_the_workers_rollouts(tmp_path):
    """generation.per_prompt: the trainer's own rollouts of a step are the samples a worker gives for
    each prompt (so one process equals any number of Ray workers, tested on Ray below); the default
    batches the step's prompts, other draws. A Ray run records per_prompt, so moving it off its
    workers resumes only with the same draws."""
    from resetrl.outputs import config_differences
    from resetrl.trainer import Trainer

    config = load_config(preset="smoke", overrides=STEP + ["generation.per_prompt=true"])
    trainer = Trainer(config, tmp_path / "run")
    problems = trainer.batch_for_step(1)
    worker = PromptRoller(build_runtime(config))
    expected = merge_rollouts([worker.roll(1, index, p) for index, p in enumerate(problems)], problems, 1.0)
    assert same_samples(trainer.rollout(1, problems), expected)
    batched = Trainer(load_config(preset="smoke", overrides=STEP), tmp_path / "batched")
    assert not same_samples(batched.rollout(1, problems), expected)
    on_ray = load_config(preset="smoke", overrides=STEP + ["cluster.rollout_workers=2"])
    assert on_ray.generation.per_prompt is True
    assert config_differences(on_ray.model_dump(), load_config(preset="smoke", overrides=STEP).model_dump()) == [
        "generation.per_prompt: True -> False"]


def test_learner_ranks_split_the_samples_contiguously():
    shares = [LearnerGroup(rank, 3).shard(list(range(8))) for rank in range(3)]
    assert shares == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert LearnerGroup().shard([1, 2]) == [1, 2]


def test_unreachable_cluster_address_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    assert main(["train", "--preset", "smoke", "--set", f"cluster.address=127.0.0.1:{port}",
                 "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert f"cluster.address=127.0.0.1:{port}: cannot reach a Ray head node there" in error
    assert len(error.splitlines()) == 1


def test_one_pass_log_probabilities_equal_the_shared_context_ones():
    """What FSDP ranks compute (each row whole, in one forward pass) gives the log-probabilities and
    gradients of the default (each shared context encoded once), up to rounding."""
    from resetrl.logprobs import collate, response_logprobs

    runtime = build_runtime(load_config(preset="smoke"))
    model = runtime.model
    batch = collate([[5, 6, 7, 8], [5, 6, 7, 8], [9, 10]], [[11, 12, 13], [11, 12, 14, 15], [16, 17]], [1, 1, 0],
                    runtime.pad_id)
    results = []
    for share_contexts in (True, False):
        model.zero_grad()
        logprobs = response_logprobs(model, batch, share_contexts=share_contexts)
        (logprobs * batch.loss_mask).sum().backward()
        results.append((logprobs * batch.loss_mask, [p.grad.clone() for p in model.parameters()]))
    (shared, shared_grads), (whole, whole_grads) = results
    assert batch.context_ids.shape[0] == 2  # two rows share a context
    torch.testing.assert_close(whole, shared, rtol=1e-5, atol=1e-5)
    for a, b in zip(whole_grads, shared_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# -- on a real local Ray cluster ----------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_address():
    if os.environ.get("RESETRL_REQUIRE_RAY") == "1":
        import ray
    else:
        ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_one_worker_one_rank_equals_two_workers_two_gloo_ranks(tmp_path, ray_address):
    """The issue's test: the same seed gives the same rollouts and, after a step, the same weights
    with 1 Ray rollout worker and 1 learner rank as with 2 workers and 2 gloo ranks (torchrun)."""
    one = load_config(preset="smoke", overrides=STEP + ["cluster.rollout_workers=1", f"cluster.address={ray_address}"])
    train_on_one_thread(one, tmp_path / "one")
    train_on_two_ranks(tmp_path / "two", STEP + ["cluster.rollout_workers=2", f"cluster.address={ray_address}"])
    assert_same_training(tmp_path / "one", tmp_path / "two")
    # And one process without Ray, rolling out each prompt as the workers do (generation.per_prompt).
    train_on_one_thread(load_config(preset="smoke", overrides=STEP + ["generation.per_prompt=true"]), tmp_path / "local")
    assert_same_training(tmp_path / "one", tmp_path / "local")
    # Adam's first step moves weights by up to train.lr (1e-3): far more than the tolerance above.
    start, weights_one = load_file_step0(tmp_path / "one"), checkpoint_weights(tmp_path / "one")
    assert max(float((start[name] - weights_one[name]).abs().max()) for name in start) > 5e-4


# GRPO groups of 3 on 5 prompts with a KL term: 15 trained samples, 8 on one rank and 7 on the other,
# so with micro-batches of 1 the second rank runs an idle pass; the KL term runs the sharded reference.
FSDP_STEP = ["method=grpo", "rollout.group_size=3", "train.prompts_per_step=5", "train.kl_coef=0.01",
             "train.micro_batch_size=1", "train.steps=1"]


def test_one_rank_equals_two_fsdp_gloo_ranks(tmp_path):
    """cluster.fsdp: 2 gloo ranks, each holding a shard of the weights, gradients and AdamW state, give
    the rollouts, and after a step the weights and the optimizer state, of 1 rank without FSDP (the
    checkpoint holds whole tensors in the unsharded layout)."""
    train_on_one_thread(load_config(preset="smoke", overrides=FSDP_STEP), tmp_path / "one")
    train_on_two_ranks(tmp_path / "two", FSDP_STEP + ["cluster.fsdp=true"])
    assert_same_training(tmp_path / "one", tmp_path / "two", optimizer=True)
    assert rows_of(tmp_path / "one", "metrics.jsonl")[1]["update/active_sequences"] == 15
    start, weights_one = load_file_step0(tmp_path / "one"), checkpoint_weights(tmp_path / "one")
    assert max(float((start[name] - weights_one[name]).abs().max()) for name in start) > 5e-4


def test_fsdp_with_lora_resumes_a_run_of_one_rank(tmp_path):
    """A LoRA run of 1 rank checkpoints step 1; 2 FSDP gloo ranks resume it (rank 0 hands each rank its
    shard of the adapter and the AdamW state) and train step 2 as the 1-rank run did."""
    lora = FSDP_STEP[:-1] + ["model.lora=true", "train.steps=2"]
    train_on_one_thread(load_config(preset="smoke", overrides=lora), tmp_path / "one")
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    shutil.rmtree(tmp_path / "two" / "checkpoints" / "step_000002")
    train_on_two_ranks(tmp_path / "two", lora + ["cluster.fsdp=true"], "--resume")
    assert_same_training(tmp_path / "one", tmp_path / "two", step=2, optimizer=True)
    assert (tmp_path / "one" / "checkpoints" / "step_000002" / "model" / "adapter_model.safetensors").exists()


def train_on_one_thread(config, run_dir: Path) -> None:
    """One process on one thread, as each of torchrun's ranks: the warm-up's arithmetic the same to
    the last bit."""
    from resetrl.trainer import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(config, run_dir).run()
    finally:
        torch.set_num_threads(threads)


def train_on_two_ranks(run_dir: Path, overrides: list[str], *flags: str) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
               str(_free_port()), "-m", "resetrl.cli", "train", "--preset", "smoke", "--out", str(run_dir), *flags]
    for assignment in overrides:
        command += ["--set", assignment]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]


def load_file_step0(run_dir: Path) -> dict[str, torch.Tensor]:
    """Step 0's weights: kept when checkpoint.keep >= 2 (the default)."""
    from safetensors.torch import load_file

    return load_file(run_dir / "checkpoints" / "step_000000" / "model" / "model.safetensors")


def test_a_worker_that_dies_mid_step(ray_address, monkeypatch, capsys):
    """Worker 1 is killed (SIGKILL) in step 2: its prompt is retried on worker 0 and the step's samples
    are the ones no death gives. With the last worker gone the step stops with an error naming it."""
    from resetrl.cluster.workers import RolloutWorkers

    monkeypatch.setenv("RESETRL_FAULT", "worker1:2")
    config = load_config(preset="smoke", overrides=STEP + ["cluster.rollout_workers=2",
                                                           f"cluster.address={ray_address}"])
    reference = PromptRoller(build_runtime(config))
    problems = reference.runtime.task.problems("train", 4, 0)
    workers = RolloutWorkers(config)
    try:
        workers.push_weights(reference.runtime.model)
        for step in (1, 2):
            expected = merge_rollouts([reference.roll(step, i, p) for i, p in enumerate(problems)], problems, 1.0)
            assert same_samples(workers.rollout(step, problems), expected), step
        assert "rollout worker 1 (pid" in capsys.readouterr().out
        assert list(workers.workers) == [0]
        import ray

        ray.kill(workers.workers[0])
        with pytest.raises(ResetRLError, match=r"rollout worker 0 \(pid .*\) died in step 3 .* no rollout "
                                               r"worker is left .* rerun with --resume"):
            workers.rollout(3, problems)
    finally:
        workers.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
