"""Where a suite's rows come from: files, folders of files, saved datasets, dataset names.

* ``.jsonl``/``.json`` and ``.csv`` files are read directly, so a broken line is reported
  with its number and CSV stays text, cell by cell, exactly as written (no number or "NA"
  guessing; a CSV ``target`` is one string). ``.parquet`` goes through ``datasets``.
* A folder of data files is split by file name as ``datasets`` does (``test.jsonl``,
  ``data/test-00000-of-00001.parquet``), and each file is read like a single file.
* A folder written by ``Dataset.save_to_disk``/``DatasetDict.save_to_disk`` is loaded with
  ``datasets.load_from_disk``; a dataset name with ``datasets.load_dataset`` (offline: from
  the ``datasets`` cache).
* ``split``: the one asked for, else ``test``, else ``train``, else the only one.
"""

from __future__ import annotations

import csv
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

from pytest_forgetting.errors import ForgettingError

_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def read_rows(
    source: Union[str, Path, Sequence[Mapping[str, Any]]], split: Optional[str]
) -> tuple[list[Mapping[str, Any]], str]:
    """The raw rows of ``source`` and how to name it in errors (file, folder, dataset name or rows)."""
    if isinstance(source, (list, tuple)):
        return list(source), "<rows>"
    if hasattr(source, "column_names") and hasattr(source, "__getitem__"):  # a datasets.Dataset (or DatasetDict)
        if isinstance(getattr(source, "column_names"), dict):
            splits = list(source)  # type: ignore[arg-type]
            chosen = split or next((s for s in ("test", "train") if s in splits), splits[0] if len(splits) == 1 else None)
            if chosen not in splits:
                raise ForgettingError(f"a DatasetDict with splits {', '.join(splits)}: say which with split=...")
            source = source[chosen]  # type: ignore[index]
        return [dict(row) for row in source], "<dataset>"  # type: ignore[union-attr]
    if not isinstance(source, (str, Path)):
        raise ForgettingError(f"a suite's source was a {type(source).__name__}; expected a file or folder path, a "
                              "dataset name, a list of row dicts (for a generator: list(...)) or a datasets.Dataset")
    path = Path(source)
    if path.is_dir():
        return _read_folder(path, split)
    if path.exists():
        return _read_file(path, split), str(path)
    if isinstance(source, str) and not source.endswith(tuple(_FORMATS)):
        return _load_dataset_name(source, split), source
    raise ForgettingError(f"{source}: no such suite file")


def _read_file(path: Path, split: Optional[str]) -> list[Mapping[str, Any]]:
    builder = _FORMATS.get(path.suffix.lower())
    if builder is None:
        raise ForgettingError(
            f"{path}: unsupported suite file type {path.suffix!r}; expected one of {', '.join(_FORMATS)}, "
            "a folder of such files, or a folder written by datasets' save_to_disk"
        )
    if builder == "json":
        return _read_json_lines(path)
    if builder == "csv":
        return _read_csv(path)
    with _quiet_datasets(str(path)) as datasets:
        dataset = datasets.load_dataset(builder, data_files=str(path), split=split or "train")
    return [dict(row) for row in dataset]


def _read_folder(folder: Path, split: Optional[str]) -> tuple[list[Mapping[str, Any]], str]:
    """A folder written by ``save_to_disk``, or of data files named by split as ``datasets`` does.

    Data files are found with ``datasets``' own split rules (``test.jsonl``,
    ``data/train-00000-of-00001.parquet``, ``test/*.csv``; any other names: one ``train``
    split), then read like single files, so CSV stays text and JSON errors keep line numbers.
    """
    where = str(folder)
    if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
        with _quiet_datasets(where) as datasets:
            loaded = datasets.load_from_disk(str(folder))
        if isinstance(loaded, datasets.DatasetDict):
            chosen = _pick_split(list(loaded), split, where)
            return [dict(row) for row in loaded[chosen]], f"{where} (split {chosen!r})"
        if split is not None:
            raise ForgettingError(
                f"{where}: split={split!r} given, but this saved dataset has no splits; leave split out"
            )
        return [dict(row) for row in loaded], where
    with _quiet_datasets(where) as datasets:
        from datasets.data_files import DataFilesDict, EmptyDatasetError, get_data_patterns

        base = str(folder.resolve())
        try:
            found = DataFilesDict.from_patterns(get_data_patterns(base), base_path=base)
        except (EmptyDatasetError, FileNotFoundError):
            found = DataFilesDict()
    splits = {
        str(name): [Path(file) for file in files if Path(file).suffix.lower() in _FORMATS]
        for name, files in found.items()
    }
    splits = {name: files for name, files in splits.items() if files}
    if not splits:
        raise ForgettingError(
            f"{where}: no suite data in this folder; expected {'/'.join(_FORMATS)} files (one split per name: "
            "test.jsonl, train.jsonl, ...) or a folder written by datasets' save_to_disk"
        )
    chosen = _pick_split(list(splits), split, where)
    files = splits[chosen]
    rows = [row for file in files for row in _read_file(file, None)]
    return rows, str(files[0]) if len(files) == 1 else f"{where} (split {chosen!r}, {len(files)} files)"


def _pick_split(available: Sequence[str], split: Optional[str], where: str) -> str:
    """The requested split, else ``test``, else ``train``, else the only one."""
    if split is not None:
        if split not in available:
            raise ForgettingError(f"{where}: no split {split!r}; available: {', '.join(available)}")
        return split
    for default in ("test", "train"):
        if default in available:
            return default
    if len(available) == 1:
        return available[0]
    raise ForgettingError(f"{where}: several splits ({', '.join(available)}); choose one with split=...")


def _load_dataset_name(name: str, split: Optional[str]) -> list[Mapping[str, Any]]:
    with _quiet_datasets(name) as datasets:
        loaded = datasets.load_dataset(name, split=split)
    if isinstance(loaded, datasets.DatasetDict):
        loaded = loaded[_pick_split(list(loaded), None, name)]
    return [dict(row) for row in loaded]


@contextmanager
def _quiet_datasets(where: str) -> Iterator[Any]:
    """``datasets`` without progress bars or warnings; any failure becomes one line."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - a declared dependency
        raise ForgettingError("loading suites needs the 'datasets' package: pip install datasets") from None
    verbosity = datasets.logging.get_verbosity()
    bars = datasets.is_progress_bar_enabled()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        yield datasets
    except ForgettingError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ForgettingError(f"{where}: cannot load the suite ({first[:200]})") from None
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars:
            datasets.enable_progress_bars()


def _read_json_lines(path: Path) -> list[Mapping[str, Any]]:
    """JSONL (or a JSON list) read directly, so a broken line is reported with its number."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise ForgettingError(f"{path}: not valid JSON ({exc})") from None
        return list(rows)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise ForgettingError(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
    return rows


def _read_csv(path: Path) -> list[Mapping[str, Any]]:
    """CSV read as text (``datasets`` would turn ``42`` into ``42.0`` and ``None`` into null)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = [dict(row) for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ForgettingError(f"{path}: cannot read the CSV file ({exc})") from None
    for number, row in enumerate(rows, start=1):
        if None in row:
            raise ForgettingError(f"{path}, row {number}: more cells than the header has columns")
    return rows
