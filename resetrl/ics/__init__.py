"""Thought-ICS: inference-time self-correction with thought-structured chains (Paper B), its
baselines, and the measurement of self-localization.

- `engine`: the trainer's backend, prompts, stop rules and scorer wrapped for ICS (`Attempt`).
- `verification`: oracle (L1/L2) and self-verification (L3, `\\boxed{YES}`/`\\boxed{NO}`, k-vote gates).
- `loop`: the verify -> localize -> resample loop and its three exits; variants S and A.
- `methods`: thought-ics, regen, token-ics, self-refine, majority (registry `ICS_METHODS`).
- `unstructured`: free-text chains, segments and quotes for Token-ICS.
- `metrics`: accuracy, lift, transitions, exits, localization and fix rates.
- `localize`: self-localization accuracy, structured vs unstructured chains.
- `pipeline`: a run from the config's `ics:` section into a results folder (what `resetrl ics` and
  `resetrl localize` call).
- answers (multiple-choice and yes/no scoring, vote normal form) live with the tasks: `resetrl/tasks/answers.py`.
"""

from resetrl.ics.engine import Attempt, ChainEngine, ICSSettings
from resetrl.ics.loop import Trajectory, correction_loop
from resetrl.ics.methods import ICS_METHODS, run_method
from resetrl.ics.metrics import comparison_table, summarize

__all__ = ["Attempt", "ChainEngine", "ICSSettings", "ICS_METHODS", "Trajectory", "comparison_table",
           "correction_loop", "run_method", "summarize"]
