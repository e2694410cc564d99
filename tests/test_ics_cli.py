"""`resetrl ics` and `resetrl localize` end to end on the tiny model, and the localization measurement
with a scripted generator."""

import json

from resetrl.cli import main
from resetrl.ics.engine import ICSSettings
from resetrl.ics.localize import measure_localization
from resetrl.ics.plots import plot_offsets
from tests.test_ics import make_engine


def test_ics_compare_on_tiny_model(tmp_path, capsys):
    assert main(["ics", "--preset", "smoke", "--n", "2", "--max-iters", "1", "--compare", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "summary.json").read_text())
    assert set(report["methods"]) == {"thought-ics", "regen", "token-ics", "self-refine", "majority"}
    rows = [json.loads(line) for line in (tmp_path / "thought-ics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {"exit", "answer_S", "answer_A", "iterations"} <= set(rows[0])
    assert {"steps", "first_error", "localized", "verdict"} <= set(rows[0]["iterations"][0])
    assert "| majority |" in capsys.readouterr().out
    assert (tmp_path / "accuracy.png").stat().st_size > 0


def test_methods_run_separately_share_one_summary(tmp_path):
    common = ["ics", "--preset", "smoke", "--n", "2", "--max-iters", "1", "--out", str(tmp_path)]
    assert main(common + ["--method", "thought-ics"]) == 0
    assert main(common + ["--method", "regen,majority"]) == 0
    report = json.loads((tmp_path / "summary.json").read_text())
    assert list(report["methods"]) == ["thought-ics", "regen", "majority"]
    assert "| thought-ics |" in (tmp_path / "table.md").read_text()
    # same seed and problems: the structured methods started from the same first chains
    first = [json.loads(line)["iterations"][0]["steps"] for line in (tmp_path / "thought-ics.jsonl").open()]
    assert first == [json.loads(line)["iterations"][0]["steps"] for line in (tmp_path / "regen.jsonl").open()]
    assert main(common + ["--method", "thought-ics", "--level", "L1"]) == 0  # another level: a fresh summary
    assert list(json.loads((tmp_path / "summary.json").read_text())["methods"]) == ["thought-ics"]
    assert main(common + ["--method", "bogus"]) == 2


def test_ics_l3_and_bad_input(tmp_path):
    assert main(["ics", "--preset", "smoke", "--n", "1", "--max-iters", "1", "--level", "L3", "--verify-samples", "2",
                 "--verify-gate", "any", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["settings"]["verify_samples"] == 2
    assert main(["ics", "--preset", "smoke", "--n", "0", "--out", str(tmp_path)]) == 2
    assert main(["localize", "--preset", "smoke", "--level", "L3", "--out", str(tmp_path)]) == 2


def test_localize_command_writes_summary_and_plot(tmp_path):
    plot = tmp_path / "offsets.png"
    assert main(["localize", "--preset", "smoke", "--n", "2", "--samples", "1", "--out", str(tmp_path),
                 "--plot", str(plot)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "structured/failed" in summary and "unstructured/failed" in summary
    assert plot.stat().st_size > 0


def test_localization_measurement_against_true_first_error(tokenizer, tmp_path):
    # Every chain is wrong from thought 1 on; the localizer says "step 2", the quoter quotes thought 1.
    engine, backend, problems = make_engine(tokenizer, n_problems=3, schedule=(False,),
                                            localizations=("\\boxed{2}",))
    first_thought = {}
    for problem in problems:
        start, (op, operand) = problem.meta["start"], problem.meta["program"][0]
        first_thought[problem.question] = f"{start} {op} {operand} ="
    backend.answers["quote"] = [f"\\boxed{{{first_thought[problems[0].question]}}}", "\\boxed{not there}"]
    summary, cases = measure_localization(engine, ICSSettings(), problems, samples=2)
    assert summary["structured/failed"] == 6 and summary["structured/answered"] == 6
    assert summary["structured/answered/exact"] == 0.0 and summary["structured/answered/within_one"] == 1.0
    assert summary["structured/answered/clean_prefix"] == 0.0 and summary["structured/offsets"] == {1: 6}
    unstructured = [c for c in cases if c.format == "unstructured"]
    assert len(unstructured) == 6 and all(c.true_step == 1 for c in unstructured)
    found = [c for c in unstructured if c.answered]
    assert found and all(c.self_step == 1 for c in found)  # the quote lands in segment 1
    assert summary["unstructured/status/quote_not_found->1"] == 6 - len(found)
    plot_offsets(summary, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").exists()


def test_ics_flags_are_shortcuts_for_the_ics_section():
    from resetrl.cli import build_parser
    from resetrl.commands.ics import _config
    from resetrl.config import load_config
    from resetrl.ics.config import ICS_ANALYSIS, ICS_COMPARED
    from resetrl.ics.methods import ICS_METHODS
    from resetrl.ics.pipeline import ics_settings

    assert sorted(ICS_COMPARED + ICS_ANALYSIS) == ICS_METHODS.names()
    args = build_parser().parse_args(["ics", "--preset", "smoke", "--set", "ics.max_iters=4", "--set", "ics.level=L1",
                                      "--compare", "--n", "3", "--level", "L3", "--temperature", "0.9",
                                      "--verify-gate", "any", "--votes", "5"])
    config = _config(args)
    assert config.ics.methods == list(ICS_COMPARED) and config.ics.size == 3
    assert (config.ics.level, config.ics.max_iters, config.ics.verify_gate, config.ics.votes) == ("L3", 4, "any", 5)
    settings = ics_settings(config)  # the reference's sampling unless a flag sets it
    assert (settings.temperature, settings.resample_temperature) == (0.9, 0.7)
    assert settings.localize_temperature == settings.verify_temperature == 0.3
    assert settings.localize_max_tokens == config.rollout.localize_max_tokens
    # a sampling field set to null takes the rollout section's value
    nulls = ["resample_temperature", "localize_temperature", "verify_temperature", "verify_max_tokens", "top_p", "top_k"]
    config_nulls = load_config(preset="smoke", overrides=[f"ics.{name}=null" for name in nulls]
                               + ["rollout.localize_temperature=0.2"])
    settings = ics_settings(config_nulls)
    assert settings.resample_temperature == config_nulls.rollout.temperature
    assert settings.localize_temperature == settings.verify_temperature == 0.2
    assert settings.verify_max_tokens == config_nulls.rollout.localize_max_tokens
    assert (settings.top_p, settings.top_k) == (config_nulls.rollout.top_p, config_nulls.rollout.top_k)
    assert (settings.ask_top_p, settings.ask_top_k) == (1.0, 0)
    same = load_config(preset="smoke", overrides=["ics.methods=" + ",".join(ICS_COMPARED), "ics.size=3",
                                                  "ics.level=L3", "ics.temperature=0.9", "ics.verify_gate=any",
                                                  "ics.votes=5", "ics.max_iters=4"])
    assert same == config
    args = build_parser().parse_args(["localize", "--preset", "smoke", "--samples", "3"])
    assert _config(args).ics.localize_samples == 3
