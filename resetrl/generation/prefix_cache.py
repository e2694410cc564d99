"""KV caches for batched decoding with shared prefixes.

`BatchKVCache` is a transformers `Cache` whose layers are preallocated once per generation call
([rows, kv_heads, capacity, head_dim]): a decoding step writes one column in place instead of
concatenating (and so copying) the whole cache, rows are expanded (one encoded context -> its n
continuations) and dropped (finished rows) by indexing, and a row may hold masked holes (left padding,
or the gap between a reused prefix and the tokens encoded after it); the attention mask and explicit
position ids make holes invisible to the model.

`PrefixStore` keeps the keys and values of contexts encoded earlier, so a later call that starts with
the same tokens (a reset context = prompt + prefix, a top-up draw of the same prompt, the next thought
in thought-by-thought mode) encodes only what is new. It is bounded in bytes, evicts the least
recently used entries, and forgets everything when the model's weights change.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from resetrl.generation.base import weights_version


class PreallocatedLayer(DynamicLayer):
    """One layer's keys and values, [rows, kv_heads, capacity, head_dim], filled up to `length`."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.keys, self.values = keys, values
        self.length = 0
        self.dtype, self.device = keys.dtype, keys.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if end > self.keys.shape[-2]:
            raise RuntimeError(f"KV cache capacity {self.keys.shape[-2]} exceeded ({end} columns)")
        self.keys[:, :, self.length:end] = key_states
        self.values[:, :, self.length:end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_seq_length(self) -> int:
        return self.length

    def get_max_length(self) -> int:
        return self.keys.shape[-2]

    def take_rows(self, rows: torch.Tensor) -> None:
        """Keep (and repeat) the given rows. Only the filled columns are copied: the rest of a fresh
        buffer stays untouched, so memory is committed only as columns are written."""
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_empty((len(rows), *old.shape[1:]))
            new[:, :, :self.length] = old[rows, :, :self.length]
            setattr(self, name, new)


class BatchKVCache(Cache):
    """A preallocated cache for every layer of a decoder whose layers all attend to the full context."""

    def __init__(self, layers: list[PreallocatedLayer]):
        super().__init__(layers=layers)

    @classmethod
    def allocate(cls, model, rows: int, capacity: int, dtype: torch.dtype | None = None) -> "BatchKVCache":
        """Room for `capacity` positions of `rows` rows in every layer, in `dtype` (the dtype the
        model computes in; default: its parameters')."""
        config = model.config.get_text_config(decoder=True)
        heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        parameter = next(model.parameters())
        shape = (rows, heads, capacity, head_dim)
        empty = lambda: torch.empty(shape, dtype=dtype or parameter.dtype, device=parameter.device)  # noqa: E731
        return cls([PreallocatedLayer(empty(), empty()) for _ in range(config.num_hidden_layers)])

    @property
    def length(self) -> int:
        return self.layers[0].length

    def set_length(self, length: int) -> None:
        for layer in self.layers:
            layer.length = length

    def take_rows(self, rows: torch.Tensor) -> None:
        for layer in self.layers:
            layer.take_rows(rows)

    def write_row(self, row: int, start: int, entry: "StoredPrefix", tokens: int) -> None:
        """Copy the first `tokens` cached positions of `entry` into row `row`, columns start.. ."""
        for layer, (keys, values) in zip(self.layers, entry.layers):
            layer.keys[row, :, start:start + tokens] = keys[:, :tokens]
            layer.values[row, :, start:start + tokens] = values[:, :tokens]

    def read_row(self, row: int, columns: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A copy of a row's keys and values at `columns` (its real tokens, holes left out)."""
        return [(layer.keys[row, :, columns], layer.values[row, :, columns]) for layer in self.layers]


def supports_batch_cache(model) -> bool:
    """True when every layer of the model caches plain full-attention keys and values (Llama, Qwen2,
    Mistral without a sliding window, ...), which is what `BatchKVCache` holds."""
    try:
        layers = DynamicCache(config=model.config).layers
    except Exception:
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


@dataclass
class StoredPrefix:
    tokens: tuple[int, ...]
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [kv_heads, len, head_dim]
    array: np.ndarray = field(init=False, repr=False)  # the tokens, for fast prefix comparison

    def __post_init__(self) -> None:
        self.array = np.asarray(self.tokens, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers)


class PrefixStore:
    """Keys and values of encoded contexts, looked up by longest common token prefix.

    Any common prefix is reusable (attention is causal: the first t positions' keys and values depend
    on the first t tokens only). Bounded by `max_bytes`, least recently used out first; cleared when
    any parameter of the model is replaced or modified in place (an optimizer step), since cached
    keys and values belong to the weights that computed them."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[int, ...], StoredPrefix] = OrderedDict()
        self.nbytes = 0
        self._weights_version: tuple | None = None
        self.hits = self.reused_tokens = 0

    def check_weights(self, model) -> None:
        version = weights_version(model)
        if version != self._weights_version:
            self.clear()
            self._weights_version = version

    def clear(self) -> None:
        self.entries.clear()
        self.nbytes = 0

    def lookup(self, tokens: list[int], limit: int) -> tuple[int, StoredPrefix | None]:
        """The stored entry sharing the longest prefix with `tokens`, and that length (at most `limit`)."""
        best, best_length = None, 0
        query = np.asarray(tokens[:limit], dtype=np.int64)
        for entry in self.entries.values():
            length = _common_prefix(entry.array, query)
            if length > best_length:
                best, best_length = entry, length
        if best is not None:
            self.entries.move_to_end(best.tokens)
            self.hits += 1
            self.reused_tokens += best_length
        return best_length, best

    def add(self, tokens: list[int], layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        entry = StoredPrefix(tuple(tokens), layers)
        if entry.nbytes > self.max_bytes:
            return
        self.discard(entry.tokens)
        self.entries[entry.tokens] = entry
        self.nbytes += entry.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self.entries.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def discard(self, tokens: tuple[int, ...]) -> None:
        entry = self.entries.pop(tuple(tokens), None)
        if entry is not None:
            self.nbytes -= entry.nbytes


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    differs = np.flatnonzero(a[:n] != b[:n])
    return int(differs[0]) if len(differs) else n
