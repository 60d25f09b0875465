"""Local Spark for the Python steps, when RELANALYTICS_ENGINE=spark: one session at a time.

The session is built from the settings exactly as dbt's `spark` target builds its own (the same
warehouse folder, Hive metastore, time zone, scratch folder and driver memory), so that both see
the same tables. The metastore is an embedded Derby database, which one JVM at a time may open:
a step's session ends with its JVM (`spark_session` shuts the gateway's Java process down), so that
dbt, started afterwards in a process of its own, can open it; and dbt's JVM is gone when its
process ends. On a cluster (Databricks, EMR, Dataproc) the Python steps take the platform's
session, which the platform starts before them: `spark_session` then uses it and leaves it running.

pyspark is an optional extra (`pip install -e '.[spark]'`), imported only inside the functions.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pandas as pd

from relanalytics_pipeline.settings import Settings
from relanalytics_pipeline.warehouse import connect

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The folders a Spark JVM makes in spark.local.dir: its block manager's (shuffle and spill files)
# and its temporary one.
SPARK_SCRATCH_PREFIXES = ("blockmgr-", "spark-")
# The Spark JVM's own output goes to this file in the scratch folder rather than the run's log.
DERBY_LOG = "derby.log"


def spark_conf(settings: Settings) -> dict[str, str]:
    """The configuration of a local session over the settings' warehouse and metastore."""
    metastore = settings.spark_metastore
    return {
        "spark.master": "local[*]",
        "spark.app.name": "relanalytics",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(settings.effective_spark_warehouse),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={metastore};create=true"
        ),
        # Timestamps without an offset are UTC (raw contract), as in DuckDB.
        "spark.sql.session.timeZone": "UTC",
        "spark.local.dir": str(settings.spark_scratch),
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.driver.extraJavaOptions": (
            f"-Dderby.stream.error.file={settings.spark_scratch / DERBY_LOG}"
        ),
        # No web UI (a port per session, nobody to look at it in a step), no progress bars in
        # the run's log.
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


@contextmanager
def spark_session(settings: Settings) -> Iterator[SparkSession]:
    """A Spark session over the settings' warehouse, for the block.

    A session already running in this process (the platform's on a cluster, a test's) is used
    and left running, if it is over the same warehouse. Otherwise a local one starts, and ends
    with its JVM when the block ends (raising or not): the metastore is free for dbt after it.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:
        session = SparkSession.builder.getOrCreate()
        _check_same_warehouse(session, settings)
        yield session
        return
    for folder in (settings.effective_spark_warehouse, settings.spark_scratch):
        folder.mkdir(parents=True, exist_ok=True)
    # A JVM removes its scratch folders (shuffle and spill files) as it stops: those there before
    # this session's JVM starts are of JVMs killed before they could. (The folder holds others'
    # too: the publication's snapshot, Derby's log.)
    killed_scratch = [
        folder
        for folder in settings.spark_scratch.iterdir()
        if folder.is_dir() and folder.name.startswith(SPARK_SCRATCH_PREFIXES)
    ]
    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    session = builder.enableHiveSupport().getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        # Alone on the metastore (one JVM at a time; remove_leftovers' first call to it fails
        # while another JVM holds it): nothing else writes or spills while leftovers go.
        if removed := remove_leftovers(session, settings):
            logger.info("removed %d leftover folder(s) from the Spark warehouse", len(removed))
        for folder in killed_scratch:
            shutil.rmtree(folder, ignore_errors=True)
        if killed_scratch:
            logger.info("removed %d scratch folder(s) of killed JVMs", len(killed_scratch))
        yield session
    finally:
        stop_with_jvm(session)


def clear_killed_writes(settings: Settings) -> None:
    """Before dbt's own session: a local session whose start removes what writes killed with
    their JVM left (remove_leftovers), ended with its JVM before dbt starts. A platform's session
    (on a cluster) is left as it is."""
    with spark_session(settings):
        pass


def _check_same_warehouse(session: SparkSession, settings: Settings) -> None:
    """A local session (its metastore an embedded Derby) must be over the settings' warehouse;
    a platform's session keeps the platform's own."""
    metastore = session.conf.get("spark.hadoop.javax.jdo.option.ConnectionURL", None) or ""
    if not metastore.startswith("jdbc:derby:"):
        return
    running = session.conf.get("spark.sql.warehouse.dir", None) or ""
    ours = settings.effective_spark_warehouse
    if Path(re.sub(r"^file:", "", running)).resolve() != ours:
        raise RuntimeError(
            f"A Spark session over another warehouse ({running}) is running in this process; "
            f"the pipeline's is {ours}: stop that session first."
        )


def stop_with_jvm(session: SparkSession) -> None:
    """Stop the session and end its JVM, so that the next session (dbt's, a later step's) can
    open the embedded metastore. pyspark's own `stop` leaves the JVM running."""
    from pyspark import SparkContext

    session.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    process = getattr(gateway, "proc", None)
    gateway.shutdown()
    if process is not None:
        # The gateway's JVM exits when its standard input closes.
        process.stdin.close()
        process.wait()
    SparkContext._gateway = None
    SparkContext._jvm = None


def quote(identifier: str) -> str:
    """An identifier quoted for Spark SQL, whatever characters it holds."""
    return "`" + identifier.replace("`", "``") + "`"


def table_folder(settings: Settings, table: str) -> Path:
    """Where the versions of a table the pipeline writes (`schema.table`) lie."""
    schema, name = table.split(".")
    return settings.effective_spark_warehouse / f"{schema}.db" / name


def new_version(settings: Settings, table: str) -> Path:
    """A fresh folder for a new version of `table`'s files (see register_version)."""
    return table_folder(settings, table) / uuid.uuid4().hex


def register_version(session: SparkSession, table: str, location: Path) -> None:
    """Point `table` at the Parquet folder `location` (one of its versions) and remove the older
    versions' files. A reader sees the previous version or this one, whole."""
    schema, name = table.split(".")
    session.sql(f"CREATE DATABASE IF NOT EXISTS {quote(schema)}")
    # External tables (they have a location): dropping one keeps its files.
    session.sql(f"DROP TABLE IF EXISTS {quote(schema)}.{quote(name)}")
    session.catalog.createTable(table, path=str(location), source="parquet")
    for older in location.parent.iterdir():
        if older != location:
            shutil.rmtree(older, ignore_errors=True)


# Relations dbt-spark makes beside a model while it builds it (a view of the new rows, the old
# table kept aside): a build killed half-way leaves them registered.
DBT_SCRATCH_SUFFIXES = ("__dbt_tmp", "__dbt_backup")


def remove_leftovers(session: SparkSession, settings: Settings) -> list[Path]:
    """Remove from the warehouse folder what no table reads, and return it: dbt's scratch
    relations of killed builds, table folders the metastore does not know (Spark writes a table's
    files before the metastore names it, and drops the name before the files: a folder left so
    makes the next CREATE TABLE of that name fail, LOCATION_ALREADY_EXISTS), and a hand-off's
    versions other than its table's current one. Only while no other step writes or reads Spark's
    tables: every table keeps the files it reads, so a rerun finds what it needs."""
    locations = set()
    for database in session.catalog.listDatabases():
        # One metastore call per database, where DESCRIBE would make one per table.
        schema = quote(database.name)
        for table in session.sql(f"SHOW TABLE EXTENDED IN {schema} LIKE '*'").collect():
            if table.isTemporary:
                continue
            facts = dict(
                line.split(": ", 1) for line in table.information.splitlines() if ": " in line
            )
            if table.tableName.endswith(DBT_SCRATCH_SUFFIXES):
                kind = "VIEW" if facts.get("Type") == "VIEW" else "TABLE"
                session.sql(f"DROP {kind} IF EXISTS {schema}.{quote(table.tableName)}")
            elif "Location" in facts and (path := local_path(facts["Location"])):
                locations.add(path)
    removed = []
    for database_folder in settings.effective_spark_warehouse.resolve().glob("*.db"):
        for folder in database_folder.iterdir():
            if folder in locations:
                continue
            if folder.is_dir() and any(folder in where.parents for where in locations):
                removed += [v for v in folder.iterdir() if v not in locations]  # older versions
            else:
                removed.append(folder)
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


def local_path(location: str) -> Path | None:
    """A table's location (`file:/a%20b/t`, as the metastore gives it) as a path of this machine;
    None for a location elsewhere (a cluster's storage)."""
    parts = urlsplit(location)
    if parts.scheme not in ("", "file"):
        return None
    return Path(unquote(parts.path)).resolve()


def wall_time(frame):
    """The Spark DataFrame with its timestamps as UTC wall time (TIMESTAMP_NTZ), as DuckDB's
    TIMESTAMP: pyspark would hand instants to Python in the machine's local time, and Parquet
    would carry them as instants."""
    from pyspark.sql.types import TimestampType

    return frame.select(
        *(
            frame[f.name].cast("timestamp_ntz").alias(f.name)
            if isinstance(f.dataType, TimestampType)
            else frame[f.name]
            for f in frame.schema.fields
        )
    )


class SparkConnection:
    """The calls the Python steps make of a DuckDB connection (`execute(sql, params)`, then
    `df()`, `fetchall()` or `fetchone()`), answered by a Spark session: their SQL, written for
    both engines, runs unchanged. Frames come as DuckDB's: decimals as floats, dates and
    timestamps (UTC wall time) as datetime64."""

    def __init__(self, session: SparkSession, settings: Settings):
        self.session = session
        self.settings = settings

    def execute(self, sql: str, params: list | None = None) -> SparkResult:
        return SparkResult(self.session.sql(sql, args=params or None))

    def replace_table(self, table: str, rows: pd.DataFrame, schema: str) -> None:
        """Replace `table` with `rows` (Spark's DDL `schema`), as a new version of its files."""
        location = new_version(self.settings, table)
        self.session.createDataFrame(rows, schema).write.parquet(str(location))
        register_version(self.session, table, location)


class SparkResult:
    def __init__(self, frame):
        self.frame = wall_time(frame)

    def df(self) -> pd.DataFrame:
        from pyspark.sql.types import DateType, DecimalType

        fields = self.frame.schema.fields
        frame = self.frame.select(
            *(
                self.frame[f.name].cast("double").alias(f.name)
                if isinstance(f.dataType, DecimalType)
                else self.frame[f.name]
                for f in fields
            )
        ).toPandas()
        for f in fields:
            if isinstance(f.dataType, DateType):
                frame[f.name] = pd.to_datetime(frame[f.name])
        return frame

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.frame.collect()]

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self.frame.first()
        return None if row is None else tuple(row)


@contextmanager
def step_session(settings: Settings) -> Iterator[SparkSession | None]:
    """With the Spark engine, a session held for a whole step, which its warehouse_connection
    blocks use (one JVM start per step); with DuckDB, nothing (each block opens the file)."""
    if settings.engine != "spark":
        yield None
        return
    with spark_session(settings) as session:
        yield session


@contextmanager
def warehouse_connection(settings: Settings, read_only: bool = False) -> Iterator[Any]:
    """The warehouse of the settings' engine, for the block: a DuckDB connection, or a
    SparkConnection over the step's session (one the step holds already, else a new one)."""
    if settings.engine != "spark":
        with connect(settings.warehouse, read_only=read_only) as connection:
            yield connection
        return
    with spark_session(settings) as session:
        yield SparkConnection(session, settings)
