"""How a transformers causal LM takes and returns its KV cache, across versions.

Recent transformers 5.x releases (5.24 here) renamed the forward argument `past_key_values` to
`cache` (the old name warns and is to be removed in 5.40) and the output field likewise; older
releases know only the old names. Both are supported (tested on 5.0 and 5.24).
"""

from __future__ import annotations

import functools
import inspect


@functools.lru_cache(maxsize=None)
def _keyword_for(model_class: type) -> str:
    parameters = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def cache_keyword(model) -> str:
    """The forward keyword for the KV cache of `model` (a transformers model, or a peft wrapper)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _keyword_for(type(base))


def output_cache(output):
    """The KV cache a forward call with `use_cache=True` returned."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values
