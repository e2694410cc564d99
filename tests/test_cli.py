"""What a new user meets first (issue 29): start-up without torch, a closed pipe, a bare `train`,
`--version`, help that points at the fields, "did you mean" for a mistyped name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from resetrl.cli import main
from resetrl.config import load_config
from resetrl.errors import ResetRLError
from tests.conftest import one_line_error

ROOT = Path(__file__).resolve().parents[1]


def closed_pipe_run(*arguments: str) -> subprocess.CompletedProcess:
    """`python -m resetrl.cli ...` writing into a pipe whose reader is already gone, as after
    `resetrl tasks | head -1` once head has its line (closed first, so the result does not depend
    on whether the output fits the pipe's buffer before the reader leaves)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "resetrl.cli", *arguments], env=env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


def test_importing_the_cli_and_its_commands_loads_neither_torch_nor_transformers():
    """`resetrl --help`, `config`, `tasks`, `presets`, `models` and every config error answer
    without torch (2 s of import on the 2-core machine; bench/startup.py measures it)."""
    code = (
        "import sys\n"
        "from resetrl.cli import build_parser\n"
        "from resetrl.config import load_config\n"
        "from resetrl.models import MODELS\n"
        "build_parser()\n"
        "for preset in ('quickstart', 'gsm8k-qwen', 'micro', 'smoke'):\n"
        "    load_config(preset=preset)\n"
        "MODELS.names()\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules)\n"
        "print('heavy:', heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "heavy: []"


@pytest.mark.parametrize("arguments", [("config", "--preset", "quickstart"), ("tasks",), ("presets",), ("models",)])
def test_a_closed_pipe_ends_the_command_silently(arguments):
    result = closed_pipe_run(*arguments)
    assert result.stderr == ""  # no "resetrl: error: [Errno 32] Broken pipe", no "Exception ignored"
    assert result.returncode == 141  # 128 + SIGPIPE, what a shell reports for `yes | head`


def test_a_bare_train_is_refused_naming_preset_and_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert "needs --preset or --config" in err and "resetrl train --preset quickstart" in err
    assert not (tmp_path / "runs").exists()
    assert main(["compare"]) == 2
    assert "needs --preset or --config" in capsys.readouterr().err


def test_version_and_train_help_point_at_the_fields(capsys):
    from resetrl import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"resetrl {__version__}"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "resetrl config --preset quickstart" in text and "--resume" in text


@pytest.mark.parametrize("override, suggestion", [
    ("train.lrr=1", "did you mean 'train.lr'?"),
    ("rollout.layot=1x4", "did you mean 'rollout.layout'?"),
    ("methd=grpo", "did you mean 'method'?"),
    ("method=srpoo", "did you mean 'srpo'?"),
    ("generation.backend=vlm", "did you mean 'vllm'?"),
    ("task.name=gsm8", "did you mean 'gsm8k'?"),
])
def test_a_mistyped_field_or_name_gets_a_suggestion(override, suggestion):
    with pytest.raises(ResetRLError, match=f"invalid config: .*{suggestion}"):
        load_config(preset="smoke", overrides=[override])


def test_a_mistyped_preset_gets_a_suggestion():
    with pytest.raises(ResetRLError, match="did you mean 'quickstart'"):
        load_config(preset="quickstrat")


def test_a_mistyped_model_name_gets_a_suggestion():
    from resetrl.models import load_model

    with pytest.raises(ResetRLError, match="unknown model 'smollm2': .*did you mean 'smollm2-135m'"):
        load_model("smollm2")


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
