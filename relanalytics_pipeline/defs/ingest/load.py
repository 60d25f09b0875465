"""Loading landing files into the warehouse's `crm` schema, with the raw contract's rules.

- Each file is typed and validated in SQL; a row that cannot be mapped goes to
  `quarantine.rejected_rows` with a sentence naming the column and the problem, a file that
  cannot be read goes there as one row with an empty `row_number`. Nothing in a file stops the
  run; only a problem of the machine (out of memory, disk) does.
- `crm.<entity>` keeps one row per version, `(key, modified_at)`, so the raw history survives;
  staging models pick the newest version and drop deleted records.
- Two rows of the same version: the one from the file later in name order (then the later row)
  wins; it counts as a duplicate, and as a conflict when the content differs.
- `ingest.files` remembers each file's SHA-256: an unchanged file is skipped on the next run, a
  changed one is reloaded (its earlier rows and rejections replaced), so re-ingesting the same
  files changes nothing; a file gone from the landing folder takes its rows and rejections along.
- The warehouse reflects the landing folder as it is now: whatever order files arrived, changed,
  shrank or went in, the current rows equal those of a fresh load. For that, a row that lost its
  version to a later file is kept in `ingest.outranked_<entity>`; when the winner's file changes
  or goes, the best remaining row takes the version's place (with a fresh `_loaded_at`).
- A file that changes while it is read (size or modification time) is still being written: it is
  reported as waiting and loaded by a later run; whatever it loaded before stays meanwhile.
- Every raw row carries its `_loaded_at`; the rows a reload removes are logged in
  `ingest.removed_rows` with theirs. The incremental dbt models find what changed since their
  last build from these two alone.
- Accounting per file: rows_read = rows_loaded + rows_duplicate + rows_quarantined +
  rows_skipped (rows a CRM export carries that are no canonical row, see exports/mapping.py) +
  rows_suppressed (rows naming an erased person, defs/privacy: neither loaded nor quarantined).
  An erased person's valid party rows load with the person replaced by an anonymous party
  (rows_anonymised, among the loaded): the activity keeps its other people and their time.
- Column names match the contract ignoring case; a file's other columns load nowhere and are
  reported (`FileReport.unknown_columns`), a near miss with the contract column it nearly spells.
- `ingest_files` loads any reader's files the same way: the CRM exports map their rows to
  canonical ones and hand them here.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import duckdb
import pyarrow as pa

from relanalytics_pipeline.defs.ingest.landing import (
    ROW_NUMBER,
    RawFile,
    UnreadableFile,
    check_landing_place,
    file_stamp,
    fingerprint,
    read_landing_file,
    scan_landing_folder,
)
from relanalytics_pipeline.defs.privacy.people import (
    ANONYMISED_ENTITY,
    Suppression,
    anonymise,
    load_matching,
    matches,
)
from relanalytics_pipeline.defs.privacy.rules import ensure_exclusion_tables
from relanalytics_pipeline.raw_contract import ENTITIES, Column, Entity
from relanalytics_pipeline.warehouse import SCHEMAS, connect, ensure_tables_written_after_dbt, q

# Errors that say nothing about a file's content: they stop the run instead of quarantining it.
ENVIRONMENT_ERRORS = (duckdb.OutOfMemoryException, duckdb.IOException, duckdb.InterruptException)

LINEAGE_COLUMNS = {
    "_source_file": "VARCHAR",
    "_row_number": "BIGINT",
    "_run_id": "VARCHAR",
    "_loaded_at": "TIMESTAMP",
}


@dataclass
class FileReport:
    source_file: str
    status: str  # loaded | unchanged | quarantined | waiting | removed | ignored
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_conflicting: int = 0
    rows_quarantined: int = 0
    rows_skipped: int = 0
    rows_suppressed: int = 0
    rows_anonymised: int = 0  # of rows_loaded
    reason: str | None = None
    # Columns of the file that no contract column takes, as phrases: "duraton_minutes (did you
    # mean duration_minutes?)". Their values load nowhere, so the run reports them.
    unknown_columns: list[str] = field(default_factory=list)


@dataclass
class EntityReport:
    entity: str
    files: list[FileReport] = field(default_factory=list)
    versions_in_table: int = 0  # rows of crm.<entity> after the load

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)


def ensure_warehouse(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the schemas and raw tables, so dbt finds every source even before its first file
    (or, for the similar-deals model's table, before the model's first run)."""
    for schema in SCHEMAS:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for entity in ENTITIES.values():
        columns = [f"{q(c.name)} {c.sql_type}" for c in entity.columns]
        columns += [f"{name} {sql_type}" for name, sql_type in LINEAGE_COLUMNS.items()]
        connection.execute(f"CREATE TABLE IF NOT EXISTS crm.{entity.name} ({', '.join(columns)})")
        if entity.versioned:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {_outranked(entity)} ({', '.join(columns)})"
            )
    connection.execute(
        """
        CREATE TABLE IF NOT EXISTS quarantine.rejected_rows (
            entity VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            row_number BIGINT,
            reason VARCHAR NOT NULL,
            raw_record VARCHAR,
            run_id VARCHAR,
            rejected_at TIMESTAMP NOT NULL
        )
        """
    )
    connection.execute(
        """
        CREATE TABLE IF NOT EXISTS ingest.files (
            entity VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            rows_read BIGINT,
            rows_loaded BIGINT,
            rows_duplicate BIGINT,
            rows_conflicting BIGINT,
            rows_quarantined BIGINT,
            run_id VARCHAR,
            ingested_at TIMESTAMP NOT NULL,
            PRIMARY KEY (entity, source_file)
        )
        """
    )
    # The record each row removed by a reload belonged to (the first key column: activity_id for
    # party rows), so that incremental models also see rows that vanished from a changed file.
    connection.execute(
        """
        CREATE TABLE IF NOT EXISTS ingest.removed_rows (
            entity VARCHAR NOT NULL,
            record_id VARCHAR,
            removed_at TIMESTAMP NOT NULL
        )
        """
    )
    # Added with the CRM exports; a warehouse made before them gains it here.
    connection.execute(
        "ALTER TABLE ingest.files ADD COLUMN IF NOT EXISTS rows_skipped BIGINT DEFAULT 0"
    )
    # Each file's size and modification time when loaded: the sensor compares the landing folder
    # with them without reading any file (defs/automation/triggers.py).
    for column in ("file_size", "file_mtime_ns"):
        connection.execute(f"ALTER TABLE ingest.files ADD COLUMN IF NOT EXISTS {column} BIGINT")
    connection.execute(
        "ALTER TABLE ingest.files ADD COLUMN IF NOT EXISTS rows_suppressed BIGINT DEFAULT 0"
    )
    # Read by the staging models: empty until a run with exclusion rules fills them.
    ensure_exclusion_tables(connection)
    # Read by the similar-deals views, which dbt creates before the model's first run fills it.
    ensure_tables_written_after_dbt(connection)


def _outranked(entity: Entity) -> str:
    """The rows of `crm.<entity>`'s versions that a row of a file later in name order beat."""
    return f"ingest.outranked_{entity.name}"


def _stored_columns(entity: Entity) -> str:
    return ", ".join([*(q(c) for c in entity.column_names), *LINEAGE_COLUMNS])


# --- typing and validation, as SQL over the file's text -------------------------------------


def _text(column: Column, present: set[str]) -> str:
    if column.name not in present:
        return "CAST(NULL AS VARCHAR)"
    text = f"NULLIF(TRIM(CAST({q(column.name)} AS VARCHAR)), '')"
    if column.kind in ("decimal", "integer", "double"):
        # pandas writes a missing number as NaN; it means "no value", not a bad one.
        return f"CASE WHEN LOWER({text}) = 'nan' THEN NULL ELSE {text} END"
    return text


def _native(column: Column, arrow_type: pa.DataType) -> tuple[str, str] | None:
    """(value, typed value) of a column whose file type already fits, as typed Parquet's do.

    Such columns skip the round trip through text, which costs about half of the load time of a
    typed Parquet file. Anything else (strings, or a type that does not fit) goes through text.
    """
    name = q(column.name)
    if column.kind == "timestamp" and pa.types.is_timestamp(arrow_type):
        # A timestamp without a zone is UTC (the session's zone).
        return name, f"CAST(CAST({name} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)"
    if column.kind == "date" and pa.types.is_date(arrow_type):
        return name, f"CAST({name} AS DATE)"
    if column.kind == "bool" and pa.types.is_boolean(arrow_type):
        return name, name
    numeric = pa.types.is_integer(arrow_type) or pa.types.is_decimal(arrow_type)
    if column.kind in ("decimal", "integer", "double") and (
        numeric or pa.types.is_floating(arrow_type)
    ):
        # NaN is pandas' missing number: no value rather than a bad one.
        value = name if numeric else f"CASE WHEN isnan({name}) THEN NULL ELSE {name} END"
        return value, {
            "decimal": f"TRY_CAST({value} AS DECIMAL(18, 2))",
            "integer": _whole(value),
            "double": f"CAST({value} AS DOUBLE)",
        }[column.kind]
    return None


def _typed(column: Column, raw: str) -> str:
    timestamp = f"CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)"
    number = f"TRY_CAST({raw} AS DOUBLE)"
    return {
        "text": raw,
        "enum": f"LOWER({raw})",
        "timestamp": timestamp,
        "date": f"COALESCE(TRY_CAST({raw} AS DATE), CAST({timestamp} AS DATE))",
        "bool": (
            f"CASE WHEN LOWER({raw}) IN ('true', 't', '1', 'yes', 'y') THEN TRUE "
            f"WHEN LOWER({raw}) IN ('false', 'f', '0', 'no', 'n') THEN FALSE END"
        ),
        "decimal": f"TRY_CAST({raw} AS DECIMAL(18, 2))",
        "integer": _whole(number),
        "double": number,
    }[column.kind]


def _whole(number: str) -> str:
    # TRY_CAST: a whole number beyond BIGINT (1e19) or an infinite one is a bad value of its row;
    # CAST failed the whole file on it.
    return f"CASE WHEN {number} = FLOOR({number}) THEN TRY_CAST({number} AS BIGINT) END"


_EXPECTED = {
    "timestamp": "is not an ISO-8601 timestamp",
    "date": "is not a date (YYYY-MM-DD)",
    "bool": "is not a boolean (true/false)",
    "decimal": "is not a decimal number",
    "integer": "is not a whole number",
    "double": "is not a number",
}
# What the warehouse's types hold, for a number that parses but does not fit.
_CAPACITY = {
    "decimal": "is out of range (decimals up to ±9999999999999999.99)",
    "integer": "is out of range (whole numbers up to ±9223372036854775807)",
}


def _expected(column: Column, raw: str) -> str:
    """SQL: the end of the sentence for a value that did not take the column's type."""
    expected = _sql_string(" " + _EXPECTED[column.kind])
    if column.kind not in _CAPACITY:
        return expected
    number = f"TRY_CAST({raw} AS DOUBLE)"
    fits_kind = f" AND {number} = FLOOR({number})" if column.kind == "integer" else ""
    return (
        f"CASE WHEN NOT isfinite({number}) THEN ' is not a finite number' "
        f"WHEN {number} IS NOT NULL{fits_kind} THEN {_sql_string(' ' + _CAPACITY[column.kind])} "
        f"ELSE {expected} END"
    )


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _problem(column: Column, raw: str, typed: str) -> list[str]:
    """SQL expressions that are a sentence when the column's value is wrong, else NULL."""
    shown = f"'''' || LEFT(CAST({raw} AS VARCHAR), 60) || ''''"
    problems = []
    if column.not_null:
        problems.append(
            f"CASE WHEN {raw} IS NULL THEN {_sql_string(column.name + ' is missing')} END"
        )
    if column.kind == "enum":
        allowed = ", ".join(_sql_string(v) for v in column.values)
        problems.append(
            f"CASE WHEN {raw} IS NOT NULL AND {typed} NOT IN ({allowed}) THEN "
            f"{_sql_string(column.name + ' ')} || {shown} || "
            f"{_sql_string(' is not one of ' + ', '.join(column.values))} END"
        )
    elif column.kind in _EXPECTED:
        problems.append(
            f"CASE WHEN {raw} IS NOT NULL AND {typed} IS NULL THEN "
            f"{_sql_string(column.name + ' ')} || {shown} || {_expected(column, raw)} END"
        )
    if column.accepted_range:
        problems.append(_out_of_range(column, shown, typed))
    return problems


def _out_of_range(column: Column, shown: str, typed: str) -> str:
    low, high = column.accepted_range
    if column.kind in ("timestamp", "date"):
        # Whole days: the last day of the range counts until its end.
        value = f"CAST({typed} AS DATE)"
        low_sql, high_sql = f"DATE {_sql_string(low)}", f"DATE {_sql_string(high)}"
    else:
        value, low_sql, high_sql = typed, repr(low), repr(high)
    tests = [f"{value} < {low_sql}"] + ([f"{value} > {high_sql}"] if high is not None else [])
    expected = f"between {low} and {high}" if high is not None else f"at least {low}"
    return (
        f"CASE WHEN {' OR '.join(tests)} THEN {_sql_string(column.name + ' ')} || {shown} || "
        f"{_sql_string(' is not ' + expected)} END"
    )


def _names_no_activity(activity_id: str) -> str:
    """SQL: the reason of a party whose activity_id (SQL) names no activity. Later runs find the
    parties to check again by this sentence (`_parties_checked_again`)."""
    return f"'activity_id ''' || {activity_id} || ''' names no activity'"


def _checked_select(entity: Entity, schema: pa.Schema) -> str:
    present = set(schema.names) - {ROW_NUMBER}
    typed_columns, problems = [], []
    for column in entity.columns:
        native = _native(column, schema.field(column.name).type) if column.name in present else None
        if native:
            raw, typed = native
        else:
            raw = _text(column, present)
            typed = _typed(column, raw)
        problems += _problem(column, raw, typed)
        if column.name == "is_deleted":
            # An empty flag means "not deleted"; an invalid one ('maybe', '1.0') was a problem
            # above, so the row is quarantined rather than loaded as not deleted.
            typed = f"COALESCE({typed}, FALSE)"
        typed_columns.append(f"{typed} AS {q(column.name)}")
    if entity.name == "activity_parties":
        # Both columns are optional in a file: _text stands in NULL for an absent one.
        problems.append(
            f"CASE WHEN {_text(entity.column('party_id'), present)} IS NULL "
            f"AND {_text(entity.column('address'), present)} IS NULL "
            "THEN 'party has neither party_id nor address' END"
        )
        # Present in any version, deleted ones included: the parties belong to that history.
        activity_id = "TRIM(CAST(activity_id AS VARCHAR))"
        problems.append(
            f"CASE WHEN {activity_id} NOT IN (SELECT activity_id FROM known_activities) "
            f"THEN {_names_no_activity(activity_id)} END"
        )
    checked = f"""
        SELECT {", ".join(typed_columns)},
               {ROW_NUMBER},
               NULLIF(CONCAT_WS('; ', {", ".join(problems)}), '') AS reason
        FROM batch
    """
    # _wins: the row is valid and, so far, its version's winner within the file; the rows a later
    # row of the same version beats lose it in `_outdone_in_file`.
    return f"SELECT *, reason IS NULL AS _wins FROM ({checked})"


def _outdone_in_file(entity: Entity) -> str:
    """SQL: take `_wins` from the valid rows of `checked` that a later valid row of the same
    version beats (the later row wins). Grouping finds the repeated versions, usually none;
    numbering every row of its version sorted each file in full."""
    version = _version(entity)
    columns = ", ".join(q(c) for c in version)
    return f"""
        UPDATE checked SET _wins = FALSE
        FROM (SELECT {columns}, MAX({ROW_NUMBER}) AS latest FROM checked WHERE _wins
              GROUP BY ALL HAVING COUNT(*) > 1) AS repeated
        WHERE checked._wins AND checked.{ROW_NUMBER} < repeated.latest
          AND {_same("checked", "repeated", version)}
    """


def _version(entity: Entity) -> list[str]:
    return [*entity.key, "modified_at"] if entity.versioned else list(entity.key)


def _same(left: str, right: str, columns: Iterable[str]) -> str:
    return " AND ".join(f"{left}.{q(c)} IS NOT DISTINCT FROM {right}.{q(c)}" for c in columns)


def _differs(left: str, right: str, columns: list[str]) -> str:
    return f"NOT ({_same(left, right, columns)})" if columns else "FALSE"


# --- one file -----------------------------------------------------------------------------------


def _quarantine(connection, entity: Entity, source_file: str, run_id: str, now, rows) -> None:
    if rows:
        connection.executemany(
            "INSERT INTO quarantine.rejected_rows VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (entity.name, source_file, number, reason, raw, run_id, now)
                for number, reason, raw in rows
            ],
        )


@contextmanager
def _as_views(connection, raw: RawFile) -> Iterator[None]:
    """Make the file's rows the view `batch`, and the records that a rejected row is quarantined
    with the view `records`. DuckDB reads the rows of a Parquet file left in the file
    (`ParquetRows`) through the file opened here (/dev/fd/<n>): DuckDB takes a path for a glob,
    and a file named `part*.parquet` would read its neighbours."""
    with ExitStack() as files:
        for view, rows in (("batch", raw.table), ("records", raw.quarantined_as)):
            connection.unregister(view)  # a view of either kind hides the other
            if isinstance(rows, pa.Table):
                connection.register(view, rows)
                continue
            handle = files.enter_context(rows.path.open("rb"))
            columns = [
                f"{q(in_file)} AS {q(name)}" if in_file else f"file_row_number + 1 AS {name}"
                for in_file, name in zip(rows.file_names, rows.column_names, strict=True)
            ]
            relation = connection.read_parquet(f"/dev/fd/{handle.fileno()}")
            relation.project(", ".join(columns)).create_view(view)
        yield


def _load_rows(
    connection, entity: Entity, raw: RawFile, report: FileReport, run_id, now, suppressing: bool
) -> None:
    if entity.name == "activity_parties":
        # The file's activities that exist, found by probing the activities with the file's ids:
        # checking each party against all activities hashed every activity id again for every
        # file. Within the file's range of ids, too: DuckDB then skips the row groups of the
        # activities outside it (ids cluster by file, as CRMs export them), where the probe
        # alone read every activity for each file, so a load grew with files x activities.
        ids = "TRIM(CAST(activity_id AS VARCHAR))"
        lowest, highest = connection.execute(f"SELECT min({ids}), max({ids}) FROM batch").fetchone()
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE known_activities AS SELECT DISTINCT activity_id "
            f"FROM crm.activities WHERE activity_id IN (SELECT {ids} FROM batch) "
            "AND activity_id BETWEEN ? AND ?",
            [lowest, highest],
        )
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE checked AS " + _checked_select(entity, raw.table.schema)
    )
    (outdone,) = connection.execute(_outdone_in_file(entity)).fetchone()
    # Rows naming an erased person go nowhere, not even to the quarantine; their valid party rows
    # load anonymised (load_matching was called on the connection when anyone was erased).
    if suppressing:
        anonymising = entity.name == ANONYMISED_ENTITY
        (report.rows_suppressed,) = connection.execute(
            f"DELETE FROM checked WHERE {matches(entity.name)}"
            + (" AND reason IS NOT NULL" if anonymising else "")
        ).fetchone()
        if anonymising:
            (report.rows_anonymised,) = connection.execute(
                anonymise("checked", entity.name)
            ).fetchone()
    # The raw record, as text, only for the rows that need it: about a third of the load time
    # of a clean file went into serialising rows that were never rejected.
    columns = raw.quarantined_as.column_names
    record = ", ".join(f"{q(c)} := b.{q(c)}" for c in columns if c != ROW_NUMBER)
    connection.execute(
        "INSERT INTO quarantine.rejected_rows "
        f"SELECT ?, ?, c.{ROW_NUMBER}, c.reason, CAST(TO_JSON(STRUCT_PACK({record})) AS VARCHAR), "
        f"?, ? FROM checked c JOIN records b USING ({ROW_NUMBER}) WHERE c.reason IS NOT NULL",
        [entity.name, report.source_file, run_id, now],
    )
    _quarantine(
        connection, entity, report.source_file, run_id, now,
        [(r.row_number, r.reason, r.raw_record) for r in raw.rejected],
    )  # fmt: skip

    version = _version(entity)
    content = [c for c in entity.column_names if c not in version]
    in_file_duplicates, in_file_conflicts = 0, 0
    if outdone:  # most files repeat no version, and skip this join of the file with itself
        in_file_duplicates, in_file_conflicts = connection.execute(
            f"""
            SELECT COUNT(*), COUNT(*) FILTER (WHERE {_differs("d", "w", content)})
            FROM checked d JOIN checked w
                ON d.reason IS NULL AND NOT d._wins AND w._wins AND {_same("d", "w", version)}
            """
        ).fetchone()
    table = f"crm.{entity.name}"
    # A version already in the warehouse: the row from the file later in name order wins. Party
    # rows have no versions: each file's rows are the activity's party set as of that file.
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE matched AS
        SELECT {", ".join(f"w.{q(c)}" for c in version)},
               e._source_file > ? AS existing_wins,
               {_differs("w", "e", content)} AS conflicting
        FROM checked w JOIN {table} e ON w._wins AND {_same("w", "e", version)}
        WHERE {"TRUE" if entity.versioned else "FALSE"}
        """,
        [report.source_file],
    )
    matched, matched_conflicts = connection.execute(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE conflicting) FROM matched"
    ).fetchone()
    columns = ", ".join(q(c) for c in entity.column_names)
    if matched:  # most files share no version with the table, and skip its two scans here
        beaten = (
            "EXISTS (SELECT 1 FROM matched m WHERE NOT m.existing_wins "
            f"AND {_same('m', 'e', version)})"
        )
        # The losers stay at hand, for when the winner's file changes or goes (see _forget).
        stored = _stored_columns(entity)
        connection.execute(
            f"INSERT INTO {_outranked(entity)} ({stored}) SELECT {stored} FROM {table} e "
            f"WHERE {beaten}"
        )
        connection.execute(
            f"""
            INSERT INTO {_outranked(entity)} ({stored})
            SELECT {columns}, ?, _row_number, ?, ? FROM checked w
            WHERE _wins AND EXISTS (
                SELECT 1 FROM matched m WHERE m.existing_wins AND {_same("m", "w", version)})
            """,
            [report.source_file, run_id, now],
        )
        connection.execute(f"DELETE FROM {table} e WHERE {beaten}")
    connection.execute(
        f"""
        INSERT INTO {table} ({columns}, _source_file, _row_number, _run_id, _loaded_at)
        SELECT {columns}, ?, _row_number, ?, ? FROM checked w
        WHERE _wins AND NOT EXISTS (
            SELECT 1 FROM matched m WHERE m.existing_wins AND {_same("m", "w", version)})
        """,
        [report.source_file, run_id, now],
    )
    valid, quarantined = connection.execute(
        "SELECT COUNT(*) FILTER (WHERE reason IS NULL), COUNT(*) FILTER (WHERE reason IS NOT NULL) "
        "FROM checked"
    ).fetchone()
    report.rows_read = raw.rows_read
    report.rows_quarantined = quarantined + len(raw.rejected)
    report.rows_skipped = raw.rows_skipped
    report.rows_duplicate = in_file_duplicates + matched
    report.rows_conflicting = in_file_conflicts + matched_conflicts
    report.rows_loaded = valid - report.rows_duplicate


def _forget(connection, entity: Entity, source_file: str, run_id: str, now: dt.datetime) -> None:
    """Remove what an earlier load of this file left, before it is loaded again or once it is
    gone. Each version the file had won goes to the best row it had beaten (from the file latest
    in name order), so the versions' winners depend on the files present, not on their history."""
    table, key = f"crm.{entity.name}", q(entity.key[0])
    connection.execute(
        f"INSERT INTO ingest.removed_rows SELECT DISTINCT ?, CAST({key} AS VARCHAR), ? "
        f"FROM {table} WHERE _source_file = ?",
        [entity.name, now, source_file],
    )
    outranked, version = _outranked(entity), _version(entity)
    # Only where rows were outranked at all: usually none, and the search scans the table.
    promoting = (
        entity.versioned
        and connection.execute(f"SELECT EXISTS (SELECT 1 FROM {outranked})").fetchone()[0]
    )
    if promoting:
        connection.execute(f"DELETE FROM {outranked} WHERE _source_file = ?", [source_file])
        connection.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE promoted AS
            SELECT o.* FROM {outranked} o JOIN {table} e
                ON e._source_file = ? AND {_same("o", "e", version)}
            QUALIFY ROW_NUMBER() OVER (
                PARTITION BY {", ".join(f"o.{q(c)}" for c in version)}
                ORDER BY o._source_file DESC) = 1
            """,
            [source_file],
        )
    connection.execute(f"DELETE FROM {table} WHERE _source_file = ?", [source_file])
    if promoting:
        # A fresh _loaded_at: to the incremental models, the promoted row is a row loaded now.
        columns = ", ".join(q(c) for c in entity.column_names)
        connection.execute(
            f"INSERT INTO {table} ({_stored_columns(entity)}) "
            f"SELECT {columns}, _source_file, _row_number, ?, ? FROM promoted",
            [run_id, now],
        )
        connection.execute(
            f"DELETE FROM {outranked} o WHERE EXISTS (SELECT 1 FROM promoted p "
            f"WHERE p._source_file = o._source_file AND {_same('p', 'o', version)})"
        )
    connection.execute(
        "DELETE FROM quarantine.rejected_rows WHERE entity = ? AND source_file = ?",
        [entity.name, source_file],
    )
    connection.execute(
        "DELETE FROM ingest.files WHERE entity = ? AND source_file = ?", [entity.name, source_file]
    )


Reader = Callable[[Path], RawFile]


def _read(path: Path, entity: Entity, read: Reader) -> RawFile:
    raw = read(path)
    if raw.table.column_names == [ROW_NUMBER]:  # JSON lines without one readable record
        if not raw.rejected:
            raise UnreadableFile("file holds no records")
        # Every line was rejected on its own: those rejections are the file's whole story, not
        # a missing column. Empty columns let the file take the usual path.
        empty = pa.array([], type=pa.string())
        raw.table = pa.table({**{c: empty for c in entity.required}, ROW_NUMBER: raw.table[0]})
    # A contract column written in another case (`Activity_ID`) is that column: SQL names ignore
    # case anyway, and `with_usable_names` refused two names equal ignoring case.
    spelling = {name.casefold(): name for name in entity.column_names}
    raw.table = raw.table.rename_columns(
        [spelling.get(name.casefold(), name) for name in raw.table.column_names]
    )
    missing = [c for c in entity.required if c not in raw.table.column_names]
    if missing:
        raise UnreadableFile(f"file lacks required column(s): {', '.join(missing)}")
    return raw


STILL_BEING_WRITTEN = "file changed while it was read: still being written, loaded by a later run"


def unknown_columns(entity: Entity, raw: RawFile) -> list[str]:
    """The file's columns that no contract column takes, each with the contract column it nearly
    spells (among those the file lacks), and those the reader left out.

    An export's `raw.table` holds only the canonical columns its mapping makes: the many other
    fields a CRM export carries by design are not reported.
    """
    names = [n for n in raw.table.column_names if n != ROW_NUMBER]
    absent = [c for c in entity.column_names if c not in names]
    unknown = []
    for name in names:
        if name in entity.column_names:
            continue
        # 0.8: `duraton_minutes` and `regardingid` are close (0.97, 0.96); `crm_flavour` is near
        # no activity column (at most 0.5).
        close = difflib.get_close_matches(name.casefold(), absent, n=1, cutoff=0.8)
        unknown.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return [*unknown, *raw.ignored_columns]


def _load_file(
    connection,
    entity: Entity,
    path: Path,
    source_file: str,
    read: Reader,
    run_id,
    now,
    stamp,
    suppressing: bool = False,
) -> FileReport:
    """Load one file in a transaction left open for the caller to record and commit; or, when
    the file no longer has the `stamp` taken before it was fingerprinted, report it waiting and
    leave the warehouse alone."""
    report = FileReport(source_file, "loaded")
    try:
        raw: RawFile | None = _read(path, entity, read)
    except UnreadableFile as error:
        raw, report.status, report.reason = None, "quarantined", str(error)
    else:
        report.unknown_columns = unknown_columns(entity, raw)
    connection.begin()
    _forget(connection, entity, source_file, run_id, now)
    failure = None
    if raw is not None:
        try:
            with _as_views(connection, raw):
                _load_rows(connection, entity, raw, report, run_id, now, suppressing)
        except (duckdb.Error, OSError) as error:
            failure = error
    # After the load, which reads a Parquet file's rows: a truncated read may well have looked
    # unreadable, or failed, and a file gone meanwhile could not be opened.
    if _stamp(path) != stamp:
        connection.rollback()
        return FileReport(source_file, "waiting", reason=STILL_BEING_WRITTEN)
    if isinstance(failure, ENVIRONMENT_ERRORS):
        raise failure  # the machine's problem, not the file's: fail the run, quarantine nothing
    if failure is not None:  # a value DuckDB cannot even hold, e.g. a nested type
        connection.rollback()
        connection.begin()
        _forget(connection, entity, source_file, run_id, now)
        report = FileReport(
            source_file, "quarantined", reason=f"file could not be loaded: {failure}"
        )
    if report.status == "quarantined":
        # Its rows cannot be counted; the file is counted instead (files_quarantined).
        _quarantine(connection, entity, source_file, run_id, now, [(None, report.reason, None)])
    return report


def _file_counts(f: FileReport) -> list:
    return [
        f.status,
        f.rows_read,
        f.rows_loaded,
        f.rows_duplicate,
        f.rows_conflicting,
        f.rows_quarantined,
        f.rows_skipped,
        f.rows_suppressed,
    ]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        return file_stamp(path)
    except FileNotFoundError:  # gone meanwhile: the next run forgets it
        return None


def _parties_checked_again(connection, entity: Entity, run_id: str, now) -> set[str]:
    """Check the loaded and quarantined parties again against the activities as they are now, as a
    fresh load of the landing folder would, whichever night each file arrived on.

    Parties whose activity has gone from every file since they loaded go to the quarantine (their
    file's counts with them); an activity goes only by a removal, which `ingest.removed_rows` logs.
    Returns the files holding parties quarantined for naming no activity whose activity has landed
    since: those load again, as the parties' raw records are the file's own.
    """
    if entity.name != "activity_parties":
        return set()
    connection.begin()
    connection.execute(
        """
        CREATE OR REPLACE TEMP TABLE orphaned_parties AS
        SELECT * FROM crm.activity_parties p
        WHERE activity_id IN (
            SELECT record_id FROM ingest.removed_rows WHERE entity = 'activities')
          AND NOT EXISTS (SELECT 1 FROM crm.activities a WHERE a.activity_id = p.activity_id)
        """
    )
    record = ", ".join(f"{q(c)} := {q(c)}" for c in entity.column_names)
    connection.execute(
        "INSERT INTO quarantine.rejected_rows SELECT 'activity_parties', _source_file, "
        f"_row_number, {_names_no_activity('activity_id')}, "
        f"CAST(TO_JSON(STRUCT_PACK({record})) AS VARCHAR), ?, ? FROM orphaned_parties",
        [run_id, now],
    )
    connection.execute(
        "INSERT INTO ingest.removed_rows SELECT DISTINCT 'activity_parties', activity_id, ? "
        "FROM orphaned_parties",
        [now],
    )
    connection.execute(
        "DELETE FROM crm.activity_parties p WHERE EXISTS (SELECT 1 FROM orphaned_parties o "
        "WHERE o._source_file = p._source_file AND o._row_number = p._row_number)"
    )
    connection.execute(
        """
        UPDATE ingest.files f SET rows_loaded = f.rows_loaded - o.parties,
            rows_quarantined = f.rows_quarantined + o.parties
        FROM (SELECT _source_file, COUNT(*) AS parties FROM orphaned_parties GROUP BY 1) o
        WHERE f.entity = 'activity_parties' AND f.source_file = o._source_file
        """
    )
    connection.commit()
    rows = connection.execute(
        """
        SELECT DISTINCT source_file FROM quarantine.rejected_rows
        WHERE entity = 'activity_parties' AND regexp_extract(
            reason, 'activity_id ''(.*)'' names no activity', 1) IN (
                SELECT activity_id FROM crm.activities)
        """
    ).fetchall()
    return {source_file for (source_file,) in rows}


@contextmanager
def ingest_connection(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for the loads of one step (every entity, every export table): the warehouse
    opened and its tables ensured once, not once per entity or table. Opening the file alone took
    about 0.06 s, and a step loads up to 21 export tables, most of them absent."""
    with connect(warehouse) as connection:
        # The rows carry their file and row number: the order they are written in means nothing,
        # and DuckDB needs less memory when it need not keep it.
        connection.execute("SET preserve_insertion_order = false")
        # Writers leave NaN out of a Parquet column's min and max (pyarrow, pandas), and by
        # default DuckDB then folds `isnan` to false: pandas' missing number would be a bad value.
        connection.execute("SET parquet_can_have_nan = true")
        ensure_warehouse(connection)
        yield connection


def ingest_entity(
    warehouse: Path | duckdb.DuckDBPyConnection,
    landing_dir: Path,
    entity_name: str,
    run_id: str,
    now: dt.datetime | None = None,
    through: dt.date | None = None,
    suppression: Suppression | None = None,
) -> EntityReport:
    """Load every new or changed file of `<landing_dir>/<entity>/` into the warehouse (its file,
    or a connection from `ingest_connection`); with `through`, only the day subfolders up to that
    day (see `scan_landing_folder`)."""
    folder = landing_dir / entity_name

    def read(path: Path) -> RawFile:
        check_landing_place(PurePosixPath(path.relative_to(folder).as_posix()))
        return read_landing_file(path, parquet_in_file=True)

    return ingest_files(
        warehouse,
        entity_name,
        landing_dir,
        entity_name,
        read,
        run_id,
        now,
        through=through,
        suppression=suppression,
    )


def ingest_files(
    warehouse: Path | duckdb.DuckDBPyConnection,
    entity_name: str,
    landing_dir: Path,
    folder: str,
    read: Reader,
    run_id: str,
    now: dt.datetime | None = None,
    depends_on: str = "",
    through: dt.date | None = None,
    suppression: Suppression | None = None,
) -> EntityReport:
    """Bring `crm.<entity>` in line with the files of `<landing_dir>/<folder>/` (named by their
    path inside the landing folder): load the new or changed ones (with `through`, of the day
    subfolders up to that day), and forget those loaded before that are gone.

    `read` turns a file into raw canonical rows. `depends_on` names whatever else the reading
    depends on (a digest): it is part of each file's fingerprint, so a change reloads the files.
    `suppression`: the salt and the hashes of the people erased, whose rows are not loaded.
    """
    entity = ENTITIES[entity_name]
    now = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
    report = EntityReport(entity.name)
    listing = scan_landing_folder(landing_dir / folder, through)

    def name(path: Path) -> str:
        return path.relative_to(landing_dir).as_posix()

    report.files += [FileReport(name(i.path), "ignored", reason=i.reason) for i in listing.ignored]
    present = {name(path) for path in [*listing.files, *listing.later]}
    # One connection for the entity's files (or the step's, given one), one transaction per
    # file. Opening a connection per file cost a checkpoint each time.
    opened = ingest_connection(warehouse) if isinstance(warehouse, Path) else nullcontext(warehouse)
    with opened as connection:
        suppressing = bool(suppression and suppression.hashes)
        if suppressing:
            load_matching(connection, suppression.salt, suppression.hashes)
        known = {
            source_file: (digest, (size, mtime_ns))
            for source_file, digest, size, mtime_ns in connection.execute(
                "SELECT source_file, sha256, file_size, file_mtime_ns FROM ingest.files "
                "WHERE entity = ? AND starts_with(source_file, ?)",
                [entity.name, folder + "/"],
            ).fetchall()
        }
        for source_file in sorted(set(known) - present):
            connection.begin()
            _forget(connection, entity, source_file, run_id, now)
            connection.commit()
            report.files.append(
                FileReport(source_file, "removed", reason="file is no longer in the landing folder")
            )
        recheck = _parties_checked_again(connection, entity, run_id, now)
        for path in listing.files:
            source_file = name(path)
            stamp = _stamp(path)
            if stamp is None:
                report.files.append(FileReport(source_file, "waiting", reason=STILL_BEING_WRITTEN))
                continue
            digest = fingerprint(path)
            if depends_on:
                digest = hashlib.sha256(f"{digest} {depends_on}".encode()).hexdigest()
            if (
                source_file in known
                and known[source_file][0] == digest
                and (source_file not in recheck)
            ):
                report.files.append(FileReport(source_file, "unchanged"))
                if known[source_file][1] != stamp:  # touched, or copied anew: same content
                    connection.execute(
                        "UPDATE ingest.files SET file_size = ?, file_mtime_ns = ? "
                        "WHERE entity = ? AND source_file = ?",
                        [*stamp, entity.name, source_file],
                    )
                continue
            file_report = _load_file(
                connection, entity, path, source_file, read, run_id, now, stamp, suppressing
            )
            report.files.append(file_report)
            if file_report.status == "waiting":
                continue
            connection.execute(
                "INSERT INTO ingest.files (entity, source_file, sha256, status, rows_read, "
                "rows_loaded, rows_duplicate, rows_conflicting, rows_quarantined, rows_skipped, "
                "rows_suppressed, run_id, ingested_at, file_size, file_mtime_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [entity.name, source_file, digest, *_file_counts(file_report), run_id, now, *stamp],
            )
            connection.commit()
        (report.versions_in_table,) = connection.execute(
            f"SELECT COUNT(*) FROM crm.{entity.name}"
        ).fetchone()
    return report
