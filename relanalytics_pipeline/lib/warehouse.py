"""Short-lived DuckDB connections to the warehouse file.

DuckDB allows one writing process per file and fails at once with "Could not set lock on file"
otherwise. The pipeline serialises its writers (one Dagster pool, see `defs/pools.py`); this module
makes sure no writer keeps the file locked longer than its block, even when the block raises.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

SCHEMAS = ("crm", "ingest", "quarantine")

# Every asset that writes the warehouse joins this Dagster pool (limit 1 in the project's
# dagster.yaml), so that one step at a time holds the file across runs; within a run the steps run
# one after the other in the run's process (the in-process executor), even on an instance without
# pool limits.
WAREHOUSE_POOL = "duckdb_warehouse"


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    connection = _open(path, read_only)
    try:
        # Timestamps without an offset are UTC (raw contract), whatever the machine's zone. Set
        # after connecting: as a connect option it needs ICU loaded before it is.
        connection.execute("SET TimeZone = 'UTC'")
        yield connection
    finally:
        connection.close()


# A writer waits this long, in doubling steps, for readers that hold the file briefly (the landing
# sensor reads `ingest.files` for a few milliseconds every 5 minutes); a run's own writers are
# serialised by the pool and never wait here.
WRITER_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    def attempt() -> duckdb.DuckDBPyConnection:
        # Only built-in extensions exist offline; fail at once instead of trying a download.
        config = {"autoinstall_known_extensions": False}
        return duckdb.connect(str(path), read_only=read_only, config=config)

    for wait in () if read_only else WRITER_WAITS:
        try:
            return attempt()
        except duckdb.IOException as error:
            if "Could not set lock" not in str(error):
                raise
        time.sleep(wait)
    return attempt()


def rows_written(history: str, writes: str, columns: str = "t.*", where: str = "true") -> str:
    """The query of the rows of `history` (record_type, record_id, as_of_date, ...) that its
    latest build wrote: each record's days from the `written_from` its table `writes` records
    (dbt_project/macros/health.sql). Aliases: the history `t`, the writes `w`."""
    return (
        f"SELECT {columns} FROM {history} AS t INNER JOIN {writes} AS w "
        "ON t.record_type = w.record_type AND t.record_id = w.record_id "
        f"WHERE t.as_of_date >= w.written_from AND ({where})"
    )


def table_exists(connection: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether `schema.table` (in any attached database) or `database.schema.table` exists."""
    *database, schema, name = table.split(".")
    database = database[0] if database else None
    return connection.execute(
        "SELECT count(*) > 0 FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
        "AND (? IS NULL OR database_name = ?)",
        [schema, name, database, database],
    ).fetchone()[0]


def latest_writes(
    connection: duckdb.DuckDBPyConnection, writes: str
) -> tuple[str, str | None] | None:
    """The latest build recorded in the table `writes` (see rows_written) and the build whose rows
    it kept (None when it kept none), or None when there is no such table."""
    if not table_exists(connection, writes):
        return None
    return connection.execute(
        f"SELECT max(build_id), max(previous_build_id) FROM {writes}"
    ).fetchone()
