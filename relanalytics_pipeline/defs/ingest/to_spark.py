"""The hand-off to Spark (RELANALYTICS_ENGINE=spark): tables the Python steps write in DuckDB,
copied as Parquet into the Spark warehouse and registered under the same names.

The ingest keeps its one definition of the raw contract (typing, quarantine reasons, row
accounting, versions, reloads) in DuckDB: with Spark, its `crm` tables, and the other tables dbt
reads but Python writes (`ingest.removed_rows`, the privacy exclusions, the similar-deals
neighbours before the model's first run), are then written as canonical Parquet: DuckDB writes
the files, without a JVM and without funnelling the rows through Python, and Spark only registers
them (a metadata operation). Each hand-off writes a new folder per table,
`<spark warehouse>/<schema>.db/<table>/<version>/`, switches the table to it and removes the
older ones, so that dbt reads either the previous version whole or the new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.spark import new_version, register_version
from relanalytics_pipeline.warehouse import connect, q

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The ingest's record of the rows reloads removed, which dbt's incremental models read.
REMOVED_ROWS = "ingest.removed_rows"
# Tables dbt reads that later steps write in Spark (the privacy exclusions, the similar-deals
# neighbours): handed over empty from DuckDB only where Spark has none yet, so dbt finds them.
READ_BY_DBT = (
    "privacy.excluded_activities",
    "privacy.excluded_people",
    "learn.won_deal_neighbours",
)
# Written beside a table's versions while it is being written: never a version of its own.
_PARTIAL = ".partial-"


def select_for_spark(connection, table: str) -> str:
    """The table's columns as Parquet gives them to Spark with the same types: timestamps (UTC,
    without zone in DuckDB) as instants, which Spark reads as its TIMESTAMP in the session's UTC
    zone (a zone-less Parquet timestamp would read as TIMESTAMP_NTZ)."""
    schema, name = table.split(".")
    columns = connection.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return ", ".join(
        f"CAST({q(column)} AS TIMESTAMPTZ) AS {q(column)}" if kind == "TIMESTAMP" else q(column)
        for column, kind in columns
    )


def hand_over(
    settings: Settings, session: SparkSession, tables: Iterable[str], if_missing: Iterable[str] = ()
) -> dict[str, int]:
    """Copy the DuckDB warehouse's `tables` (`schema.table`) into the Spark warehouse, and the
    tables `if_missing` only where Spark has none yet (tables a later step writes in Spark).
    Returns the rows handed over per table."""
    wanted = list(tables) + [t for t in if_missing if not session.catalog.tableExists(t)]
    versions: dict[str, Path] = {}
    rows: dict[str, int] = {}
    with connect(settings.warehouse, read_only=True) as connection:
        for table in wanted:
            version = new_version(settings, table)
            partial = version.with_name(f"{_PARTIAL}{version.name}")
            partial.mkdir(parents=True, exist_ok=True)
            select = select_for_spark(connection, table)
            (count,) = connection.execute(
                f"COPY (SELECT {select} FROM {table}) TO ? (FORMAT parquet, COMPRESSION zstd)",
                [str(partial / "part-00000.parquet")],
            ).fetchone()
            partial.rename(version)
            versions[table], rows[table] = version, count
    for table, location in versions.items():
        register_version(session, table, location)
    return rows
