"""Local Spark for the Spark layer: a DuckDB warehouse's input tables handed to Spark as the
pipeline's hand-off does it, and dbt run on Spark in a process of its own.

The hand-off here is deliberately plain: each table DuckDB holds in the schemas dbt reads as
sources (`crm`, `privacy`, `ingest`, `learn`) is copied to Parquet by DuckDB and saved by a
local Spark session as a Parquet table of the same name, into the metastore dbt's `spark` target
opens. Each Spark step is a process of its own: the embedded Derby metastore admits one JVM at
a time, and a process's JVM ends with it.
"""

import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import project_free_environ

from relanalytics_pipeline.defs.ingest.to_spark import select_for_spark
from relanalytics_pipeline.settings import DBT_PROJECT_DIR

# The schemas of the tables dbt reads but does not build (its sources and removed_rows).
INPUT_SCHEMAS = ("crm", "privacy", "ingest", "learn")
# The tests' data is small: the driver needs little memory (the machine is shared).
SPARK_SETTINGS = {"RELANALYTICS_SPARK_DRIVER_MEMORY": "1g"}

# A local session configured as the profile's `spark` target configures dbt's
# (dbt_project/profiles.yml): it writes the tables or views of `export` to Parquet (timestamps as
# instants in UTC), then saves the Parquet files of `save` as tables.
_SPARK_STEP = """
import json, sys
from pyspark.sql import SparkSession

home, warehouse, folder = sys.argv[1:4]
save, export = json.loads(sys.argv[4]), json.loads(sys.argv[5])
session = (
    SparkSession.builder.master("local[1]")
    .config("spark.sql.catalogImplementation", "hive")
    .config("spark.sql.warehouse.dir", warehouse)
    .config("spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={home}/spark-metastore;create=true")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    .config("spark.local.dir", f"{home}/spark-tmp")
    .config("spark.driver.extraJavaOptions", f"-Dderby.stream.error.file={home}/spark-tmp/derby.log")
    .config("spark.ui.enabled", "false")
    .enableHiveSupport()
    .getOrCreate()
)
for name in export:
    session.table(name).coalesce(1).write.mode("overwrite").parquet(f"{folder}/{name}")
for name in save:
    session.sql(f"create database if not exists {name.split('.')[0]}")
    session.read.parquet(f"{folder}/{name}.parquet").write.mode("overwrite").format(
        "parquet"
    ).saveAsTable(name)
session.stop()
"""


def spark_environ(home: Path, **settings: str) -> dict[str, str]:
    """The environment of a Spark step over the local warehouse of `home`, none of this shell's."""
    return project_free_environ(
        RELANALYTICS_HOME=str(home),
        RELANALYTICS_SPARK_WAREHOUSE=str(home / "spark-warehouse"),
        **SPARK_SETTINGS,
        **settings,
    )


def input_tables(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            f"where table_schema in ({', '.join('?' for _ in INPUT_SCHEMAS)}) "
            "and table_type = 'BASE TABLE' order by 1",
            list(INPUT_SCHEMAS),
        ).fetchall()
    return [name for (name,) in rows]


def spark_step(home: Path, folder: Path, save: list[str] = (), export: list[str] = ()) -> None:
    """One local Spark session over the warehouse of `home`: the relations `export` written to
    `<folder>/<name>/`, then the files `<folder>/<name>.parquet` saved as the tables `save`."""
    (home / "spark-tmp").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", _SPARK_STEP, str(home), str(home / "spark-warehouse"),
               str(folder), json.dumps(list(save)), json.dumps(list(export))]  # fmt: skip
    result = subprocess.run(command, env=spark_environ(home), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]


def hand_off_files(warehouse: Path, folder: Path) -> list[str]:
    """Every input table of the DuckDB `warehouse` as `<folder>/<schema>.<table>.parquet`, as the
    pipeline hands them to Spark; the tables' names."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    names = input_tables(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        for name in names:
            connection.execute(
                f"COPY (SELECT {select_for_spark(connection, name)} FROM {name}) TO ? "
                "(FORMAT parquet)",
                [f"{folder / name}.parquet"],
            )
    return names


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


def duckdb_marts(warehouse: Path, marts: list[str]) -> dict[str, tuple[list[str], list[tuple]]]:
    """The columns and rows of each of the `marts` of a DuckDB warehouse."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        return {mart: read_relation(connection, f"marts.{mart}") for mart in marts}


def spark_marts(folder: Path, marts: list[str]) -> dict[str, tuple[list[str], list[tuple]]]:
    """The same of the marts a Spark step exported into `folder`."""
    with duckdb.connect() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        return {
            mart: read_relation(
                connection, f"read_parquet('{folder / ('marts.' + mart)}/*.parquet')"
            )
            for mart in marts
        }


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
