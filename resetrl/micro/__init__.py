"""The micro testbed: a ~1M-parameter model trained from scratch in minutes on 2 CPU cores, with the
two skills the method needs (solving arith_chain in the thought format, and localizing the first
erroneous thought of its own failed chains), so GRPO, RRPO, SRPO and oracle resets can be compared
with several seeds in minutes. See docs/micro.md.

Names: `micro` is the model built with seed 0 and clean localization labels (a model built for
another preset takes that preset's name instead of `micro`: `trap`, `trap-slip0.15`); `micro-noisy-<x>`
was trained with a fraction x of its localization labels replaced by a random step (the knob that
lowers localization accuracy); `-seed<s>` is appended for other build seeds. The names in
`REGISTERED_NAMES` are model names `model.name` accepts; any other variant loads by its folder
path, which `resetrl micro build` prints.

The names and the built folders (where they live, how they load) are resetrl/models/micro.py's: a
model name resolves there without importing the testbed.
"""

from __future__ import annotations

from resetrl.models.micro import BASE_NAME, REGISTERED_NAMES, REGISTERED_NOISE_LEVELS, variant_name  # noqa: F401
