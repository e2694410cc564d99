"""Checkpoints: a save/load round trip restores weights, optimizer and RNG states; only the newest
`keep` survive; an unfinished one is not the latest; a failed save is a one-line error."""

from __future__ import annotations

import errno
import os
import random

import numpy as np
import pytest
import torch

from resetrl.checkpoint import STATE_FILE, latest_checkpoint, load_checkpoint, load_weights, save_checkpoint
from resetrl.errors import ResetRLError
from resetrl.models.tiny import build_tiny
from tests.conftest import metric_rows
from tests.test_trainer import scripted_trainer


@pytest.fixture(scope="module")
def tiny():
    model, _ = build_tiny(hidden_size=32, layers=1)
    return model


def trained_step(model) -> torch.optim.Optimizer:
    """One AdamW step, so the optimizer has state worth restoring."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.tensor([[1, 2, 3]])).logits.sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    return optimizer


def test_round_trip_restores_weights_optimizer_rng_and_state(tmp_path, tiny):
    optimizer = trained_step(tiny)
    saved_weights = {name: p.detach().clone() for name, p in tiny.named_parameters()}
    random.seed(11), np.random.seed(11), torch.manual_seed(11)
    folder = save_checkpoint(tmp_path, 3, tiny, optimizer, {"position": 17})
    draws = (random.random(), float(np.random.rand()), float(torch.rand(1)))

    with torch.no_grad():
        for p in tiny.parameters():
            p.add_(1.0)
    fresh_optimizer = torch.optim.AdamW(tiny.parameters(), lr=1e-2)
    state = load_checkpoint(folder, tiny, fresh_optimizer)

    assert state == {"step": 3, "position": 17}
    assert all(torch.equal(p, saved_weights[name]) for name, p in tiny.named_parameters())
    restored = fresh_optimizer.state_dict()["state"]
    original = optimizer.state_dict()["state"]
    assert restored.keys() == original.keys()
    assert all(torch.equal(restored[k]["exp_avg"], original[k]["exp_avg"]) for k in original)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == draws  # same streams again


def test_keep_prunes_to_the_newest_and_latest_skips_unfinished(tmp_path, tiny):
    optimizer = torch.optim.AdamW(tiny.parameters(), lr=1e-2)
    for step in range(1, 5):
        save_checkpoint(tmp_path, step, tiny, optimizer, {}, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_000003", "step_000004"]
    assert latest_checkpoint(tmp_path).name == "step_000004"

    (tmp_path / "checkpoints" / "step_000004" / STATE_FILE).unlink()  # a save cut short before its state
    assert latest_checkpoint(tmp_path).name == "step_000003"
    assert latest_checkpoint(tmp_path / "elsewhere") is None


def test_load_weights_refuses_another_model(tmp_path, tiny):
    folder = save_checkpoint(tmp_path, 1, tiny, torch.optim.AdamW(tiny.parameters()), {})
    other = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="does not match the model"):
        load_weights(folder, other)


def test_a_failed_save_is_one_line_and_leaves_no_temporary_folder(tmp_path, tiny, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    optimizer = torch.optim.AdamW(tiny.parameters())
    save_checkpoint(tmp_path, 1, tiny, optimizer, {})
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(ResetRLError) as error:
        save_checkpoint(tmp_path, 2, tiny, optimizer, {})
    message = str(error.value)
    assert "\n" not in message and "No space left on device" in message
    assert "earlier checkpoints kept: step_000001" in message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_000001"]


def test_disk_full_at_checkpoint_is_a_one_line_error_and_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    import resetrl.checkpoint

    trainer = scripted_trainer(tmp_path, steps=3)
    real_save = resetrl.checkpoint.torch.save

    def save(obj, path, *args, **kwargs):
        if "step_000002" in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(resetrl.checkpoint.torch, "save", save)
    with pytest.raises(ResetRLError, match=r"checkpoint of step 2 .*No space left on device.*kept: step_000000, "
                                           r"step_000001$"):
        trainer.run()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_000000", "step_000001"]
    monkeypatch.setattr(resetrl.checkpoint.torch, "save", real_save)
    resumed = scripted_trainer(tmp_path, steps=3)
    resumed.run(resume=True)
    assert [row["step"] for row in metric_rows(tmp_path)] == [0, 1, 2, 3]
