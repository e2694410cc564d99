"""The data-parallel learner: M processes started by `torchrun --nproc-per-node M -m resetrl.cli train`,
each with a full copy of the model and optimizer (docs/scale.md).

Rank 0 rolls out (in its process or on Ray workers) and sends the step's trained samples to every
rank; each rank runs the forward and backward passes of its contiguous share of them, and the
gradients are summed across ranks before the one optimizer step that every rank takes. Each rank's
loss is already divided by the step's global normalizer (sequences or tokens of the whole step,
`Trainer.update`), so the sum is the full batch's gradient: what DDP's average of per-rank means
computes, here with one all-reduce after gradient accumulation (DDP under `no_sync`). Rank 0 alone
evaluates and writes metrics and checkpoints; the other ranks start from its weights. With
`cluster.fsdp` the ranks hold shards instead of copies (`ShardedLearnerGroup`, fsdp.py); the methods
the trainer calls for it are the identity here.

With one process (no torchrun) every method is the identity and nothing is imported or started."""

from __future__ import annotations

import os
from datetime import timedelta

import torch

from resetrl.errors import ResetRLError, first_line


def launched_rank() -> int:
    """This process's learner rank as torchrun set it (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def local_part(tensor: torch.Tensor) -> torch.Tensor:
    """What this rank holds of `tensor`: its shard under FSDP (a DTensor), else all of it."""
    to_local = getattr(tensor, "to_local", None)
    return to_local() if to_local else tensor


class LearnerGroup:
    shards = False  # True under FSDP (ShardedLearnerGroup)

    def __init__(self, rank: int = 0, world_size: int = 1):
        self.rank, self.world_size = rank, world_size

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list) -> list:
        """This rank's contiguous share of `items` (sizes differ by at most one)."""
        if self.world_size == 1:
            return items
        size, extra = divmod(len(items), self.world_size)
        start = self.rank * size + min(self.rank, extra)
        return items[start:start + size + (self.rank < extra)]

    def all_reduce_gradients(self, parameters: list[torch.Tensor]) -> None:
        """Sum every parameter's gradient over the ranks, in one flat all-reduce. A rank that had no
        sample this step contributes zeros."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for parameter, grad in zip(parameters, grads):
            parameter.grad = flat[offset:offset + grad.numel()].view_as(grad).clone()
            offset += grad.numel()

    def _reduce(self, value: float, op) -> float:
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self._device())
        dist.all_reduce(tensor, op=op)
        return float(tensor.item())

    def sum(self, value: float) -> float:
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        return self._reduce(value, dist.ReduceOp.SUM)

    def max(self, value: float) -> float:
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        return self._reduce(value, dist.ReduceOp.MAX)

    def mean_and_max(self, parts: list[torch.Tensor]) -> tuple[float, float] | None:
        """Mean and max of the values in every rank's `parts`; None when no rank has any."""
        if self.world_size == 1:
            if not parts:
                return None
            values = torch.cat(parts)
            return float(values.mean()), float(values.max())
        values = torch.cat(parts) if parts else torch.zeros(0)
        count = self.sum(float(values.numel()))
        total = self.sum(float(values.sum()) if values.numel() else 0.0)
        largest = self.max(float(values.max()) if values.numel() else float("-inf"))
        return (total / count, largest) if count else None

    def broadcast_object(self, value):
        """Rank 0's `value` on every rank (pickled)."""
        if self.world_size == 1:
            return value
        import torch.distributed as dist

        holder = [value]
        dist.broadcast_object_list(holder, src=0, device=self._device())
        return holder[0]

    def training_model(self, model: torch.nn.Module, keep_whole: bool = True) -> torch.nn.Module:
        """The model the update trains: `model` itself (FSDP: its shards)."""
        return model

    def whole_optimizer(self, optimizer: torch.optim.Optimizer):
        """The optimizer as checkpoints save and load it: itself (FSDP: a view that gathers the shards)."""
        return optimizer

    def missing_passes(self, passes: int) -> int:
        """Forward and backward passes this rank must add to match the rank with the most (FSDP only:
        there each pass is a collective)."""
        return 0

    def gather_weights(self, trained: torch.nn.Module, whole: torch.nn.Module) -> None:
        """Rank 0's whole copy takes the trained weights: the same model here (FSDP: gathered)."""

    def start_equal(self, whole: torch.nn.Module, trained: torch.nn.Module, optimizer) -> None:
        """Every rank takes rank 0's weights (after its warm-up, or the checkpoint all loaded)."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        with torch.no_grad():
            for parameter in trained.parameters():
                if parameter.requires_grad:
                    dist.broadcast(parameter.data, src=0)

    def close(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    def _device(self) -> torch.device:
        import torch.distributed as dist

        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def learner_group(device: str = "auto", fsdp: bool = False) -> LearnerGroup:
    """The learner ranks this process belongs to: one (itself) unless started by torchrun, which sets
    RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Joins the process group: NCCL when the
    model is on a GPU (each rank on GPU LOCAL_RANK), gloo on CPU. `fsdp`: the ranks shard the model."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        if fsdp:
            print("resetrl: warning: cluster.fsdp has no effect with one learner rank (start 2 or more with torchrun)")
        return LearnerGroup()
    import torch.distributed as dist

    rank = launched_rank()
    on_gpu = torch.cuda.is_available() and not device.startswith("cpu")
    if on_gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if on_gpu else "gloo", timeout=timedelta(minutes=30))
        except (RuntimeError, ValueError) as error:
            raise ResetRLError(f"learner rank {rank} of {world_size} cannot join the process group ({first_line(error)}); "
                               "start the ranks with torchrun (docs/scale.md)") from None
    if fsdp:
        from resetrl.cluster.fsdp import ShardedLearnerGroup

        return ShardedLearnerGroup(rank, world_size)
    return LearnerGroup(rank, world_size)
