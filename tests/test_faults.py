"""Fault injection (docs/reliability.md): a run killed with SIGKILL at each phase of a step and then
resumed ends with the weights and metrics of an uninterrupted run, on the smoke preset, whose RL
steps update the weights. Each run is a subprocess: SIGKILL leaves no chance to clean up."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
KILLED_STEP = 2  # smoke: 3 RL steps; step 1's update has no reward variance, steps 2 and 3 train
PHASES = ["rollout", "update", "metrics", "checkpoint"]  # in the order a step reaches them


def default_sigint() -> None:
    """In the child before exec: Ctrl-C's default action. A test suite started in the background by a
    non-interactive shell (`bash .ci/run &`) ignores SIGINT, and an ignored signal is inherited, so
    the runs these tests interrupt would never see it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def train(run_dir: Path, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1"}  # what a killed run printed is kept
    env.pop("RESETRL_FAULT", None)
    if fault:
        env["RESETRL_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "resetrl.cli", "train", "--preset", "smoke", "--out", str(run_dir),
                           *extra], env=env, capture_output=True, text=True, timeout=600, preexec_fn=default_sigint)


def metric_rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock and memory figures, which differ between any two runs."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if not k.startswith(("time/", "throughput/", "memory/"))} for row in rows]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoints" / "step_000003" / "model" / "model.safetensors")


def tensorboard_steps(run_dir: Path, tag: str) -> list[int]:
    """Steps of `tag` as TensorBoard shows them (events a resumed run purged are not shown)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("faults") / "uninterrupted"
    result = train(run_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = metric_rows(run_dir)
    # The comparison means something only if the steps after the kill change the weights.
    assert [row["update/skipped"] for row in rows[KILLED_STEP:]] == [0.0] * (len(rows) - KILLED_STEP)
    return run_dir


def test_killed_at_every_phase_and_resumed_matches_an_uninterrupted_run(tmp_path, uninterrupted):
    """One run folder killed at step 2's rollout, and its resumption killed at the update, then at
    the metrics write, then at the checkpoint write; the last resumption finishes. Each kill is a
    fresh subprocess; each resumption must start from step 1's checkpoint and repair what the kill
    left (a torn metrics line, a staging folder)."""
    run_dir = tmp_path / "run"
    for index, phase in enumerate(PHASES):
        resume = ["--resume"] if index else []
        killed = train(run_dir, *resume, fault=f"{phase}:{KILLED_STEP}")
        assert killed.returncode == -signal.SIGKILL, (phase, killed.stderr[-2000:])
        if index:
            assert f"(step {KILLED_STEP - 1})" in killed.stdout, phase
            torn = "dropped 1 torn line(s) of metrics.jsonl" in killed.stdout
            assert torn == (PHASES[index - 1] == "metrics"), phase
        if phase == "metrics":  # killed mid-line
            assert not (run_dir / "metrics.jsonl").read_text().endswith("\n")
        if phase == "checkpoint":  # killed between writing the staging folder and renaming it into place
            assert (run_dir / "checkpoints" / f"step_{KILLED_STEP:06d}.tmp").is_dir()

    resumed = train(run_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"(step {KILLED_STEP - 1})" in resumed.stdout
    assert metric_rows(run_dir) == metric_rows(uninterrupted)
    reference, weights = final_weights(uninterrupted), final_weights(run_dir)
    assert all(torch.equal(reference[name], weights[name]) for name in reference)
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
    # The killed runs logged step 2 to TensorBoard more than once; the resumed runs purged it.
    assert tensorboard_steps(run_dir, "update/loss") == [1, 2, 3]


# -- Ctrl-C (SIGINT): one line, exit 130, a folder a resume continues (issue 29) ------------------

INTERRUPTED = re.compile(r"^resetrl: interrupted (.+); the last checkpoint is step (\d+)(.*); continue with "
                         r"--resume \(same --out .+\)$")


def interrupt_message(result: subprocess.CompletedProcess) -> re.Match:
    assert result.returncode == 130, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    message = INTERRUPTED.match(result.stderr.strip().splitlines()[-1])
    assert message, result.stderr[-2000:]
    return message


def test_ctrl_c_during_a_step_ends_in_one_line_and_a_resume_matches_an_uninterrupted_run(tmp_path, uninterrupted):
    """A real SIGINT from outside, once step 1's checkpoint is written (the step it lands in varies).
    Not earlier: a run resumed from the warm-up's step-0 checkpoint redoes step 1 in a process that
    did not warm up, and its logprobs/engine_vs_trainer_mean_abs differs in the 8th digit."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1"}
    env.pop("RESETRL_FAULT", None)
    process = subprocess.Popen([sys.executable, "-m", "resetrl.cli", "train", "--preset", "smoke", "--out",
                                str(run_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and '"step": 1,' in metrics.read_text()
               and (run_dir / "checkpoints" / "step_000001").exists()):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before step 1 was logged"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    message = interrupt_message(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    checkpoint = int(message.group(2))
    assert checkpoint >= 1
    assert message.group(1).startswith(("at step", "after the last step"))
    # Nothing half-written: no checkpoint staging, every metrics line whole, no step logged twice.
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
    steps = [row["step"] for row in metric_rows(run_dir)]
    assert steps == list(range(len(steps))) and steps[-1] >= checkpoint

    resumed = train(run_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"(step {checkpoint})" in resumed.stdout
    assert metric_rows(run_dir) == metric_rows(uninterrupted)


def test_ctrl_c_after_the_warm_up_keeps_it_for_the_resume(tmp_path, uninterrupted):
    """SIGINT as the step-0 evaluation starts: the warm-up's checkpoint is kept, the resume does not
    redo the warm-up, and the run ends as an uninterrupted one."""
    run_dir = tmp_path / "run"
    message = interrupt_message(train(run_dir, fault="warmup:0:SIGINT"))
    assert message.group(1) == "during the step-0 evaluation" and message.group(2) == "0"
    assert "warm-up's result" in message.group(3)
    assert not (run_dir / "metrics.jsonl").exists()  # no step-0 row yet
    resumed = train(run_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "(step 0)" in resumed.stdout and "warm-up" not in resumed.stderr  # no warm-up progress bar
    assert metric_rows(run_dir) == metric_rows(uninterrupted)
    reference, weights = final_weights(uninterrupted), final_weights(run_dir)
    assert all(torch.equal(reference[name], weights[name]) for name in reference)
