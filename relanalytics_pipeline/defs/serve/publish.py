"""Publication of the BI marts where BI tools read them, never the working warehouse.

One publication copies every mart once, from one read-only snapshot of the warehouse, into up to
three targets, and swaps each in atomically, so a reader sees either the previous publication or
this one, whole:

- a DuckDB file (`marts.duckdb`), written under a temporary name in an older storage version that
  DuckDB 1.2 and later read, then `os.replace`d into place (open readers keep the old file). A
  mart whose builds record what they wrote (`writes`: the health history) is not copied whole
  when the file holds the rows of the build that its latest build kept: the file is copied and
  only the rows the latest build wrote are replaced in the copy. The rows it replaces still take
  room in the file (at 10M activities one night grew it by 12%): it is written afresh on
  Sundays' as-of dates (COPIED_WHOLE_ON), which bounds that growth to a week's nights;
- Parquet, one folder per mart, under `parquet/versions/<version>/`, behind the symlink
  `parquet/current`, itself replaced atomically; the previous version stays for readers in flight;
- PostgreSQL, when a URL is given: a fresh staging schema loaded with COPY, then swapped in
  one transaction that waits on BI queries' locks at most `lock_timeout`, retried with back-off.

Every target carries the same record, `_publication` (a table beside the marts; a JSON file in the
Parquet version folder): version, run id, as-of date, publication time and rows per mart, so a
reader can check that it sees one consistent publication.

The file targets are swapped only after PostgreSQL's swap succeeded (or when there is none): a
publication either lands in every target or in none.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from relanalytics_pipeline.conninfo import redact
from relanalytics_pipeline.permissions import folder_mode, restrict
from relanalytics_pipeline.settings import DEFAULT_PUBLISH_FILE_MODE
from relanalytics_pipeline.warehouse import (
    LOCK_WAIT_SECONDS,
    connect,
    latest_writes,
    rows_written,
    table_exists,
    waiting_for_lock,
)

logger = logging.getLogger(__name__)

# The warehouse's schema of the marts, and the published PostgreSQL schema. In the published
# DuckDB file the marts are in its main schema: opened as `marts.duckdb` its catalog is `marts`,
# so `marts.relationship_kpis` reads the same there as in the warehouse.
SCHEMA = "marts"
RECORD = "_publication"
DUCKDB_FILE = "marts.duckdb"
PARQUET_DIR = "parquet"
POINTER = "current"
# Work in progress: the DuckDB file and PostgreSQL's CSV files before they are published.
STAGING_DIR = ".staging"
# DuckDB 2.0 writes storage version 69 by default, which no DuckDB 1.x opens; files in v1.2.0's
# format (storage version 65) open in DuckDB 1.2 and every later release.
STORAGE_VERSION = "v1.2.0"
# The Parquet versions kept: the one just published and the one before it, which readers that
# resolved the pointer before the swap may still be reading.
KEPT_VERSIONS = 2
# The weekday (ISO, 7 = Sunday) of the as-of dates whose publication copies every mart whole
# into a fresh DuckDB file, reclaiming the room of the rows that updates in place replaced.
COPIED_WHOLE_ON = 7


class PublicationError(RuntimeError):
    """A publication that could not land; every target is left as it was."""


@dataclass(frozen=True)
class Publication:
    """What one publication published: the same record lands in every target."""

    version: str
    run_id: str
    as_of_date: dt.date
    published_at: dt.datetime
    rows: dict[str, int] = field(default_factory=dict)
    # The dbt build (invocation id) whose rows a mart with `writes` holds.
    builds: dict[str, str] = field(default_factory=dict)
    # The marts of the DuckDB file updated in a copy of the previous one rather than copied whole.
    updated: frozenset[str] = frozenset()

    def record(self) -> list[tuple]:
        """Rows of `_publication`: one per mart."""
        return [
            (self.version, self.run_id, self.as_of_date, self.published_at, mart, rows,
             self.builds.get(mart))
            for mart, rows in self.rows.items()
        ]  # fmt: skip

    def as_json(self) -> dict:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "as_of_date": self.as_of_date.isoformat(),
            "published_at": self.published_at.isoformat(),
            "rows": self.rows,
            "builds": self.builds,
        }


RECORD_COLUMNS = (
    "version varchar, run_id varchar, as_of_date date, published_at timestamp, "
    "mart varchar, row_count bigint, build_id varchar"
)


@dataclass(frozen=True)
class PostgresTarget:
    """Where and how to publish into PostgreSQL. The swap waits at most `lock_timeout_seconds`
    for each attempt's locks and tries `attempts` times, sleeping `backoff_seconds`, then twice
    that, and so on, in between."""

    url: str = field(repr=False)  # it may hold a password
    schema: str = SCHEMA
    lock_timeout_seconds: float = 5.0
    attempts: int = 5
    backoff_seconds: float = 1.0


def new_version(published_at: dt.datetime, run_id: str) -> str:
    """Sortable by time, unique per run: `20261127T180102123456Z-1a2b3c4d`."""
    return f"{published_at:%Y%m%dT%H%M%S%fZ}-{run_id[:8]}"


def publish(
    warehouse: Path,
    marts: list[str],
    folder: Path,
    run_id: str,
    as_of_date: dt.date,
    postgres: PostgresTarget | None = None,
    writes: dict[str, str] | None = None,
    file_mode: int = DEFAULT_PUBLISH_FILE_MODE,
) -> Publication:
    """Publish the warehouse's `marts` to `folder` (DuckDB file and Parquet) and to PostgreSQL.
    `writes` names, for the marts whose builds record the rows they wrote, the warehouse table
    (`schema.table`) that records them (warehouse.py, `rows_written`). The published files
    get `file_mode`, their folders the matching folder mode (permissions.py), before they
    are swapped in.

    Reads the warehouse read-only, once; the caller must hold the warehouse's writer slot (DuckDB
    refuses a writer while anyone else has the file open). Raises PublicationError, leaving every
    target as it was, when a mart is missing or PostgreSQL stays locked.
    """
    published_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    version = new_version(published_at, run_id)
    # What a publication killed half-way left behind is never read: start afresh.
    staging = folder / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    staged_parquet = folder / PARQUET_DIR / "versions" / version
    staged_parquet.parent.mkdir(parents=True, exist_ok=True)
    # The folders first, so that nothing written inside them is ever readable by others.
    for private in (staging, folder / PARQUET_DIR, staged_parquet.parent):
        os.chmod(private, folder_mode(file_mode))
    staged_file = staging / DUCKDB_FILE
    try:
        with connect(Path(":memory:")) as connection:
            # A mart's rows have no order: writing them in any order lets DuckDB write the
            # Parquet files on every core (the 61M-row history at 10M activities: 23 -> 13 s).
            connection.execute("SET preserve_insertion_order = false")
            rows, builds, updated = _stage_duckdb(
                connection, warehouse, marts, staged_file, folder / DUCKDB_FILE, writes or {},
                update=as_of_date.isoweekday() != COPIED_WHOLE_ON,
            )  # fmt: skip
            publication = Publication(
                version, run_id, as_of_date, published_at, rows, builds, updated
            )
            connection.executemany(
                f"INSERT INTO published.main.{RECORD} VALUES (?, ?, ?, ?, ?, ?, ?)",
                publication.record(),
            )
            _stage_parquet(connection, marts, staged_parquet, publication)
            if postgres is not None:
                _publish_postgres(connection, [*marts, RECORD], postgres, staging)
            connection.execute("DETACH published")
        restrict(staged_file, file_mode)
        restrict(staged_parquet, file_mode)
        os.replace(staged_file, folder / DUCKDB_FILE)
    except BaseException:
        shutil.rmtree(staged_parquet, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _point_to(folder / PARQUET_DIR, version)
    return publication


# --- DuckDB ---------------------------------------------------------------------------------


def _stage_duckdb(
    connection: duckdb.DuckDBPyConnection,
    warehouse: Path,
    marts: list[str],
    staged: Path,
    published: Path,
    writes: dict[str, str],
    update: bool,
) -> tuple[dict[str, int], dict[str, str], frozenset[str]]:
    """Stage the marts, their comments and an empty record table in `staged`, attached as
    `published`: a fresh file, or (if `update`) a copy of the `published` one when it holds the
    rows that a mart with `writes` kept (then only what that mart's latest build wrote is
    replaced). The warehouse is attached read-only only while the marts are copied. Returns the
    rows per mart, the build of each mart with `writes` and the marts updated in the copy."""
    waiting_for_lock(
        lambda: connection.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(warehouse)]),
        warehouse,
        LOCK_WAIT_SECONDS,
    )
    try:
        found = {
            name
            for (name,) in connection.execute(
                "SELECT table_name FROM duckdb_tables() "
                "WHERE database_name = 'warehouse' AND schema_name = ?",
                [SCHEMA],
            ).fetchall()
        }
        missing = sorted(set(marts) - found)
        if missing:
            raise PublicationError(
                f"Nothing published: {', '.join(missing)} not in schema {SCHEMA} of {warehouse} "
                "(build the marts with dbt first)."
            )
        latest = {mart: latest_writes(connection, f"warehouse.{table}")
                  for mart, table in writes.items() if mart in marts}  # fmt: skip
        builds = {mart: pair for mart, pair in latest.items() if pair is not None}
        updatable = _updatable(connection, published, builds) if update else set()
        if updatable:
            shutil.copyfile(published, staged)
            connection.execute("ATTACH ? AS published", [str(staged)])
            for (table,) in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'published' "
                "AND schema_name = 'main'"
            ).fetchall():
                if table not in updatable:
                    connection.execute(f"DROP TABLE published.main.{_identifier(table)}")
        else:
            connection.execute(
                f"ATTACH ? AS published (STORAGE_VERSION '{STORAGE_VERSION}')", [str(staged)]
            )
        rows, updated = {}, set()
        for mart in marts:
            if mart in updatable and _replace_written(connection, mart, writes[mart]):
                updated.add(mart)
            else:
                connection.execute(
                    f"CREATE OR REPLACE TABLE published.main.{mart} AS "
                    f"FROM warehouse.{SCHEMA}.{mart}"
                )
            (rows[mart],) = connection.execute(
                f"SELECT count(*) FROM published.main.{mart}"
            ).fetchone()
        _copy_comments(connection, marts)
        connection.execute(f"CREATE TABLE published.main.{RECORD} ({RECORD_COLUMNS})")
        connection.execute(
            f"COMMENT ON TABLE published.main.{RECORD} IS 'One row per mart of this "
            "publication: its version, run, as-of date, time (UTC), the mart''s rows and, for "
            "a mart built in part each night, the dbt build whose rows it holds.'"
        )
    finally:
        connection.execute("DETACH DATABASE IF EXISTS warehouse")
    return rows, {mart: build for mart, (build, _) in builds.items()}, frozenset(updated)


def _updatable(
    connection: duckdb.DuckDBPyConnection, published: Path, builds: dict[str, tuple]
) -> set[str]:
    """The marts whose published rows are those of the build their latest build kept, with the
    same columns as in the warehouse, in a file of the published storage version."""
    kept = {mart for mart, (_, previous) in builds.items() if previous is not None}
    if not kept or not published.exists() or published.with_name(published.name + ".wal").exists():
        return set()
    connection.execute("ATTACH ? AS previous (READ_ONLY)", [str(published)])
    try:
        (storage,) = connection.execute(
            "SELECT tags['storage_version'] FROM duckdb_databases() "
            "WHERE database_name = 'previous'"
        ).fetchone()
        if not (storage or "").startswith(STORAGE_VERSION):
            return set()
        if not table_exists(connection, f"previous.main.{RECORD}"):
            return set()
        published_builds = dict(
            connection.execute(
                f"SELECT mart, build_id FROM previous.main.{RECORD} WHERE build_id IS NOT NULL"
            ).fetchall()
        )

        def columns(database: str, schema: str, table: str) -> list[tuple]:
            return connection.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
                "AND schema_name = ? AND table_name = ? ORDER BY column_index",
                [database, schema, table],
            ).fetchall()

        return {
            mart
            for mart in kept
            if published_builds.get(mart) == builds[mart][1]
            and columns("previous", "main", mart) == columns("warehouse", SCHEMA, mart)
        }
    except duckdb.Error as error:
        logger.warning("The published file cannot be updated (%s): copied whole", error)
        return set()
    finally:
        connection.execute("DETACH DATABASE IF EXISTS previous")


def _replace_written(connection: duckdb.DuckDBPyConnection, mart: str, writes: str) -> bool:
    """In the staged copy, the rows of `mart` the latest build did not keep (those it wrote, of
    records gone, of days gone from its window) replaced by those it wrote. False, leaving the
    mart to be copied whole, if the row counts then disagree with the warehouse's (a cheap
    sanity check)."""
    published, built = f"published.main.{mart}", f"warehouse.{SCHEMA}.{mart}"
    written = f"warehouse.{writes}"
    # Three deletes, each a plain join or scan: as one NOT EXISTS with the day's inequality, the
    # same delete took 18 s instead of 1.6 s on the 60M-row history of 10M activities.
    same_record = "p.record_type = w.record_type AND p.record_id = w.record_id"
    connection.execute(
        f"DELETE FROM {published} AS p USING {written} AS w "
        f"WHERE {same_record} AND p.as_of_date >= w.written_from"
    )
    connection.execute(
        f"DELETE FROM {published} WHERE as_of_date < (SELECT min(as_of_date) FROM {built})"
    )
    connection.execute(
        f"DELETE FROM {published} AS p WHERE NOT EXISTS "
        f"(SELECT 1 FROM {written} AS w WHERE {same_record})"
    )
    connection.execute(f"INSERT INTO {published} {rows_written(built, written)}")
    (rows,) = connection.execute(f"SELECT count(*) FROM {published}").fetchone()
    (expected,) = connection.execute(f"SELECT count(*) FROM {built}").fetchone()
    if rows != expected:
        logger.warning(
            "%s: %d rows after replacing what the latest build wrote, %d in the warehouse: "
            "copied whole", mart, rows, expected,
        )  # fmt: skip
    return rows == expected


def _copy_comments(connection: duckdb.DuckDBPyConnection, marts: list[str]) -> None:
    """dbt's descriptions (persist_docs) travel with the marts, for BI tools that show them."""
    tables = connection.execute(
        "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = 'warehouse' "
        "AND schema_name = ? AND comment IS NOT NULL",
        [SCHEMA],
    ).fetchall()
    columns = connection.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() "
        "WHERE database_name = 'warehouse' AND schema_name = ? AND comment IS NOT NULL",
        [SCHEMA],
    ).fetchall()
    for table, comment in tables:
        if table in marts:
            connection.execute(f"COMMENT ON TABLE published.main.{table} IS {_literal(comment)}")
    for table, column, comment in columns:
        if table in marts:
            connection.execute(
                f'COMMENT ON COLUMN published.main.{table}."{column}" IS {_literal(comment)}'
            )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    """A name read from a file (not one of ours) as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


# --- Parquet --------------------------------------------------------------------------------


def _stage_parquet(
    connection: duckdb.DuckDBPyConnection,
    marts: list[str],
    staged: Path,
    publication: Publication,
) -> None:
    """`<staged>/<mart>/data.parquet` for each mart, and `_publication.json`."""
    for mart in marts:
        (staged / mart).mkdir(parents=True)
        connection.execute(
            f"COPY published.main.{mart} TO ? (FORMAT parquet, COMPRESSION zstd)",
            [str(staged / mart / "data.parquet")],
        )
    (staged / f"{RECORD}.json").write_text(json.dumps(publication.as_json(), indent=2) + "\n")


def _point_to(parquet: Path, version: str) -> None:
    """Swap `current` to the new version (a relative symlink replaced with os.replace), then
    remove every version but the new one and the one `current` pointed to before."""
    pointer = parquet / POINTER
    previous = os.readlink(pointer) if pointer.is_symlink() else None
    staged_pointer = parquet / f".{POINTER}.{version}"
    staged_pointer.unlink(missing_ok=True)
    staged_pointer.symlink_to(Path("versions") / version, target_is_directory=True)
    os.replace(staged_pointer, pointer)
    kept = {version} | ({Path(previous).name} if previous else set())
    for old in (parquet / "versions").iterdir():
        if old.name not in kept:
            shutil.rmtree(old, ignore_errors=True)


# --- PostgreSQL -----------------------------------------------------------------------------

_POSTGRES_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric(39, 0)",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20, 0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "UUID": "uuid",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL type holding exactly the values of a DuckDB column type."""
    if decimal := _DECIMAL.fullmatch(duckdb_type):
        return f"numeric({decimal[1]}, {decimal[2]})"
    if duckdb_type in _POSTGRES_TYPES:
        return _POSTGRES_TYPES[duckdb_type]
    if duckdb_type.endswith("[]") and not duckdb_type.endswith("[][]"):
        # One-dimensional lists only: they travel as PostgreSQL array literals (see _select).
        return postgres_type(duckdb_type[:-2]) + "[]"
    raise PublicationError(
        f"No PostgreSQL type for the DuckDB type {duckdb_type}: map it in defs/serve/publish.py "
        "before publishing such a column."
    )


def _select(column: str, duckdb_type: str) -> str:
    """The column as COPY's CSV must spell it for PostgreSQL: lists as array literals
    (`{"a","b"}`, NULL elements unquoted), everything else as DuckDB writes it."""
    quoted = f'"{column}"'
    if not duckdb_type.endswith("[]"):
        return quoted
    element = (
        "CASE WHEN e IS NULL THEN 'NULL' ELSE '\"' || "
        "replace(replace(e::varchar, '\\', '\\\\'), '\"', '\\\"') || '\"' END"
    )
    return (
        f"CASE WHEN {quoted} IS NULL THEN NULL ELSE "
        f"'{{' || array_to_string(list_transform({quoted}, lambda e: {element}), ',') || '}}' END "
        f"AS {quoted}"
    )


def _publish_postgres(
    connection: duckdb.DuckDBPyConnection, tables: list[str], target: PostgresTarget, scratch: Path
) -> None:
    """Load every table into a fresh staging schema, then swap it in."""
    import psycopg

    staging = f"{target.schema}__staging"
    try:
        postgres = psycopg.connect(target.url, application_name="relanalytics-publish")
    except psycopg.Error as error:
        # libpq's message may echo the URL, password included: masked, and the original error
        # not chained, since Dagster stores the whole chain in the run's history.
        reason = redact(str(error).strip(), target.url)
        raise PublicationError(
            f"PostgreSQL: cannot connect ({reason}). Nothing was published."
        ) from None
    with postgres:
        _load_staging(connection, postgres, tables, staging, scratch)
        try:
            _swap(postgres, staging, target)
        except BaseException:
            with suppress(psycopg.Error):
                postgres.rollback()
                postgres.execute(_sql("DROP SCHEMA IF EXISTS {} CASCADE", staging))
                postgres.commit()
            raise


def _sql(template: str, *names: str):
    from psycopg import sql

    return sql.SQL(template).format(*(sql.Identifier(name) for name in names))


def _load_staging(connection, postgres, tables: list[str], staging: str, scratch: Path) -> None:
    from psycopg import sql

    columns = connection.execute(
        "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
        "WHERE database_name = 'published' AND schema_name = 'main' "
        "ORDER BY table_name, column_index",
    ).fetchall()
    comments = dict(
        connection.execute(
            "SELECT table_name, comment FROM duckdb_tables() "
            "WHERE database_name = 'published' AND schema_name = 'main'",
        ).fetchall()
    )
    with postgres.transaction():
        postgres.execute(_sql("DROP SCHEMA IF EXISTS {} CASCADE", staging))
        postgres.execute(_sql("CREATE SCHEMA {}", staging))
        for table in tables:
            described = [(c, t, note) for name, c, t, note in columns if name == table]
            definition = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(postgres_type(t)))
                for c, t, _ in described
            )
            postgres.execute(
                sql.SQL("CREATE TABLE {}.{} ({})").format(
                    sql.Identifier(staging), sql.Identifier(table), definition
                )
            )
            csv = scratch / f"{table}.csv"
            selected = ", ".join(_select(c, t) for c, t, _ in described)
            connection.execute(
                f"COPY (SELECT {selected} FROM published.main.{table}) TO ? "
                "(FORMAT csv, HEADER false)",
                [str(csv)],
            )
            copy_sql = sql.SQL("COPY {}.{} FROM STDIN (FORMAT csv)").format(
                sql.Identifier(staging), sql.Identifier(table)
            )
            with postgres.cursor().copy(copy_sql) as copy, csv.open("rb") as file:
                while chunk := file.read(1 << 20):
                    copy.write(chunk)
            csv.unlink()
            if comments.get(table):
                postgres.execute(
                    sql.SQL("COMMENT ON TABLE {}.{} IS {}").format(
                        sql.Identifier(staging), sql.Identifier(table), sql.Literal(comments[table])
                    )
                )
            for column, _, note in described:
                if note:
                    postgres.execute(
                        sql.SQL("COMMENT ON COLUMN {}.{}.{} IS {}").format(
                            sql.Identifier(staging),
                            sql.Identifier(table),
                            sql.Identifier(column),
                            sql.Literal(note),
                        )
                    )


def _swap(postgres, staging: str, target: PostgresTarget) -> None:
    """In one transaction: lock the published tables (waiting at most lock_timeout for BI
    queries to let go), drop the published schema and rename the staging schema in its place.
    Locked out, roll back, sleep and try again; after the last attempt raise PublicationError."""
    from psycopg import errors, sql

    timeout_ms = max(1, round(target.lock_timeout_seconds * 1000))
    for attempt in range(1, target.attempts + 1):
        try:
            with postgres.transaction():
                postgres.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(f"{timeout_ms}ms"))
                published = [
                    name
                    for (name,) in postgres.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = %s", [target.schema]
                    ).fetchall()
                ]
                if published:
                    postgres.execute(
                        sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                            sql.SQL(", ").join(
                                sql.Identifier(target.schema, name) for name in published
                            )
                        )
                    )
                postgres.execute(_sql("DROP SCHEMA IF EXISTS {} CASCADE", target.schema))
                postgres.execute(_sql("ALTER SCHEMA {} RENAME TO {}", staging, target.schema))
            return
        except (errors.LockNotAvailable, errors.DeadlockDetected) as error:
            last = error
            logger.warning(
                "PostgreSQL swap attempt %d of %d locked out: %s",
                attempt,
                target.attempts,
                str(error).strip(),
            )
            if attempt < target.attempts:
                time.sleep(target.backoff_seconds * 2 ** (attempt - 1))
    holders = _lock_holders(postgres, target.schema)
    raise PublicationError(
        f"PostgreSQL: gave up swapping schema {target.schema!r} after {target.attempts} attempts "
        f"of {target.lock_timeout_seconds:g} s: a query kept a lock on its tables "
        f"({'; '.join(holders) or 'holder already gone'}). Last error: {str(last).strip()}. "
        "Nothing was published: the schema, the DuckDB file and the Parquet pointer are as before."
    ) from last


def _lock_holders(postgres, schema: str) -> list[str]:
    """Who holds locks on the published tables, for the error message."""
    rows = postgres.execute(
        "SELECT DISTINCT a.pid, a.usename, a.application_name, a.state, left(a.query, 120) "
        "FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE n.nspname = %s AND l.granted AND a.pid <> pg_backend_pid()",
        [schema],
    ).fetchall()
    postgres.rollback()
    return [
        f"pid {pid} user {user} application {app or '-'} {state}: {query!r}"
        for pid, user, app, state, query in rows
    ]
