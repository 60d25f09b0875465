"""Publication with the Spark engine: the marts leave Spark once, as Parquet, into a DuckDB
snapshot, from which the publication writes every target as it does from the DuckDB warehouse
(the DuckDB file for BI readers, Parquet behind the atomic pointer, PostgreSQL): the same files,
types and record on both engines.

Spark writes the Parquet on all its cores; timestamps leave as UTC wall time (TIMESTAMP_NTZ),
which DuckDB reads as its TIMESTAMP, the marts' type in the BI contract. The descriptions dbt
gave the marts' tables and columns in Spark travel with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from relanalytics_pipeline.spark import wall_time
from relanalytics_pipeline.warehouse import connect, q

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SNAPSHOT_FILE = "snapshot.duckdb"


def snapshot(session: SparkSession, tables: list[str], folder: Path) -> Path:
    """A DuckDB file in the empty or new `folder` holding Spark's `tables` (`schema.table`, those
    that exist), with their descriptions; the Parquet they went through stays in `folder`."""
    exported = {}
    for table in tables:
        if session.catalog.tableExists(table):
            exported[table] = folder / "parquet" / table
            wall_time(session.table(table)).write.parquet(str(exported[table]))
    database = folder / SNAPSHOT_FILE
    with connect(database) as connection:
        for table, parquet in exported.items():
            schema, name = (q(part) for part in table.split("."))
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            connection.execute(
                f"CREATE TABLE {schema}.{name} AS FROM read_parquet(?)",
                [str(parquet / "*.parquet")],
            )
            _copy_descriptions(session, connection, table)
    return database


def _copy_descriptions(session: SparkSession, connection, table: str) -> None:
    schema, name = (q(part) for part in table.split("."))
    comments = [(f"TABLE {schema}.{name}", session.catalog.getTable(table).description)]
    comments += [
        (f"COLUMN {schema}.{name}.{q(column.name)}", column.description)
        for column in session.catalog.listColumns(table)
    ]
    for target, comment in comments:
        if comment:
            # COMMENT ON takes no parameter: the text as a quoted literal.
            literal = "'" + comment.replace("'", "''") + "'"
            connection.execute(f"COMMENT ON {target} IS {literal}")
