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

This module only holds names, so `resetrl.models` can import it cheaply at registration time.
"""

from __future__ import annotations

BASE_NAME = "micro"
# Localization-noise levels whose variants get a registered model name (others load by path).
REGISTERED_NOISE_LEVELS = (0.25, 0.5, 0.75, 1.0)


def variant_name(seed: int = 0, localizer_noise: float = 0.0, preset: str = BASE_NAME, tag: str = "") -> str:
    """`micro`, `micro-noisy-0.5`, `micro-seed3`, `micro-noisy-0.5-seed3`; a model built for another
    preset is named after it (`trap`, `trap-noisy-0.5`), with `tag` (what the build changed from the
    preset, e.g. `slip0.15`) after the preset's name."""
    name = preset + (f"-{tag}" if tag else "")
    if localizer_noise > 0:
        name += f"-noisy-{localizer_noise:g}"
    if seed != 0:
        name += f"-seed{seed}"
    return name


REGISTERED_NAMES = [variant_name()] + [variant_name(0, noise) for noise in REGISTERED_NOISE_LEVELS]
