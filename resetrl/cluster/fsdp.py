"""FSDP learner ranks (`cluster.fsdp: true` under torchrun, docs/scale.md): each rank holds a shard of
the trained weights, their gradients and the optimizer state (FSDP2, `fully_shard` per decoder layer
and the root) instead of a whole copy.

Rank 0 rolls out, evaluates and writes checkpoints with a whole copy of the weights (`runtime.model`),
which every update refreshes from the shards: generation runs hundreds of forward passes that no other
rank takes part in, and a sharded forward gathers each layer's weights from every rank. The sharded
model trains: gradients are reduce-scattered in each backward (summed, since each rank's loss is
already divided by the whole step's normalizer), and every rank runs as many forward and backward
passes as the rank with the most micro-batches, its missing ones on zero weight, because each pass is
a collective. Checkpoints hold whole tensors in the unsharded layout, so a run may resume with or
without FSDP and on any number of ranks."""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch

from resetrl.cluster.distributed import LearnerGroup
from resetrl.errors import ResetRLError


def shard_model(model: torch.nn.Module) -> torch.nn.Module:
    """`model` sharded in place: one FSDP unit per decoder layer (transformers names their class in
    `_no_split_modules`) and the root (embeddings, final norm, head). Gradients are summed over the
    ranks, not averaged, and with the plain SUM reduction that gloo has."""
    from torch.distributed.fsdp import FSDPModule, fully_shard

    layer_names = set(getattr(model, "_no_split_modules", None) or ())
    layers = [module for module in model.modules() if type(module).__name__ in layer_names]
    if not layers:
        raise ResetRLError(f"cluster.fsdp: cannot find the decoder layers of {type(model).__name__} (it names none "
                           "in _no_split_modules); train it without cluster.fsdp")
    for layer in layers:
        fully_shard(layer)
    fully_shard(model)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)
    return model


def _is_sharded(value) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(value, DTensor)


def _parameter_shaped(value, parameter: torch.Tensor) -> bool:
    """An optimizer state entry sharded like its parameter (Adam's moments, SGD's momentum), not a
    step count."""
    return torch.is_tensor(value) and value.shape == parameter.shape


class _Shard(NamedTuple):
    """Where rank 0 will scatter a parameter-shaped optimizer tensor from: its shape and dtype."""
    shape: torch.Size
    dtype: torch.dtype


class WholeOptimizer:
    """The optimizer as a checkpoint sees it: `state_dict` gathers every rank's shard of the state into
    whole tensors (a collective: every rank calls it, rank 0 writes the result); `load_state_dict`,
    on rank 0, keeps the whole state until `ShardedLearnerGroup.start_equal` hands each rank its share."""

    def __init__(self, optimizer: torch.optim.Optimizer, is_main: bool):
        self.optimizer, self.is_main, self.loaded = optimizer, is_main, None

    def state_dict(self) -> dict | None:
        """The whole state on rank 0, in host memory (None on the other ranks)."""
        state = self.optimizer.state_dict()
        # The state's order is the parameters' on every rank, so the ranks gather the same tensor together.
        # Before the first step there is no state, hence nothing to gather (the step-0 checkpoint).
        whole = {index: {key: self._whole(value) for key, value in values.items()}
                 for index, values in state["state"].items()}
        return {**state, "state": whole} if self.is_main else None

    def _whole(self, value):
        if not _is_sharded(value):
            return value
        full = value.full_tensor()  # a collective; one tensor at a time in memory on the other ranks
        return full.cpu() if self.is_main else None

    def load_state_dict(self, state: dict) -> None:
        self.loaded = state


class ShardedLearnerGroup(LearnerGroup):
    shards = True

    def training_model(self, model: torch.nn.Module, keep_whole: bool = True) -> torch.nn.Module:
        """The sharded model the update trains. Rank 0 shards a copy when `keep_whole`, keeping `model`
        whole for generation (the memory cost: one whole copy of the weights on rank 0)."""
        return shard_model(copy.deepcopy(model) if keep_whole and self.is_main else model)

    def whole_optimizer(self, optimizer: torch.optim.Optimizer) -> WholeOptimizer:
        return WholeOptimizer(optimizer, self.is_main)

    def all_reduce_gradients(self, parameters: list[torch.Tensor]) -> None:
        """Nothing: FSDP has reduce-scattered the gradients in each backward pass."""

    def missing_passes(self, passes: int) -> int:
        return int(self.max(float(passes))) - passes

    def gather_weights(self, trained: torch.nn.Module, whole: torch.nn.Module) -> None:
        """Rank 0's whole copy takes the trained weights, gathered from every rank's shard."""
        targets = dict(whole.named_parameters()) if self.is_main else {}
        with torch.no_grad():
            for name, parameter in trained.named_parameters():
                if parameter.requires_grad:
                    full = parameter.full_tensor()
                    if self.is_main:
                        targets[name].copy_(full)

    def start_equal(self, whole: torch.nn.Module, trained: torch.nn.Module, optimizer: WholeOptimizer) -> None:
        """Every rank takes its shard of rank 0's weights (after its warm-up or the checkpoint it
        loaded) and of the optimizer state rank 0 loaded from the checkpoint (none on a fresh start)."""
        from torch.distributed.tensor import distribute_tensor

        sources = dict(whole.named_parameters()) if self.is_main else {}
        parameters = [p for p in trained.parameters() if p.requires_grad]
        with torch.no_grad():
            for name, parameter in trained.named_parameters():
                if parameter.requires_grad:
                    source = sources[name].detach() if self.is_main else torch.empty(parameter.shape, dtype=parameter.dtype)
                    parameter.copy_(distribute_tensor(source.to(parameter.device), parameter.device_mesh,
                                                      parameter.placements, src_data_rank=0))
        # The optimizer state: its layout first (which entries are parameter-shaped, the step counts),
        # then each parameter-shaped tensor scattered from rank 0.
        loaded = optimizer.loaded
        layout = self.broadcast_object(None if loaded is None else {**loaded, "state": {
            index: {key: _Shard(value.shape, value.dtype) if _parameter_shaped(value, parameters[index]) else value
                    for key, value in values.items()} for index, values in loaded["state"].items()}})
        if layout is None:
            return
        state = {}
        for index, values in layout["state"].items():
            parameter, state[index] = parameters[index], {}
            for key, value in values.items():
                if isinstance(value, _Shard):
                    source = loaded["state"][index][key] if self.is_main else torch.empty(value.shape, dtype=value.dtype)
                    value = distribute_tensor(source.to(parameter.device), parameter.device_mesh, parameter.placements,
                                              src_data_rank=0)
                state[index][key] = value
        optimizer.optimizer.load_state_dict({**layout, "state": state})
        optimizer.loaded = None
