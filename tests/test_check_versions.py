"""The CI check that resolved versions are inside pyproject.toml's ranges (.ci/check_versions.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def load_check():
    spec = importlib.util.spec_from_file_location("check_versions", ROOT / ".ci" / "check_versions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_version_outside_its_declared_range_fails_the_check(monkeypatch, tmp_path):
    check = load_check()
    ranges = check.declared()
    assert "transformers" in ranges and "torch" in ranges
    installed = check.version("transformers")
    # The declared range narrowed to exclude what is installed, and a --no-deps pin outside it.
    ranges["transformers"] = Requirement(f"transformers<{installed}")
    monkeypatch.setattr(check, "declared", lambda: ranges)
    pinned = tmp_path / "pins.txt"
    pinned.write_text(f"# a comment\ntransformers=={installed}\nsomething-else==1.0\n")
    monkeypatch.setattr(check, "ROOT", tmp_path)
    monkeypatch.setattr(check, "NO_DEPS_FILES", (pinned,))
    found = check.problems()
    assert f"transformers: {installed} installed, outside the declared <{installed}" in found
    assert f"pins.txt pins transformers=={installed}, outside pyproject.toml's <{installed}" in found
    assert not any("something-else" in problem for problem in found)


def test_the_gpu_requirements_list_every_core_dependency():
    """requirements/gpu.txt replaces resetrl's own dependency resolution on GPU machines (installed
    before `pip install --no-deps -e .`): it must name every core dependency, inside its range
    where it pins one, with torch the one deliberate exception (vLLM's own pin, above the CPU range)."""
    import tomllib

    from packaging.utils import canonicalize_name

    core = {canonicalize_name(r.name): r for r in map(Requirement, tomllib.loads(
        (ROOT / "pyproject.toml").read_text())["project"]["dependencies"])}
    lines = [line.split("#", 1)[0].strip() for line in (ROOT / "requirements" / "gpu.txt").read_text().splitlines()]
    listed = {canonicalize_name(r.name): r for r in map(Requirement, filter(None, lines))}
    assert set(core) <= set(listed), sorted(set(core) - set(listed))
    assert "vllm" in listed and str(listed["torch"].specifier).startswith("==")
    for name, requirement in listed.items():
        pinned = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if name in core and name != "torch" and pinned:
            assert core[name].specifier.contains(pinned[0]), (name, pinned)
