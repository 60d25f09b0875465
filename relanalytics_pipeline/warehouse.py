"""Short-lived DuckDB connections to the warehouse file.

DuckDB allows one writing process per file and fails at once with "Could not set lock on file"
otherwise. The pipeline serialises its writers (one Dagster pool, WAREHOUSE_POOL below); this module
makes sure no writer keeps the file locked longer than its block, even when the block raises, and
waits a while for anyone else holding the file (someone's DuckDB CLI) before failing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from relanalytics_pipeline.settings import read_memory_limit

SCHEMAS = ("crm", "ingest", "quarantine")
T = TypeVar("T")

# The tables a Python step writes after dbt has run and dbt's views read (dbt sources). The
# warehouse owns their shape and creates them empty with its other tables (the ingest's
# ensure_warehouse), so that dbt finds them before their step's first run, and no earlier stage
# depends on the step that fills them.

# The similar-deals model's neighbours (defs/learn/similar_deals.py), read by the marts
# similar_won_deals and won_deal_benchmarks, views whose dbt contracts check the columns. The table
# itself refuses a repeated pair or rank, a similarity outside 0..1 or an unknown method: the
# learned model's, or plain distances where it cannot learn.
NEIGHBOURS_TABLE = "learn.won_deal_neighbours"
METHOD_MODEL = "model"
METHOD_PLAIN = "plain_distance"
NEIGHBOURS_COLUMNS = f"""
    opportunity_id VARCHAR NOT NULL,
    similar_opportunity_id VARCHAR NOT NULL,
    rank INTEGER NOT NULL,
    similarity DOUBLE NOT NULL CHECK (similarity BETWEEN 0 AND 1),
    reasons VARCHAR NOT NULL,
    method VARCHAR NOT NULL CHECK (method IN ('{METHOD_MODEL}', '{METHOD_PLAIN}')),
    PRIMARY KEY (opportunity_id, rank),
    UNIQUE (opportunity_id, similar_opportunity_id)
"""
# The same columns in Spark, whose Parquet tables hold no constraints: the misplaced-rows check and
# the marts' dbt contracts remain there.
NEIGHBOURS_SPARK_SCHEMA = (
    "opportunity_id string, similar_opportunity_id string, rank int, similarity double, "
    "reasons string, method string"
)


def ensure_tables_written_after_dbt(connection: duckdb.DuckDBPyConnection) -> None:
    """Each table written after dbt, empty, where there is none yet."""
    connection.execute("CREATE SCHEMA IF NOT EXISTS learn")
    connection.execute(f"CREATE TABLE IF NOT EXISTS {NEIGHBOURS_TABLE} ({NEIGHBOURS_COLUMNS})")


# Every asset that writes the warehouse joins this Dagster pool (limit 1 in the project's
# dagster.yaml), so that one step at a time holds the file across runs; within a run the steps run
# one after the other in the run's process (the in-process executor), even on an instance without
# pool limits.
WAREHOUSE_POOL = "duckdb_warehouse"


# How long a step waits for another process (someone's DuckDB CLI, a notebook) to let go of the
# warehouse before it fails: long enough for a query someone runs by hand, short enough that a
# forgotten session fails the night within minutes, naming it. The first retry comes after
# FIRST_RETRY_SECONDS, each next one after twice as long, at most MAX_RETRY_SECONDS apart.
LOCK_WAIT_SECONDS = 120.0
FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 10.0
# DuckDB's lock error ends "Conflicting lock is held in <program> (PID <n>)".
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in .*\(PID (\d+)\)")


class WarehouseLockedError(RuntimeError):
    """Another process kept the warehouse file locked for longer than the step waits."""


def q(identifier: str) -> str:
    """An identifier quoted for DuckDB SQL, whatever characters it holds."""
    return '"' + identifier.replace('"', '""') + '"'


@contextmanager
def connect(
    path: Path, read_only: bool = False, wait_seconds: float = LOCK_WAIT_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the DuckDB file, closed when the block ends (raising or not). While
    another process holds the file's lock, retries with back-off for up to `wait_seconds`, then
    raises WarehouseLockedError naming that process."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    connection = _open_waiting(path, read_only, wait_seconds)
    try:
        # Timestamps without an offset are UTC (raw contract), whatever the machine's zone. Set
        # after connecting: as a connect option it needs ICU loaded before it is.
        connection.execute("SET TimeZone = 'UTC'")
        yield connection
    finally:
        connection.close()


def duckdb_config() -> dict[str, str | bool]:
    """What every DuckDB connection of the Python steps is opened with, as dbt's profile opens
    its own (dbt_project/profiles.yml)."""
    return {
        # Only built-in extensions exist offline; fail at once instead of a download.
        "autoinstall_known_extensions": False,
        # The same limit as dbt's, read and checked in settings.py: DuckDB's own default, 80% of
        # the RAM, let a step's DuckDB take far more than half the machine.
        "memory_limit": read_memory_limit(),
    }


def _open_waiting(path: Path, read_only: bool, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    return waiting_for_lock(
        lambda: duckdb.connect(str(path), read_only=read_only, config=duckdb_config()),
        path,
        wait_seconds,
    )


def waiting_for_lock(open_file: Callable[[], T], path: Path, wait_seconds: float) -> T:
    """`open_file()` (a connect, an ATTACH of `path`), tried again with back-off while another
    process holds the file's lock, for up to `wait_seconds`; then WarehouseLockedError."""
    deadline = time.monotonic() + wait_seconds
    pause = FIRST_RETRY_SECONDS
    while True:
        try:
            return open_file()
        except duckdb.IOException as error:
            holder = _LOCK_HOLDER.search(str(error))
            if holder is None:
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarehouseLockedError(
                    f"The warehouse {path} is locked by another process, "
                    f"{_describe(int(holder[1]))}, still after {wait_seconds:g} s: close its "
                    "connection to the file (BI tools and readers use the published copy, see "
                    "docs/serving-bi.md)."
                ) from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, MAX_RETRY_SECONDS)


def _describe(pid: int) -> str:
    """`PID 4242 (duckdb)`: the process name from /proc where it can be read."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return f"PID {pid}"
    return f"PID {pid} ({name})"


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
