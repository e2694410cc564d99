"""Thought-ICS: inference-time self-correction with thought-structured chains (Paper B), its
baselines, and the measurement of self-localization.

- `engine`: the trainer's backend, prompts, stop rules and scorer wrapped for ICS (`Attempt`).
- `verification`: oracle (L1/L2) and self-verification (L3, `\\boxed{YES}`/`\\boxed{NO}`, k-vote gates).
- `loop`: the verify -> localize -> resample loop and its three exits; variants S and A.
- `methods`: thought-ics, regen, token-ics, self-refine, majority (registry `ICS_METHODS`).
- `unstructured`: free-text chains, segments and quotes for Token-ICS.
- `metrics`: accuracy, lift, transitions, exits, localization and fix rates.
- `localize`: self-localization accuracy, structured vs unstructured chains.
- `config`: the config's `ics:` section (`ICSConfig`, the method names).
- `pipeline`: a run from the config's `ics:` section into a results folder (what `resetrl ics` and
  `resetrl localize` call).
- answers (multiple-choice and yes/no scoring, vote normal form) live with the tasks: `resetrl/tasks/answers.py`.
"""

from importlib import import_module

# The package's names, loaded on first use: `resetrl.ics.config` (the `ics:` section, which
# resetrl/config.py imports) must not pull in the engine, its tasks and its scorer.
_HOMES = {"Attempt": "engine", "ChainEngine": "engine", "ICSSettings": "engine", "Trajectory": "loop",
          "correction_loop": "loop", "ICS_METHODS": "methods", "run_method": "methods",
          "comparison_table": "metrics", "summarize": "metrics"}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'resetrl.ics' has no attribute {name!r}")
    return getattr(import_module(f"resetrl.ics.{_HOMES[name]}"), name)
