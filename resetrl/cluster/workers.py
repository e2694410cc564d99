"""Rollout workers on Ray (`cluster.rollout_workers`, `cluster.address`; docs/scale.md).

N Ray actors, each with the run's generation backend (hf or vLLM) and its own copy of the weights.
The step's prompts are handed out one at a time to whichever worker is free; a prompt's whole
rollout runs on one worker, so its prefix cache serves its reset continuations, and is seeded from
(seed, step, prompt index), so the step's samples do not depend on the number of workers
(`shard.py`). After each update the trainable weights are put once in Ray's object store and every
worker copies them in (on GPUs an NCCL broadcast would replace the object store: docs/scale.md).

A worker that dies (its process killed, its node lost) is dropped with a warning naming it and the
prompt it held goes to another worker: the step completes with the same samples. With no worker
left the run stops with an error naming the last one, before the step is trained; `--resume`
continues from the last checkpoint."""

from __future__ import annotations

import os
import socket
import time
from collections import deque

import torch

from resetrl.cluster.shard import PromptRoller, PromptRollout, merge_rollouts
from resetrl.config import ClusterConfig, Config
from resetrl.errors import ResetRLError, first_line
from resetrl.faults import kill_point
from resetrl.rollout import RolloutResult
from resetrl.tasks.base import Problem


def require_ray():
    try:
        import ray
    except ImportError:
        raise ResetRLError("cluster.rollout_workers > 1 and cluster.address need Ray: "
                           "pip install 'resetrl[scale]'") from None
    return ray


def trainable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What changes in an update, by name: every weight of a full fine-tune, or the LoRA adapter."""
    return {name: p.detach().to("cpu") for name, p in model.named_parameters() if p.requires_grad}


class RolloutWorker:
    """The body of one Ray actor; in-process it is the reference the tests compare the actors with."""

    def __init__(self, config: Config, rank: int):
        from resetrl.runtime import build_runtime

        self.rank = rank
        self.roller = PromptRoller(build_runtime(config))

    def where(self) -> str:
        return f"pid {os.getpid()} on {socket.gethostname()}"

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        runtime = self.roller.runtime
        parameters = dict(runtime.model.named_parameters())
        with torch.no_grad():  # copy_ bumps each parameter's version: caches keyed on it are dropped
            for name, value in weights.items():
                parameters[name].copy_(value)
        runtime.backend.sync_weights()  # an engine with its own copy of the weights (vLLM)

    def roll(self, step: int, index: int, problem: Problem) -> PromptRollout:
        kill_point(f"worker{self.rank}", step)  # RESETRL_FAULT=worker<rank>:<step> (tests)
        return self.roller.roll(step, index, problem)


def connect(cluster: ClusterConfig) -> bool:
    """Join or start the Ray cluster; True when this run started it (and shuts it down)."""
    ray = require_ray()
    if ray.is_initialized():  # a caller that connected already (a script, the tests)
        return False
    address = cluster.address or "local"
    if address not in ("auto", "local") and not address.startswith("ray://"):
        host, _, port = address.rpartition(":")
        try:  # a plain TCP probe: Ray itself retries an unreachable address for a minute
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as error:
            raise ResetRLError(f"cluster.address={address}: cannot reach a Ray head node there ({error}); "
                               "start one with `ray start --head` (docs/scale.md)") from None
    options = {"include_dashboard": False, "logging_level": "WARNING"}
    if address == "local":  # room for every worker even where they outnumber the cores
        options["num_cpus"] = max(os.cpu_count() or 1, int(cluster.rollout_workers * cluster.worker_cpus + 0.999))
    try:
        ray.init(address=address, **options)
    except Exception as error:  # Ray raises a bare Exception when a local node does not come up in time
        action = "cannot start a local Ray cluster" if address == "local" else "cannot join the Ray cluster"
        raise ResetRLError(f"cluster.address={address}: {action} ({first_line(error)})") from None
    return True


class RolloutWorkers:
    """The run's pool of Ray rollout workers. Created at the start of a run: the workers load the
    model while the trainer warms up; the first `push_weights` waits for them."""

    def __init__(self, config: Config):
        self.ray = ray = require_ray()
        self.cluster = config.cluster
        self.started_cluster = connect(config.cluster)
        actor = ray.remote(RolloutWorker)
        # Fault injection (docs/reliability.md) reaches workers wherever they run.
        env = {"RESETRL_FAULT": os.environ["RESETRL_FAULT"]} if "RESETRL_FAULT" in os.environ else {}
        self.workers = {
            rank: actor.options(num_cpus=self.cluster.worker_cpus, num_gpus=self.cluster.worker_gpus,
                                max_restarts=0, runtime_env={"env_vars": env} if env else None).remote(config, rank)
            for rank in range(self.cluster.rollout_workers)}
        self.where: dict[int, str] = {}  # rank -> "pid 123 on host", once started
        self.started = False

    def _wait_started(self) -> None:
        ray = self.ray
        pending = {self.workers[rank].where.remote(): rank for rank in self.workers}
        deadline = time.monotonic() + self.cluster.start_timeout
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=max(deadline - time.monotonic(), 0))
            if not done:
                rank = min(pending.values())
                raise ResetRLError(f"rollout worker {rank} did not start within cluster.start_timeout="
                                   f"{self.cluster.start_timeout:g} s; the cluster has {ray.available_resources()} "
                                   f"free for {len(pending)} worker(s) asking cluster.worker_cpus="
                                   f"{self.cluster.worker_cpus:g}, worker_gpus={self.cluster.worker_gpus:g}")
            rank = pending.pop(done[0])
            try:
                self.where[rank] = ray.get(done[0])
            except ray.exceptions.RayError as error:
                raise ResetRLError(f"rollout worker {rank} failed to start: {_first_line(error)}") from None
        self.started = True

    def _name(self, rank: int) -> str:
        return f"rollout worker {rank} ({self.where.get(rank, 'not started')})"

    def _drop(self, rank: int, during: str, error: Exception) -> None:
        """Forget a dead worker; an error when it was the last one."""
        del self.workers[rank]
        if not self.workers:
            raise ResetRLError(f"{self._name(rank)} died {during} and no rollout worker is left "
                               f"({_first_line(error)}); the step was not trained: rerun with --resume to "
                               "continue from the last checkpoint")
        print(f"resetrl: warning: {self._name(rank)} died {during}; its work goes to the "
              f"{len(self.workers)} other worker(s) ({_first_line(error)})")

    def push_weights(self, model: torch.nn.Module, step: int = 0) -> float:
        """Every worker takes the model's trainable weights; returns the seconds it took."""
        ray = self.ray
        if not self.started:
            self._wait_started()
        started = time.perf_counter()
        weights = ray.put(trainable_weights(model))
        calls = {rank: worker.load_weights.remote(weights) for rank, worker in self.workers.items()}
        for rank, call in calls.items():
            try:
                ray.get(call)
            except ray.exceptions.RayActorError as error:
                self._drop(rank, f"taking the weights of step {step}", error)
            except ray.exceptions.RayTaskError as error:
                raise ResetRLError(f"{self._name(rank)} failed to take new weights: {_first_line(error)}") from None
        return time.perf_counter() - started

    def rollout(self, step: int, problems: list[Problem]) -> RolloutResult:
        """The step's rollouts: each prompt to the next free worker; a dead worker's prompt to another."""
        ray = self.ray
        started = time.perf_counter()
        queue = deque(enumerate(problems))
        running: dict = {}  # call -> (rank, index, problem)
        parts: list[PromptRollout] = []
        while queue or running:
            busy = {rank for rank, _, _ in running.values()}
            for rank in [rank for rank in self.workers if rank not in busy]:
                if queue:
                    index, problem = queue.popleft()
                    running[self.workers[rank].roll.remote(step, index, problem)] = (rank, index, problem)
            done, _ = ray.wait(list(running), num_returns=1)
            rank, index, problem = running.pop(done[0])
            try:
                parts.append(ray.get(done[0]))
            except ray.exceptions.RayActorError as error:
                self._drop(rank, f"in step {step} (prompt {index}, problem {problem.id})", error)
                queue.appendleft((index, problem))
            except ray.exceptions.RayTaskError as error:
                raise ResetRLError(f"{self._name(rank)} failed on prompt {index} of step {step} "
                                   f"(problem {problem.id}): {_first_line(error)}") from None
        return merge_rollouts(parts, problems, time.perf_counter() - started)

    def close(self) -> None:
        for worker in self.workers.values():
            self.ray.kill(worker)
        self.workers = {}
        if self.started_cluster:
            self.ray.shutdown()


def _first_line(error: Exception) -> str:
    """A Ray error's own message, without the remote traceback Ray wraps around it."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException) and cause is not error:
        error = cause
    for line in str(error).splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback", "File ", "ray::")):
            return line
    return type(error).__name__
