"""Fault injection for the reliability tests (docs/reliability.md): `RESETRL_FAULT=<phase>:<step>`
kills the process with SIGKILL at that phase of that step, as a crash or an out-of-memory kill would.
The phases, in the order a step reaches them: rollout, update, metrics (mid-line: a torn
metrics.jsonl line), checkpoint (staging folder written, not yet renamed into place)."""

from __future__ import annotations

import os
import signal


def kill_point(phase: str, step: int) -> None:
    if os.environ.get("RESETRL_FAULT") == f"{phase}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
