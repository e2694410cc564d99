"""Run folders and output paths (resetrl/outputs.py): another run or other files in --out, a
resume that extends a run or differs from it, a rebuilt model, unwritable paths (docs/reliability.md)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from resetrl.cli import main
from resetrl.errors import ResetRLError
from tests.conftest import checkpoint_weights, metric_rows, one_line_error
from tests.test_trainer import scripted_trainer


def test_a_run_folder_holding_another_run_is_refused_unless_resume_or_overwrite(tmp_path, capsys):
    scripted_trainer(tmp_path, steps=1).run()
    other = scripted_trainer(tmp_path, method="grpo", steps=2)
    with pytest.raises(ResetRLError, match="holds another run; pass --resume .* or --overwrite"):
        other.run()
    with pytest.raises(ResetRLError, match=r"the run in .* differs: method: 'srpo' -> 'grpo' \("):
        other.run(resume=True)  # train.steps 1 -> 2 alone would extend the run; the method may not change
    other.run(overwrite=True)
    assert [row["step"] for row in metric_rows(tmp_path)] == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_000001", "step_000002"]
    # The CLI refuses before it loads a model.
    assert main(["train", "--preset", "smoke", "--out", str(tmp_path)]) == 2
    assert "holds another run" in one_line_error(capsys)
    with pytest.raises(SystemExit):
        main(["train", "--preset", "smoke", "--out", str(tmp_path), "--resume", "--overwrite"])


def test_out_at_a_folder_of_other_files_is_refused_unless_overwrite(tmp_path, capsys):
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert main(["train", "--preset", "smoke", "--out", str(folder)]) == 2
    assert "holds other files (notes.txt) and no run; pick a new or empty folder, or pass --overwrite" \
        in one_line_error(capsys)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    scripted_trainer(folder, steps=1).run(overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "metrics.jsonl").exists()


def test_resume_with_more_steps_extends_a_finished_run_as_if_it_had_been_that_long(tmp_path, capsys):
    """TRL's and verl's resume: a finished 2-step run resumed with train.steps=4 (and a checkpoint
    and evaluation cadence changed) ends as a 4-step run would; other fields are still refused."""
    every = ["eval.every=1"]
    scripted_trainer(tmp_path / "extended", steps=2, overrides=every).run()
    scripted_trainer(tmp_path / "extended", steps=4, overrides=[*every, "checkpoint.keep=3"]).run(resume=True)
    assert "--resume changes checkpoint.keep: 2 -> 3; train.steps: 2 -> 4" in capsys.readouterr().out
    scripted_trainer(tmp_path / "direct", steps=4, overrides=[*every, "checkpoint.keep=3"]).run()
    extended, direct = metric_rows(tmp_path / "extended"), metric_rows(tmp_path / "direct")
    assert [row["step"] for row in extended] == [0, 1, 2, 3, 4]
    timeless = [[{k: v for k, v in row.items() if not k.startswith(("time/", "throughput/", "memory/"))} for row in rows]
                for rows in (extended, direct)]
    assert timeless[0] == timeless[1]
    final = "checkpoints/step_000004"
    assert all(torch.equal(a, b) for a, b in zip(checkpoint_weights(tmp_path / "extended" / final).values(),
                                                  checkpoint_weights(tmp_path / "direct" / final).values()))
    with pytest.raises(ResetRLError, match=r"differs: train.lr: 0.001 -> 0.002 .*only train.steps, eval.every"):
        scripted_trainer(tmp_path / "extended", steps=6, overrides=[*every, "train.lr=2e-3"]).run(resume=True)
    with pytest.raises(ResetRLError, match=r"train.steps=3 is below the run's last checkpoint \(step 4\)"):
        scripted_trainer(tmp_path / "extended", steps=3, overrides=every).run(resume=True)


def test_a_run_on_an_earlier_build_of_its_model_is_not_reused(tmp_path, monkeypatch, capsys):
    """A micro model rebuilt under the same name (other code, other weights) makes the runs made on
    the earlier build another run: --resume refuses it and a compare grid runs it again."""
    from resetrl.compare.grid import is_complete
    from resetrl.config import load_config
    from resetrl.outputs import check_run_folder, model_record, run_differences

    monkeypatch.setenv("RESETRL_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "cache" / "models" / "trap"
    model.mkdir(parents=True)
    (model / "micro_build.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"first build")
    config = load_config(preset="trap")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(config.to_yaml())
    (run / "summary.json").write_text("{}")
    (run / "model.json").write_text(json.dumps(model_record(config)))
    assert model_record(config)["weights_sha256"] is not None
    assert run_differences(run, config) == [] and is_complete(run, config)

    (model / "model.safetensors").write_bytes(b"second build")
    assert run_differences(run, config) == [
        f"model trap: rebuilt since this run (weights sha256 {json.loads((run / 'model.json').read_text())['weights_sha256'][:12]}"
        f" -> {model_record(config)['weights_sha256'][:12]})"]
    assert not is_complete(run, config)
    with pytest.raises(ResetRLError, match=r"the run in .* differs: model trap: rebuilt since this run"):
        check_run_folder(run, config, resume=True, overwrite=False)
    # A run older than model.json is compared by its config alone; a packaged model has no build hash.
    (run / "model.json").unlink()
    assert is_complete(run, config)
    assert model_record(load_config(preset="smoke"))["weights_sha256"] is None


def test_config_differences_name_each_field():
    from resetrl.outputs import config_differences

    saved = {"method": "srpo", "generation": {"backend": "hf"}, "train": {"lr": 0.1}}
    current = {"method": "grpo", "generation": {"backend": "auto"}, "train": {"lr": 0.1, "added_later": 3}}
    assert config_differences(saved, current) == ["method: 'srpo' -> 'grpo'"]
    assert config_differences(saved, {**current, "method": "srpo", "train": {"lr": 0.2}}) == ["train.lr: 0.1 -> 0.2"]


def test_out_at_a_file_or_unwritable_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    file = tmp_path / "file"
    file.write_text("not a run")
    assert main(["train", "--preset", "smoke", "--out", str(file)]) == 2
    assert f"--out {file} is a file" in one_line_error(capsys)
    assert main(["train", "--preset", "smoke", "--out", str(file / "run")]) == 2
    assert "is a file, not a folder" in one_line_error(capsys)
    # A read-only file system (chmod cannot show it: the tests may run as root).
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert main(["train", "--preset", "smoke", "--out", str(tmp_path / "run")]) == 2
    assert "is not writable (read-only file system" in one_line_error(capsys)
    assert main(["eval", "--preset", "smoke", "--out", str(tmp_path / "eval.json")]) == 2
    assert "is not writable" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()
