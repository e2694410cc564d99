"""Reading a user's data into rows, split by split: a JSONL, JSON, CSV or parquet file, a folder saved
by `datasets` (`Dataset.save_to_disk`, `DatasetDict.save_to_disk`), or a folder of `train.*` and
`test.*` files. What the rows mean is `dataset.py`'s business; here only where they come from.

JSONL, JSON and CSV are read with the standard library; parquet and saved folders need `datasets`
(which brings pyarrow): `pip install 'resetrl[data]'`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from resetrl.errors import ResetRLError

FORMATS = (".jsonl", ".json", ".csv", ".parquet")
# Names a test split goes by; the first present is the test split (a DatasetDict, a split column).
TEST_NAMES = ("test", "validation", "valid", "val", "dev")


@dataclass
class Row:
    where: str  # "data.jsonl, row 12": how an error names the row
    values: dict


@dataclass
class RawSplits:
    """Rows per split name ("train", "test", or "all" for data without a split), and how the split
    was found ("a split column", "train.* and test.* files", ...)."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    origin: str = ""


def _need_datasets(path: Path):
    try:
        import datasets
    except ImportError:
        raise ResetRLError(f"{path}: reading parquet files and saved datasets needs the `datasets` package: "
                           "pip install 'resetrl[data]'") from None
    datasets.disable_progress_bars()
    return datasets


def read_file(path: Path) -> list[Row]:
    """The rows of one file, by its suffix; a row that cannot be read is an error naming it."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ResetRLError(f"{path}: unknown data format {suffix or '(no suffix)'!r}; known: "
                           f"{', '.join(FORMATS)}, or a folder saved by datasets")
    try:
        if suffix == ".parquet":
            _need_datasets(path)  # brings pyarrow
            import pyarrow.parquet

            table = pyarrow.parquet.read_table(path)
            return [Row(f"{path.name}, row {number}", values)
                    for number, values in enumerate(table.to_pylist(), start=1)]
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ResetRLError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    except ResetRLError:
        raise
    except Exception as error:  # pyarrow's errors on a broken file: ArrowInvalid, OSError, ...
        raise ResetRLError(f"{path}: cannot read it as {suffix[1:]} ({type(error).__name__}: {error})") from None
    if suffix == ".csv":
        return [Row(f"{path.name}, row {number}", dict(values))
                for number, values in enumerate(csv.DictReader(text.splitlines()), start=1)]
    whole = _whole_json(text, path) if suffix == ".json" else None
    if isinstance(whole, dict):
        raise ResetRLError(f"{path}: one JSON object ({', '.join(list(whole)[:5])}); resetrl reads an array of "
                           "rows, or one row per line")
    if isinstance(whole, list):
        rows = [Row(f"{path.name}, row {number}", row) for number, row in enumerate(whole, start=1)]
    else:  # JSON lines (a .json file may hold them too, as `datasets` reads it)
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(Row(f"{path.name}, line {number}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise ResetRLError(f"{path}, line {number}: not valid JSON ({error})") from None
    for row in rows:
        if not isinstance(row.values, dict):
            raise ResetRLError(f"{path.parent / row.where}: not an object with named fields")
    return rows


def _whole_json(text: str, path: Path):
    """A .json file's content when it is one JSON value (an array of rows), else None (JSON lines)."""
    if not text.lstrip().startswith(("[", "{")):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if text.lstrip().startswith("["):
            raise ResetRLError(f"{path}: not valid JSON ({error})") from None
        return None  # several objects: JSON lines


def _saved(path: Path) -> RawSplits:
    """A folder written by `Dataset.save_to_disk` (one split) or `DatasetDict.save_to_disk`."""
    datasets = _need_datasets(path)
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as error:
        raise ResetRLError(f"{path}: cannot load the saved dataset ({type(error).__name__}: {error})") from None
    if isinstance(loaded, datasets.DatasetDict):
        return RawSplits({name: [Row(f"{path.name} split {name!r}, row {number}", values)
                                 for number, values in enumerate(split.to_list(), start=1)]
                          for name, split in loaded.items()}, "the saved DatasetDict's splits")
    return RawSplits({"all": [Row(f"{path.name}, row {number}", values)
                              for number, values in enumerate(loaded.to_list(), start=1)]}, "")


def read_splits(path: str | Path) -> RawSplits:
    """Every row of the data at `path`, by split as the data gives it; "all" when it gives none."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ResetRLError(f"data file not found: {path}")
    if path.is_file():
        return RawSplits({"all": read_file(path)}, "")
    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return _saved(path)
    files = {}
    for name in ("train",) + TEST_NAMES:
        found = sorted(p for p in path.iterdir() if p.is_file() and p.name.split(".")[0] == name
                       and p.suffix.lower() in FORMATS)
        if len(found) > 1:
            raise ResetRLError(f"{path}: more than one {name} file ({', '.join(p.name for p in found)}); keep one")
        if found:
            files[name] = found[0]
    if "train" not in files:
        raise ResetRLError(f"{path}: a data folder holds a dataset saved by datasets (save_to_disk) or train.* and "
                           f"test.* files ({', '.join(FORMATS)}); found neither")
    return RawSplits({name: read_file(file) for name, file in files.items()},
                     " and ".join(file.name for file in files.values()))
