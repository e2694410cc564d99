"""Fault injection for the reliability tests (docs/reliability.md): `RESETRL_FAULT=<phase>:<step>`
kills the process with SIGKILL at that phase of that step, as a crash or an out-of-memory kill would.
The phases, in the order a step reaches them: rollout, update, metrics (mid-line: a torn
metrics.jsonl line), checkpoint (staging folder written, not yet renamed into place); and warmup:0,
once the warm-up's checkpoint is written. `RESETRL_FAULT=<phase>:<step>:SIGINT` sends SIGINT (Ctrl-C)
instead, which the run must answer with one line and a consistent run folder."""

from __future__ import annotations

import os
import signal


def kill_point(phase: str, step: int) -> None:
    fault = os.environ.get("RESETRL_FAULT", "")
    if fault == f"{phase}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == f"{phase}:{step}:SIGINT":
        os.kill(os.getpid(), signal.SIGINT)
