"""Metrics sinks: metrics.jsonl always, TensorBoard and W&B as `logging` says. W&B is an optional
extra, so these tests stand a recording stand-in module in for it (the real wandb 0.31 was checked
by hand in offline mode, no network: docs/report.md)."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import pytest

from resetrl.cli import main
from resetrl.config import LoggingConfig, load_config
from resetrl.errors import ResetRLError
from resetrl.metrics import MetricsWriter, add_counts, read_jsonl, truncate_jsonl
from tests.test_trainer import scripted_trainer


class FakeRun:
    def __init__(self, **settings):
        self.settings, self.logged, self.finished = settings, [], 0

    def log(self, values, step):
        self.logged.append((step, dict(values)))

    def finish(self):
        self.finished += 1


@pytest.fixture
def fake_wandb(monkeypatch):
    module = types.ModuleType("wandb")
    module.__spec__ = importlib.machinery.ModuleSpec("wandb", None)  # find_spec must see it installed
    module.runs = []

    def init(**settings):
        module.runs.append(FakeRun(**settings))
        return module.runs[-1]

    module.init = init
    monkeypatch.setitem(sys.modules, "wandb", module)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    return module


def test_a_run_logs_every_step_to_wandb_offline(tmp_path, fake_wandb):
    trainer = scripted_trainer(tmp_path, steps=2, overrides=["logging.wandb=true", "logging.tensorboard=false"])
    trainer.run()
    (run,) = fake_wandb.runs
    assert run.settings["mode"] == "offline" and run.settings["dir"] == str(tmp_path)
    assert run.settings["name"] == tmp_path.name and run.settings["project"] == "resetrl"
    assert run.settings["config"]["method"] == "srpo" and run.settings["config"]["logging"]["wandb"] is True
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [step for step, _ in run.logged] == [row["step"] for row in rows] == [0, 1, 2]
    for (step, values), row in zip(run.logged, rows):
        assert values == {key: value for key, value in row.items() if key != "step"}
    assert run.finished == 1
    assert not (tmp_path / "tensorboard").exists()  # logging.tensorboard=false


def test_wandb_mode_from_the_config_then_the_environment(tmp_path, fake_wandb, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    MetricsWriter(tmp_path, LoggingConfig(wandb=True, tensorboard=False)).close()
    MetricsWriter(tmp_path, LoggingConfig(wandb=True, tensorboard=False, wandb_mode="offline")).close()
    assert [run.settings["mode"] for run in fake_wandb.runs] == ["online", "offline"]


def test_wandb_on_but_not_installed_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what find_spec and import see without the package
    with pytest.raises(ResetRLError, match=r"logging.wandb: .*wandb is not installed: pip install 'resetrl\[wandb\]'"):
        load_config(preset="smoke", overrides=["logging.wandb=true"])
    assert load_config(preset="smoke").logging.wandb is False  # off by default: nothing to install
    assert main(["train", "--preset", "smoke", "--set", "logging.wandb=true"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("resetrl: error: invalid config: logging.wandb: wandb is not installed")
    assert error.count("\n") == 1  # one line


def test_writer_appends_one_json_line_per_step_and_tensorboard_events(tmp_path):
    writer = MetricsWriter(tmp_path, LoggingConfig(tensorboard=True))
    writer.write(0, {"eval/accuracy": 0.25, "note": "text is kept in the JSON line only"})
    writer.write(1, {"eval/accuracy": 0.5})
    writer.close()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 0, "eval/accuracy": 0.25, "note": "text is kept in the JSON line only"},
                    {"step": 1, "eval/accuracy": 0.5}]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_writer_without_tensorboard_writes_only_the_json_lines(tmp_path):
    writer = MetricsWriter(tmp_path, LoggingConfig(tensorboard=False))
    writer.write(0, {"loss": 1.0})
    writer.close()
    assert not (tmp_path / "tensorboard").exists()
    assert read_jsonl(tmp_path / "metrics.jsonl") == [{"step": 0, "loss": 1.0}]


def test_add_counts_sums_keys_already_there():
    values = {"reward/score_errors": 1.0, "loss": 0.5}
    add_counts(values, {"reward/score_errors": 2.0, "reward/score_timeouts": 1.0})
    assert values == {"reward/score_errors": 3.0, "loss": 0.5, "reward/score_timeouts": 1.0}


def test_truncate_drops_later_steps_and_torn_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert truncate_jsonl(path, 3) == 0  # no file yet: nothing to do
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "x"\n{"step": 4}\n\n')
    assert truncate_jsonl(path, 2) == 1
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'


def test_read_jsonl_skips_a_line_being_written_and_names_a_broken_one(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    assert read_jsonl(path) == []
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')  # the last line is still being written
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\nnot json\n{"a": 3}\n')
    with pytest.raises(ResetRLError, match=r"rollouts.jsonl:2: not a JSON line"):
        read_jsonl(path)


def test_a_torn_last_line_is_dropped_and_counted(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"step": 4, "kin')
    assert truncate_jsonl(path, 2) == 1
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'
