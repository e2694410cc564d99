"""What every config section is built from (resetrl/config.py, and the sections that live with their
packages: resetrl/ics/config.py, resetrl/cpi/config.py): `Section` (typed, no unknown key), a name
field checked against a registry (`registered`) and a list field given as one string (`comma_list`).
Below config.py, so a package's section can import it while config.py imports that section."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from pydantic import AfterValidator, BaseModel, ConfigDict


def registered(module: str, registry: str, *also: str) -> AfterValidator:
    """A name field whose value must be a key of `registry` in `module` (or one of `also`): an
    unknown one fails at load time, listing the known. The registry is imported only to validate."""

    def check(value: str) -> str:
        if value not in also:
            getattr(import_module(module), registry).check(value)
        return value

    return AfterValidator(check)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def comma_list(value: Any) -> Any:
    """A list field given with --set: `cpi.measure.p_grid=0.1,0.4` arrives as the string "0.1,0.4",
    and `=0.1` as one number; read both as lists."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [value] if isinstance(value, (int, float)) else value
