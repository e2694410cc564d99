import pytest

from resetrl.cli import main
from resetrl.config import Config, field_rows, load_config
from resetrl.errors import ResetRLError


def test_every_field_has_a_description_and_a_dotted_key():
    rows = field_rows(Config())
    keys = [key for key, _, _, _ in rows]
    assert len(keys) == len(set(keys)) > 60
    assert {"method", "train.lr", "generation.vllm.weight_sync", "task.options"} <= set(keys)
    assert all(description for _, _, _, description in rows), [key for key, _, _, d in rows if not d]
    assert all(value == default for _, value, default, _ in rows)  # Config() is all defaults


def test_config_command_prints_values_defaults_and_meanings(capsys):
    assert main(["config", "--preset", "smoke", "--set", "train.lr=0.25"]) == 0
    out = capsys.readouterr().out
    assert "train.lr = 0.25  (default 5.0e-05)\n    Learning rate" in out
    assert "[generation]" in out and "generation.vllm.kv_cache_gb = 2.0\n" in out


def test_config_yaml_loads_back_to_the_same_config(tmp_path, capsys):
    assert main(["config", "--preset", "trap", "--set", "train.optimizer=sgd", "--yaml"]) == 0
    path = tmp_path / "c.yaml"
    path.write_text(capsys.readouterr().out)
    assert load_config(str(path)) == load_config(preset="trap", overrides=["train.optimizer=sgd"])


def test_bad_config_input_is_one_clear_line(tmp_path):
    with pytest.raises(ResetRLError, match="unknown preset 'nope'; known: "):
        load_config(preset="nope")
    with pytest.raises(ResetRLError, match="expected key=value"):
        load_config(overrides=["train.lr"])
    with pytest.raises(ResetRLError, match=r"invalid config: train.lr: .* \(got 'abc'\)"):
        load_config(overrides=["train.lr=abc"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("[1, 2]")
    with pytest.raises(ResetRLError, match="must be a mapping of config sections"):
        load_config(str(bad))


def test_ics_section_loads_like_training_and_is_listed(capsys):
    config = load_config(preset="ics-smollm2", overrides=["ics.methods=regen,majority", "ics.level=L3"])
    assert config.ics.methods == ["regen", "majority"] and config.ics.level == "L3"
    assert load_config(overrides=["ics.methods=[oracle-ics]"]).ics.methods == ["oracle-ics"]
    with pytest.raises(ResetRLError, match=r"invalid config: ics.methods: unknown ICS method\(s\) bogus; known: "):
        load_config(overrides=["ics.methods=thought-ics,bogus"])
    with pytest.raises(ResetRLError, match="invalid config: ics.size: "):
        load_config(overrides=["ics.size=0"])
    assert main(["config", "--set", "ics.max_iters=3"]) == 0
    out = capsys.readouterr().out
    assert "[ics]" in out and "ics.max_iters = 3  (default 10)\n    Verify -> localize -> resample rounds" in out
    assert "task.reward = null\n    Training reward" in out
