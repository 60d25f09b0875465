"""Local Spark for the Spark layer: a DuckDB warehouse's input tables handed to Spark by the
pipeline's own hand-off, dbt run on Spark in a process of its own, and Spark's marts read back
through the publication's snapshot.

The hand-off (to_spark.hand_over) copies each table DuckDB holds in the schemas dbt reads as
sources (`crm`, `privacy`, `ingest`, `learn`) into the Spark warehouse dbt's `spark` target opens,
in a session of the pipeline's (relanalytics_pipeline.spark), which ends with its JVM: the
embedded Derby metastore admits one JVM at a time, and dbt's runs in a process of its own.
"""

import datetime as dt
import math
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pytest
from conftest import project_free_environ

from relanalytics_pipeline.defs.ingest.to_spark import hand_over
from relanalytics_pipeline.defs.serve.publish.from_spark import snapshot
from relanalytics_pipeline.settings import DBT_PROJECT_DIR, Settings
from relanalytics_pipeline.spark import spark_session

# The schemas of the tables dbt reads but does not build (its sources and removed_rows).
INPUT_SCHEMAS = ("crm", "privacy", "ingest", "learn")
# The tests' data is small: the driver needs little memory (the machine is shared).
SPARK_SETTINGS = {"RELANALYTICS_SPARK_DRIVER_MEMORY": "1g"}


def spark_environ(home: Path, **settings: str) -> dict[str, str]:
    """The environment of a Spark step over the local warehouse of `home`, none of this shell's."""
    return project_free_environ(
        RELANALYTICS_HOME=str(home),
        RELANALYTICS_SPARK_WAREHOUSE=str(home / "spark-warehouse"),
        **SPARK_SETTINGS,
        **settings,
    )


def spark_settings(home: Path, warehouse: Path | None = None) -> Settings:
    """The pipeline's settings with the Spark engine over the local warehouse of `home` (and the
    DuckDB `warehouse` it hands over from)."""
    duckdb_file = {} if warehouse is None else {"RELANALYTICS_WAREHOUSE": str(warehouse)}
    return Settings.from_env(spark_environ(home, RELANALYTICS_ENGINE="spark", **duckdb_file))


def input_tables(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            f"where table_schema in ({', '.join('?' for _ in INPUT_SCHEMAS)}) "
            "and table_type = 'BASE TABLE' order by 1",
            list(INPUT_SCHEMAS),
        ).fetchall()
    return [name for (name,) in rows]


def hand_off(home: Path, warehouse: Path) -> None:
    """Every input table of the DuckDB `warehouse` handed to the Spark warehouse of `home`, as the
    pipeline's steps hand theirs over."""
    settings = spark_settings(home, warehouse)
    with spark_session(settings) as session:
        hand_over(settings, session, input_tables(warehouse))


def spark_marts(home: Path, marts: list[str]) -> dict[str, tuple[list[str], list[tuple]]]:
    """The columns and rows of each of the `marts` of the Spark warehouse of `home`, read from
    the snapshot the publication takes of them (wall-clock timestamps, as DuckDB's)."""
    settings = spark_settings(home)
    with spark_session(settings) as session:
        database = snapshot(
            session, [f"marts.{mart}" for mart in marts], home / f"snapshot-{uuid.uuid4().hex}"
        )
    return duckdb_marts(database, marts)


def spark_night(
    home: Path, warehouse: Path, marts: list[str], *dbt_args: str, environ: dict | None = None
) -> dict[str, tuple[list[str], list[tuple]]]:
    """A night on Spark: the input tables of the DuckDB `warehouse` handed over, then
    `dbt <dbt_args> --target spark`; Spark's `marts` after it."""
    hand_off(home, warehouse)
    result = dbt_on_spark(home, *dbt_args, environ=environ)
    assert result.returncode == 0, result.stdout[-6000:]
    return spark_marts(home, marts)


def dbt_on_spark(
    home: Path, command: str, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`dbt <command> --target spark <args>` over the local Spark warehouse of `home`; its target
    folder in `home`."""
    executable = str(Path(sys.executable).with_name("dbt"))
    command_line = [executable, command, "--target", "spark", "--target-path",
                    str(home / "dbt-target"), "--log-path", str(home / "dbt-logs"), *args]  # fmt: skip
    env = spark_environ(home, **(environ or {}))
    return subprocess.run(
        command_line, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True
    )


def spark_missing() -> str | None:
    """Why local Spark cannot run here, or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -e '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java (Spark needs Java 17 or newer)"
    return None


# The marks of a Spark test file (`pytestmark = SPARK_TEST`): selectable with `-m spark`; skipped
# where Spark cannot run, unless RELANALYTICS_REQUIRE_SPARK is set (as CI sets it), then it fails.
SPARK_TEST = [
    pytest.mark.spark,
    pytest.mark.skipif(
        spark_missing() is not None and not os.environ.get("RELANALYTICS_REQUIRE_SPARK"),
        reason=str(spark_missing()),
    ),
]


# Doubles of two engines match to this (they sum in different orders).
TOLERANCE = 1e-9
# The builds whose marts must be the same, for a two-night sequence: each Spark night and
# DuckDB's same night (incremental on night 2), and Spark's night 2 and DuckDB's full refresh.
SAME_MARTS = [
    ("duckdb night 1", "spark night 1"),
    ("duckdb night 2", "spark night 2"),
    ("duckdb full refresh", "spark night 2"),
]


def spark_rows(session, table: str) -> tuple[list[str], list[tuple], dict[str, str]]:
    """A Spark table's columns, rows (timestamps as UTC wall time, as DuckDB gives them) and
    types."""
    types = dict(session.table(table).dtypes)
    columns = list(types)
    select = ", ".join(
        f"CAST(`{c}` AS TIMESTAMP_NTZ)" if types[c] == "timestamp" else f"`{c}`" for c in columns
    )
    rows = [tuple(row) for row in session.sql(f"SELECT {select} FROM {table}").collect()]
    return columns, rows, types


def duckdb_rows(warehouse: Path, table: str) -> tuple[list[str], list[tuple], dict[str, str]]:
    """A DuckDB table's columns, rows and types."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        cursor = connection.execute(f"SELECT * FROM {table}")
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        schema, name = table.split(".")
        types = dict(
            connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [schema, name],
            ).fetchall()
        )
    return columns, rows, types


def duckdb_marts(warehouse: Path, marts: list[str]) -> dict[str, tuple[list[str], list[tuple]]]:
    """The columns and rows of each of the `marts` of a DuckDB warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        return {mart: read_relation(connection, f"marts.{mart}") for mart in marts}


def read_relation(connection, relation: str) -> tuple[list[str], list[tuple]]:
    cursor = connection.execute(f"SELECT * FROM {relation}")
    columns = [description[0] for description in cursor.description]
    return columns, [tuple(utc(value) for value in row) for row in cursor.fetchall()]


def utc(value):
    """A timestamp with a zone as the naive UTC timestamp DuckDB stores."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def sort_key(row: tuple) -> tuple:
    """Rows in a fixed order whatever engine wrote them: nulls first, doubles rounded well beyond
    the tolerance so that two engines' sums of the same values sort alike."""
    return tuple(
        (0, "") if value is None
        else (1, round(value, 6)) if isinstance(value, float)
        else (1, value)
        for value in row
    )  # fmt: skip


def same_value(left, right) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return type(left) is type(right) and left == right


def differences(expected: dict, actual: dict) -> dict[str, str]:
    """Per mart, what differs between two engines' marts (columns, row count or the first
    differing rows); nothing for marts that are the same."""
    found = {}
    for mart, (columns, rows) in expected.items():
        actual_columns, actual_rows = actual[mart]
        if actual_columns != columns:
            found[mart] = f"columns {columns} != {actual_columns}"
            continue
        if len(actual_rows) != len(rows):
            found[mart] = f"{len(rows)} rows != {len(actual_rows)} rows"
            continue
        pairs = zip(sorted(rows, key=sort_key), sorted(actual_rows, key=sort_key), strict=True)
        differing = [
            (left, right) for left, right in pairs
            if not all(same_value(a, b) for a, b in zip(left, right, strict=True))
        ]  # fmt: skip
        if differing:
            found[mart] = f"{len(differing)} rows differ, e.g. {differing[:2]}"
    return found


def mart_names(warehouse: Path) -> list[str]:
    """Every relation dbt built in the schema `marts` of a DuckDB warehouse (tables and views)."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "order by 1"
        ).fetchall()
    return [name for (name,) in rows]
