"""Reading landing files (CSV, Parquet, JSONL) into Arrow tables, without judging their values.

A reader either returns the file's records, each numbered, plus the records it could not even
parse (a ragged CSV row, a line that is not JSON), or raises `UnreadableFile` with a sentence
saying why the whole file is lost (truncated Parquet, not UTF-8, a header naming a column
twice or an empty name over values, ...). Typing and validation happen afterwards, in SQL
(`defs/ingest/load.py`), the same way for every format.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath, PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from relanalytics_pipeline.settings import Settings

ROW_NUMBER = "_row_number"
SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl")


class UnreadableFile(Exception):
    """The whole file cannot be loaded; the message is the quarantine reason."""


@dataclass(frozen=True)
class RowRejection:
    row_number: int
    reason: str
    raw_record: str


@dataclass(frozen=True)
class ParquetRows:
    """A Parquet landing file's rows left in the file, for the load's DuckDB to read itself
    (`defs/ingest/load.py`, `_as_views`): streamed within DuckDB's memory limit, where an Arrow
    table held the whole file beside DuckDB's buffers (20.6M party rows in one file of a
    10M-activity CRM: 1.7 GiB over the limit). Only the footer is read here.

    Like the Arrow table it stands for, it has the file's columns plus ROW_NUMBER, renamed and
    selected by `with_usable_names` and the load's spelling of the contract's names.
    """

    path: Path
    schema: pa.Schema  # the columns' types as Arrow reads them (the load's typing goes by them)
    file_names: tuple[str | None, ...]  # each column's name in the file; None for ROW_NUMBER
    num_rows: int

    @property
    def column_names(self) -> list[str]:
        return self.schema.names

    def select(self, indices: list[int]) -> ParquetRows:
        return replace(
            self,
            schema=pa.schema([self.schema.field(i) for i in indices]),
            file_names=tuple(self.file_names[i] for i in indices),
        )

    def rename_columns(self, names: list[str]) -> ParquetRows:
        fields = [f.with_name(n) for f, n in zip(self.schema, names, strict=True)]
        return replace(self, schema=pa.schema(fields))


@dataclass
class RawFile:
    # The file's own columns plus ROW_NUMBER (1-based record number): read, or for a Parquet file
    # the canonical load reads (`read_landing_file(..., parquet_in_file=True)`), left in the file.
    table: pa.Table | ParquetRows
    rejected: list[RowRejection] = field(default_factory=list)
    # Records a CRM export carries that are no canonical row by design (see exports/mapping.py).
    rows_skipped: int = 0
    # When `table` holds rows mapped from a CRM export: the export's own records (with
    # ROW_NUMBER), which a rejected row is quarantined as, so nothing of the export is lost.
    records: pa.Table | None = None
    # Columns the reader left out (a nameless column without values), each as a phrase to report.
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.table.num_rows + len(self.rejected) + self.rows_skipped

    @property
    def quarantined_as(self) -> pa.Table | ParquetRows:
        """The records a rejected row is quarantined as: an export's own, else the file's rows."""
        return self.table if self.records is None else self.records


def landing_folder(settings: Settings) -> Path:
    """The folder a run loads: RELANALYTICS_LANDING_DIR, or else the sample that `relanalytics
    demo` generates. The pipeline never generates data itself: a production run with no folder
    configured stops here rather than load fake records."""
    if settings.landing_dir is not None:
        if not settings.landing_dir.is_dir():
            raise FileNotFoundError(
                f"The landing folder {settings.landing_dir} (RELANALYTICS_LANDING_DIR) does not "
                "exist. Point the variable at the folder holding <entity>/ subfolders."
            )
        return settings.landing_dir
    sample = settings.sample_landing_dir
    if not (sample / "activities").is_dir():
        raise FileNotFoundError(
            "No landing folder: RELANALYTICS_LANDING_DIR is not set and there is no sample in "
            f"{sample}. Point the variable at your CRM's files, or run `relanalytics demo` to "
            "generate a sample there."
        )
    return sample


def landing_day(name: str) -> dt.date | None:
    """The day a dated subfolder's name gives (`2026-06-30`), or None for any other name."""
    try:
        return dt.date.fromisoformat(name) if len(name) == 10 else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Ignored:
    """Something under the landing folder that is not read, and why (listed in the run's
    metadata: nothing there is dropped in silence)."""

    path: Path
    reason: str


@dataclass
class FolderListing:
    """The files of one landing folder (an entity's, an export table's), in name order of their
    path inside it, which decides ties between versions."""

    files: list[Path] = field(default_factory=list)  # this night's
    later: list[Path] = field(default_factory=list)  # in day subfolders after `through`
    ignored: list[Ignored] = field(default_factory=list)


def scan_landing_folder(folder: Path, through: dt.date | None = None) -> FolderListing:
    """The regular files under `folder`; with `through`, those in a later day's subfolder apart.

    Files lie directly in the folder, or in a subfolder named for the day they landed
    (`<entity>/2026-06-30/part-1.csv`, the nightly drop). With `through`, a day's subfolder counts
    only once that day is reached, so that a run for a past night does not see later nights' files.
    Hidden and marker files (`.x`, `_SUCCESS`) are skipped; any other file is returned, so one of
    an unsupported type, or in a subfolder that names no day, reaches the quarantine instead of
    being ignored silently (`read_landing_file` and `check_landing_place` say why).

    Symbolic links are never followed: one leading out of the landing folder would read outside
    it, one inside would load the same rows twice under two names. They, and anything else that
    is no regular file (a pipe, a socket), are listed as ignored with the reason.
    """
    listing = FolderListing()
    if folder.is_symlink() or not folder.is_dir():
        if folder.is_symlink() or folder.exists():
            listing.ignored.append(Ignored(folder, _not_read(folder)))
        return listing
    found = []
    for parent, folders, names in os.walk(folder):
        here = Path(parent)
        for name in [*folders, *names]:
            path = here / name
            if is_hidden(PurePath(name)):
                continue
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                listing.ignored.append(Ignored(path, _not_read(path)))
            elif path.is_file():
                found.append(path)
        # os.walk lists a link to a folder among the folders but does not enter it.
        folders[:] = [n for n in folders if not is_hidden(PurePath(n))]
    for path in sorted(found, key=lambda path: path.relative_to(folder).as_posix()):
        relative = path.relative_to(folder)
        day = landing_day(relative.parts[0]) if len(relative.parts) > 1 else None
        later = day is not None and through is not None and day > through
        (listing.later if later else listing.files).append(path)
    listing.ignored.sort(key=lambda entry: entry.path.as_posix())
    return listing


def _not_read(path: Path) -> str:
    if path.is_symlink():
        return f"symbolic link to {os.readlink(path)}: links are not followed"
    if path.is_file():  # where the folder of that name belongs
        return "a file where a folder is expected"
    return "not a regular file or folder"


def list_landing_files(folder: Path, through: dt.date | None = None) -> list[Path]:
    """This night's files of `folder` (see `scan_landing_folder`)."""
    return scan_landing_folder(folder, through).files


def unexpected_entries(folder: Path, expected: Iterable[str], what: str) -> list[Ignored]:
    """The entries of `folder` other than the `expected` subfolders, each with why it is not
    read: a misspelled entity folder, a file lying beside the folders, a link."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    expected = set(expected)
    ignored = []
    for path in sorted(folder.iterdir()):
        # An expected name that is a link or a file is reported by its own listing.
        if is_hidden(PurePath(path.name)) or path.name in expected:
            continue
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            reason = _not_read(path)
        else:
            kind = "folder" if path.is_dir() else "file"
            reason = f"{kind} is not {what} (expected one of {', '.join(sorted(expected))})"
        ignored.append(Ignored(path, reason))
    return ignored


def file_stamp(path: Path) -> tuple[int, int]:
    """(size, modification time in ns): what changes while a writer is still at the file."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def is_hidden(relative: PurePath) -> bool:
    """Whether a path inside the landing folder is, or lies in, a hidden or marker file or
    folder (`.x`, `_SUCCESS`, `_temporary/`): none of those is a landing file."""
    return any(part.startswith((".", "_")) for part in relative.parts)


def check_landing_place(relative: PurePosixPath) -> None:
    """Raise `UnreadableFile` for a file (path inside its entity's folder) in a wrong subfolder."""
    if len(relative.parts) == 1:
        return
    if len(relative.parts) > 2 or landing_day(relative.parts[0]) is None:
        raise UnreadableFile(
            f"file lies in subfolder {relative.parent.as_posix()!r}, which is not a landing day: "
            "put files in the entity's folder or in a subfolder named YYYY-MM-DD"
        )


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_landing_file(path: Path, parquet_in_file: bool = False) -> RawFile:
    """The file's records; with `parquet_in_file`, a Parquet file's rows are left in the file
    (`ParquetRows`) for DuckDB to read, as the canonical load does."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnreadableFile(
            f"unsupported file type {suffix or '(none)'!r}: expected one of "
            + ", ".join(SUPPORTED_SUFFIXES)
        )
    parquet = _parquet_rows if parquet_in_file else _read_parquet
    try:
        raw = {".csv": _read_csv, ".parquet": parquet, ".jsonl": _read_jsonl}[suffix](path)
    except UnicodeDecodeError as error:
        raise UnreadableFile(
            f"file is not UTF-8 text (byte {error.start}: {error.reason})"
        ) from error
    except (pa.ArrowException, OSError, csv.Error) as error:
        raise UnreadableFile(f"cannot read {suffix[1:]} file: {error}") from error
    return with_usable_names(raw)


def with_usable_names(raw: RawFile) -> RawFile:
    """The file with its column names stripped of blanks, checked to name each column once.

    A column with an empty name is left out, and reported, when it holds no value: the trailing
    comma some exports end every line with. Raises `UnreadableFile` for an empty name over
    values, and for two names equal ignoring case (`Subject`, `subject`): SQL names ignore case,
    and which of the two is the contract's column cannot be told.
    """
    table = raw.table
    names, keep, seen = [], [], {}
    for index, name in enumerate(table.column_names):
        name = name if name == ROW_NUMBER else name.strip()
        if not name:
            if _holds_values(table.column(index)):
                raise UnreadableFile(
                    f'column {index + 1} has an empty name ("") but holds values: '
                    "name it in the header or remove it"
                )
            raw.ignored_columns.append(f"column {index + 1} (no name and no values)")
            continue
        if name.casefold() in seen:
            raise UnreadableFile(
                f"the header names column {seen[name.casefold()]!r} twice (as {name!r}); "
                "names are compared ignoring case"
            )
        seen[name.casefold()] = name
        names.append(name)
        keep.append(index)
    raw.table = table.select(keep).rename_columns(names)
    return raw


def _holds_values(column: pa.ChunkedArray) -> bool:
    values = column.drop_null()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = values.filter(pc.not_equal(pc.utf8_trim_whitespace(values), ""))
    return len(values) > 0


def _with_row_numbers(columns: dict[str, list], row_numbers: list[int]) -> pa.Table:
    return _text_table(list(columns), list(columns.values()), row_numbers)


def _text_table(names: list[str], columns: list[list], row_numbers: list[int]) -> pa.Table:
    """Text columns, which may repeat a name (`with_usable_names` judges the names), plus
    ROW_NUMBER."""
    arrays = [pa.array(values, type=pa.string()) for values in columns]
    arrays.append(pa.array(row_numbers, type=pa.int64()))
    return pa.Table.from_arrays(arrays, names=[*names, ROW_NUMBER])


# The csv module's default limit, 128 KiB a field, failed a whole file for one long email body.
CSV_FIELD_LIMIT = 2**31 - 1


def _read_csv(path: Path) -> RawFile:
    # The csv module rather than Arrow's reader: it keeps a ragged row as one quarantined record
    # instead of failing the file, and numbers records even when quoted fields span lines.
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with path.open(newline="", encoding="utf-8-sig", errors="strict") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise UnreadableFile("CSV file has no header row")
        columns: list[list] = [[] for _ in header]
        numbers: list[int] = []
        rejected: list[RowRejection] = []
        for number, row in enumerate(reader, start=1):
            if not row:  # a blank line holds no record
                continue
            if len(row) != len(header):
                rejected.append(
                    RowRejection(
                        number,
                        f"row has {len(row)} fields but the header has {len(header)}",
                        ",".join(row),
                    )
                )
                continue
            for values, value in zip(columns, row, strict=True):
                values.append(value)
            numbers.append(number)
    return RawFile(_text_table(header, columns, numbers), rejected)


def _read_parquet(path: Path) -> RawFile:
    # The file alone, not as a dataset: a dataset's error names the file's whole path and its
    # fields repeat a name as Arrow's internals, where a person needs the header check's reason.
    table = pq.ParquetFile(path).read()
    numbers = pa.array(range(1, table.num_rows + 1), type=pa.int64())
    return RawFile(table.append_column(ROW_NUMBER, numbers))


# The column in which DuckDB's Parquet reader numbers a file's rows; a column of the file by that
# name (ignoring case) hides it.
DUCKDB_ROW_NUMBER = "file_row_number"


def _parquet_rows(path: Path) -> RawFile:
    with pq.ParquetFile(path) as footer:  # a truncated file fails here
        schema, num_rows = footer.schema_arrow, footer.metadata.num_rows
    # Whether a nameless column holds values decides if it is left out (`with_usable_names`),
    # and a column hiding DuckDB's row numbers leaves the rows unnumbered: such rare files are
    # read whole, as every file once was.
    if any(not n.strip() or n.casefold() == DUCKDB_ROW_NUMBER for n in schema.names):
        return _read_parquet(path)
    columns = schema.append(pa.field(ROW_NUMBER, pa.int64()))
    return RawFile(ParquetRows(path, columns, (*schema.names, None), num_rows))


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _read_jsonl(path: Path) -> RawFile:
    records: list[dict] = []
    numbers: list[int] = []
    rejected: list[RowRejection] = []
    with path.open(encoding="utf-8-sig", errors="strict") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                rejected.append(RowRejection(number, f"line is not valid JSON: {error.msg}", line))
                continue
            if not isinstance(record, dict):
                rejected.append(RowRejection(number, "line is not a JSON object", line))
                continue
            records.append(record)
            numbers.append(number)
    names = list(dict.fromkeys(name for record in records for name in record))
    columns = {name: [_json_text(record.get(name)) for record in records] for name in names}
    return RawFile(_with_row_numbers(columns, numbers), rejected)
