"""CRM exports (Dynamics 365 / Dataverse, Salesforce) mapped to canonical rows, then loaded by the
canonical ingest (`../load.py`): the same typing, quarantine, fingerprints and versioned upsert.

An export table is described by one SQL SELECT over its file (`export`, every value as text)
that yields the canonical columns plus two of its own:

- `_problem`: a sentence naming the export's column and value when a row cannot be mapped (an
  unknown option-set code, a party of an unknown kind); the row goes to the quarantine with it.
- `_skip`: the row is no canonical row by design (a Dataverse party of mask 8, 10 or 11, a
  Salesforce email task that an EmailMessage already carries); it is counted, not quarantined.

The rows that remain are validated like any canonical file, so a bad timestamp is quarantined
with the canonical reason; a rejected row is quarantined as the export's record, not as the
canonical row made of it. Export columns are written `"name"` in the SELECT; a column a file
lacks reads as empty, so a missing key is quarantined row by row ("activity_id is missing").

Code and stage maps have defaults from the vendors' documented meanings; a JSON file named by
RELANALYTICS_EXPORT_MAPS overrides any of them (see docs/exports.md).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from relanalytics_pipeline.defs.ingest.landing import ROW_NUMBER, RawFile, RowRejection

SOURCES = ("dataverse", "salesforce")


@dataclass(frozen=True)
class ExportSettings:
    """What the mappings need besides the files: code maps and the CRMs' base addresses."""

    maps: Mapping[str, Mapping[str, Mapping[str, str]]]  # source -> map name -> code -> value
    base_urls: Mapping[str, str] = field(default_factory=dict)  # source -> https://...

    def codes(self, source: str, name: str) -> Mapping[str, str]:
        return self.maps[source][name]

    def base_url(self, source: str) -> str | None:
        url = self.base_urls.get(source)
        return url.rstrip("/") if url else None


def load_maps(
    defaults: Mapping[str, Mapping[str, Mapping[str, str]]], overrides_file: Path | None
) -> dict[str, dict[str, dict[str, str]]]:
    """The default maps with those of `overrides_file` replacing them map by map."""
    maps = {s: {name: dict(codes) for name, codes in m.items()} for s, m in defaults.items()}
    if overrides_file is None:
        return maps
    overrides = json.loads(overrides_file.read_text(encoding="utf-8"))
    for source, named in overrides.items():
        for name, codes in named.items():
            if source not in maps or name not in maps[source]:
                known = ", ".join(f"{s}.{n}" for s in maps for n in maps[s])
                raise ValueError(
                    f"{overrides_file}: no map {source}.{name} to override; known maps: {known}"
                )
            maps[source][name] = {str(code): str(value) for code, value in codes.items()}
    return maps


# --- SQL helpers for the mapping SELECTs ---------------------------------------------------------


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def coded(
    column: str, codes: Mapping[str, str], what: str, label: str | None = None
) -> tuple[str, str]:
    """(canonical value, problem) of an export column (SQL) holding a code of `codes`; the
    problem names the column as `label` (default: the column's name).

    Codes match case-insensitively and whole numbers written as decimals ("1.0") match "1".
    """
    label = label or column.strip('"')
    key = f"LOWER(REGEXP_REPLACE({column}, '\\.0+$', ''))"
    cases = " ".join(
        f"WHEN {sql_string(code.lower())} THEN {sql_string(value)}" for code, value in codes.items()
    )
    value = f"CASE {key} {cases} END" if codes else "CAST(NULL AS VARCHAR)"
    known = ", ".join(f"{code} {value}" for code, value in codes.items())
    problem = (
        f"CASE WHEN {column} IS NOT NULL AND {value} IS NULL THEN "
        f"{sql_string(label + ' ')} || '''' || {column} || '''' || "
        f"{sql_string(f' is not a known {what} ({known})')} END"
    )
    return value, problem


def problems(*checks: str) -> str:
    return f"NULLIF(CONCAT_WS('; ', {', '.join(checks)}), '')" if checks else "NULL"


@dataclass(frozen=True)
class RowMapping:
    """How an export's rows become canonical rows, as SQL over `export` (values as text)."""

    columns: Mapping[str, str]  # canonical column -> SQL expression
    problems: tuple[str, ...] = ()  # SQL expressions: a sentence when the row cannot be mapped
    skip: str = "FALSE"  # SQL condition: the row is no canonical row, by design (counted)
    # Several canonical rows per record (a call's two parties): one per value, as column `party`.
    rows_per_record: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportTable:
    """One export table (Dataverse) or object (Salesforce) and the canonical entity it feeds."""

    source: str
    name: str  # the folder under <landing>/<source>/
    entity: str
    mapping: Callable[[ExportSettings], RowMapping]
    description: str = ""


_COLUMN = re.compile(r'"((?:[^"]|"")+)"')


def map_rows(table: ExportTable, raw: RawFile, settings: ExportSettings) -> RawFile:
    """An export file's records as canonical records: each one rejected, skipped or mapped."""
    mapping = table.mapping(settings)
    columns = ", ".join(f"CAST({sql} AS VARCHAR) AS {c}" for c, sql in mapping.columns.items())
    source, order = "export", ROW_NUMBER
    if mapping.rows_per_record:
        values = ", ".join(f"({sql_string(v)})" for v in mapping.rows_per_record)
        source, order = f"export CROSS JOIN (VALUES {values}) AS expanded(party)", "party"
    select = (
        f"SELECT {columns}, {problems(*mapping.problems)} AS _problem, "
        f"COALESCE({mapping.skip}, FALSE) AS _skip, {ROW_NUMBER} FROM {source} "
        f"ORDER BY {ROW_NUMBER}, {order}"
    )
    data = _trimmed(raw.table)
    for name in dict.fromkeys(m.replace('""', '"') for m in _COLUMN.findall(select)):
        if name not in data.column_names:  # any column may be absent from an export: empty
            data = data.append_column(name, pa.nulls(data.num_rows, pa.string()))
    with duckdb.connect() as connection:
        connection.register("export", data)
        mapped = connection.sql(select).to_arrow_table()
    rejected = list(raw.rejected)
    keep, skipped = [], 0
    original = raw.quarantined_as
    records = {r[ROW_NUMBER]: r for r in original.to_pylist()}
    for index, (reason, skip, number) in enumerate(
        zip(
            mapped["_problem"].to_pylist(),
            mapped["_skip"].to_pylist(),
            mapped[ROW_NUMBER].to_pylist(),
            strict=True,
        )
    ):
        if reason is not None:
            record = {k: v for k, v in records[number].items() if k != ROW_NUMBER and v is not None}
            rejected.append(RowRejection(number, reason, json.dumps(record, ensure_ascii=False)))
        elif skip:
            skipped += 1
        else:
            keep.append(index)
    canonical = mapped.drop_columns(["_problem", "_skip"]).take(keep)
    return RawFile(
        canonical, rejected, raw.rows_skipped + skipped, original, list(raw.ignored_columns)
    )


def _trimmed(data: pa.Table) -> pa.Table:
    """Every export value as text without surrounding blanks; an empty one as NULL."""
    import pyarrow.compute as pc

    columns = {}
    for name in data.column_names:
        column = data.column(name)
        if name == ROW_NUMBER:
            columns[name] = column
            continue
        text = pc.utf8_trim_whitespace(column.cast(pa.string()))
        columns[name] = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    return pa.table(columns)


def ingest_export(
    warehouse: Path | duckdb.DuckDBPyConnection,
    landing_dir: Path,
    table: ExportTable,
    read: Callable[[Path], RawFile],
    settings: ExportSettings,
    run_id: str,
    depends_on: str = "",
    through: dt.date | None = None,
    suppression=None,
):
    """Load the table's new or changed files into `crm.<entity>` with the canonical ingest (the
    warehouse: its file, or a connection from `ingest_connection`)."""
    from relanalytics_pipeline.defs.ingest.load import ingest_files

    return ingest_files(
        warehouse,
        table.entity,
        landing_dir,
        f"{table.source}/{table.name}",
        lambda path: map_rows(table, read(path), settings),
        run_id,
        depends_on=depends_on,
        through=through,
        suppression=suppression,
    )
