"""The DuckDB file BI readers open (`marts.duckdb`), staged beside the other targets' sources.

The file is written under a temporary name in an older storage version that DuckDB 1.2 and later
read, then `os.replace`d into place by the publication (open readers keep the old file). Staged,
it is attached as `published`: the Parquet and PostgreSQL targets copy the marts from it. A mart
whose builds record what they wrote (`writes`: the health history) is not copied whole when the
file holds the rows of the build that its latest build kept: the file is copied and only the rows
the latest build wrote are replaced in the copy. The rows it replaces still take room in the file
(DuckDB reclaims little of it): it is written afresh on Sundays' as-of dates
(COPIED_WHOLE_ON), which bounds that growth to a week's nights.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import duckdb

from relanalytics_pipeline.defs.serve.publish.publication import (
    RECORD,
    RECORD_COLUMNS,
    SCHEMA,
    Publication,
    PublicationError,
)
from relanalytics_pipeline.warehouse import (
    LOCK_WAIT_SECONDS,
    latest_writes,
    rows_written,
    table_exists,
    waiting_for_lock,
)

logger = logging.getLogger(__name__)

DUCKDB_FILE = "marts.duckdb"
# DuckDB 2.0 writes storage version 69 by default, which no DuckDB 1.x opens; files in v1.2.0's
# format (storage version 65) open in DuckDB 1.2 and every later release.
STORAGE_VERSION = "v1.2.0"
# The weekday (ISO, 7 = Sunday) of the as-of dates whose publication copies every mart whole
# into a fresh DuckDB file, reclaiming the room of the rows that updates in place replaced.
COPIED_WHOLE_ON = 7


def stage(
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
        # Views too: the similar-deals marts are views over the model's table.
        found = {
            name
            for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_catalog = 'warehouse' AND table_schema = ?",
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


def add_record(connection: duckdb.DuckDBPyConnection, publication: Publication) -> None:
    """The publication's record into the staged file's `_publication`."""
    connection.executemany(
        f"INSERT INTO published.main.{RECORD} VALUES (?, ?, ?, ?, ?, ?, ?)", publication.record()
    )


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
    # Three deletes, each a plain join or scan: one NOT EXISTS with the day's inequality cannot
    # use a hash join and is many times slower on a large history (benchmarks/RESULTS.md).
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
        "AND schema_name = ? AND comment IS NOT NULL UNION ALL "
        "SELECT view_name, comment FROM duckdb_views() WHERE database_name = 'warehouse' "
        "AND schema_name = ? AND comment IS NOT NULL",
        [SCHEMA, SCHEMA],
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
