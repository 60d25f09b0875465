"""A run killed in the middle on Spark, then rerun, gives the marts of an undisturbed run.

The hand-made dataset is ingested into DuckDB and handed over to Spark as the ingest does; the
pipeline's dbt step (Dagster, RELANALYTICS_ENGINE=spark) is then killed with SIGKILL, with its
process group (dbt and its JVM), while Spark writes a table; the rerun of the step is held, mart
by mart, against DuckDB's build of the same raw tables (doubles to 1e-9, as tests/spark compare).
The ingest step is killed alike while it hands its tables over, and its rerun leaves Spark's raw
tables equal to DuckDB's, which dbt reads.
"""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import project_free_environ, write_hand_made_landing
from support.spark_engine import (
    SPARK_TEST,
    differences,
    duckdb_marts,
    duckdb_rows,
    mart_names,
    spark_marts,
    spark_rows,
)
from support.warehouses import HAND_MADE_SETTINGS, dbt, ingest

from relanalytics_pipeline.defs.ingest.to_spark import READ_BY_DBT, REMOVED_ROWS, hand_over
from relanalytics_pipeline.raw_contract import LOAD_ORDER
from relanalytics_pipeline.settings import PROJECT_ROOT, Settings
from relanalytics_pipeline.warehouse import ensure_tables_written_after_dbt

pytestmark = SPARK_TEST

AS_OF = HAND_MADE_SETTINGS["RELANALYTICS_AS_OF"]
# The similar-deals model's output, by hand: the open o1 resembles the won o2.
NEIGHBOURS = "INSERT INTO learn.won_deal_neighbours VALUES ('o1', 'o2', 1, 0.75, 'same account size', 'model')"
# The schemas dbt writes in the Spark warehouse.
DBT_SCHEMAS = ("staging", "intermediate", "marts")
# One of the pipeline's steps on Spark (argv[2]: ingest or dbt) in a Dagster run of its own (the
# in-process executor, as the code location's), without its great-expectations checks
# (test_spark_quality runs them).
_STEP = """
import sys
import dagster as dg
from relanalytics_pipeline.definitions import defs
from relanalytics_pipeline.defs.ingest.assets import crm_landing
from relanalytics_pipeline.defs.transform.assets import relanalytics_dbt

step = {"ingest": crm_landing, "dbt": relanalytics_dbt}[sys.argv[2]]
result = dg.materialize(
    [step], resources=defs.resources, partition_key=sys.argv[1],
    selection=dg.AssetSelection.all().without_checks(),
)
sys.exit(0 if result.success else 1)
"""


def spark_settings(home: Path) -> dict[str, str]:
    return project_free_environ(
        RELANALYTICS_HOME=str(home),
        RELANALYTICS_LANDING_DIR=str(home.parent / "landing"),
        RELANALYTICS_ENGINE="spark",
        RELANALYTICS_SPARK_DRIVER_MEMORY="1g",
        **HAND_MADE_SETTINGS,
    )


def pipeline_step(home: Path, step: str = "dbt") -> subprocess.Popen:
    """The ingest or dbt step over the warehouses of `home` (its landing folder beside it), in a
    process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-c", _STEP, AS_OF, step], env=spark_settings(home), cwd=PROJECT_ROOT,
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finished(step: subprocess.Popen) -> None:
    output, _ = step.communicate(timeout=900)
    assert step.returncode == 0, output[-6000:]


def kill_when(step: subprocess.Popen, happened, what: str):
    """SIGKILL the step's process group (its JVM with it) as soon as `happened()` gives a value,
    polled every 20 ms; that value."""
    started = time.monotonic()
    while not (seen := happened()):
        assert step.poll() is None, f"ended before {what}: " + step.communicate()[0][-4000:]
        assert time.monotonic() - started < 600, f"no {what} in 600 s"
        time.sleep(0.02)
    os.killpg(step.pid, signal.SIGKILL)
    step.wait()
    return seen


def table_being_written(warehouse: Path) -> Path | None:
    """The folder of a table Spark is writing into a dbt schema (its `_temporary` is there)."""
    for schema in DBT_SCHEMAS:
        folder = warehouse / f"{schema}.db"
        if folder.is_dir():
            for table in os.scandir(folder):
                if os.path.isdir(os.path.join(table.path, "_temporary")):
                    return Path(table.path)
    return None


def test_a_session_removes_the_folders_no_table_owns(tmp_path):
    """What a killed write leaves (a table's folder with its files half written, no table of
    that name in the metastore) is gone when the next local session starts, and the table can
    be created again; the folders of tables, managed or handed over, stay."""
    from relanalytics_pipeline.spark import spark_session

    settings = Settings.from_env(spark_settings(tmp_path))
    warehouse = settings.effective_spark_warehouse
    ingest(settings.warehouse, write_hand_made_landing(tmp_path / "landing"), "run-1")
    with spark_session(settings) as session:
        session.sql("CREATE DATABASE marts")
        session.sql("CREATE TABLE marts.kept USING parquet AS SELECT 1 AS a")
        hand_over(settings, session, ["crm.users"])
    killed = warehouse / "marts.db" / "relationship_kpis" / "_temporary" / "0" / "task_0"
    killed.mkdir(parents=True)
    (killed / "part-00000.parquet").write_bytes(b"PAR1 cut short")
    (warehouse / "crm.db" / "accounts" / "0123abcd").mkdir(parents=True)  # a hand-off cut short

    with spark_session(settings) as session:
        session.sql("CREATE TABLE marts.relationship_kpis USING parquet AS SELECT 2 AS b")
        kpis = [tuple(r) for r in session.table("marts.relationship_kpis").collect()]
        kept = [tuple(r) for r in session.table("marts.kept").collect()]
        users = session.table("crm.users").count()
    assert (kpis, kept) == ([(2,)], [(1,)])
    # u1, and u2 once: its row of 2026-03-31 is the same version (a duplicate).
    assert users == 2
    assert sorted(p.name for p in (warehouse / "marts.db").iterdir()) == [
        "kept", "relationship_kpis"
    ]  # fmt: skip
    assert sorted(p.name for p in (warehouse / "crm.db").iterdir()) == ["users"]


@pytest.fixture(scope="module")
def killed_and_rerun(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("spark-killed")
    home = root / "home"
    settings = Settings.from_env(spark_settings(home))
    warehouse = settings.effective_spark_warehouse
    # The raw tables, in DuckDB and handed over to Spark as the ingest does.
    settings.warehouse.parent.mkdir(parents=True)
    ingest(settings.warehouse, write_hand_made_landing(root / "landing"), "run-1")
    with duckdb.connect(str(settings.warehouse)) as connection:
        ensure_tables_written_after_dbt(connection)
        connection.execute(NEIGHBOURS)
    from relanalytics_pipeline.spark import spark_session

    with spark_session(settings) as session:
        hand_over(settings, session, [*(f"crm.{e}" for e in LOAD_ORDER), REMOVED_ROWS],
                  READ_BY_DBT)  # fmt: skip

    writing = kill_when(
        pipeline_step(home), lambda: table_being_written(warehouse), "table of dbt's written"
    )
    left = {
        "table written": writing,
        "its files": sorted(str(p.relative_to(writing)) for p in writing.rglob("*")),
        "metastore": sorted(p.name for p in (home / "spark-metastore").iterdir()),
    }

    finished(pipeline_step(home))

    # DuckDB's build of the same raw tables, undisturbed.
    window_end = dt.date.fromisoformat(AS_OF) + dt.timedelta(days=1)
    vars_ = json.dumps({"window_start": AS_OF, "window_end": window_end.isoformat()})
    result = dbt(settings.warehouse, "run", "--vars", vars_, environ=HAND_MADE_SETTINGS)
    assert result.returncode == 0, result.stdout[-4000:]
    marts = mart_names(settings.warehouse)
    return left | {
        "duckdb": duckdb_marts(settings.warehouse, marts),
        "spark": spark_marts(home, marts),
    }


def test_a_killed_write_leaves_its_table_half_written(killed_and_rerun):
    """What the kill left: the table's folder with Spark's work files and no table of that name
    (so no finished files), and Derby's lock files in the metastore folder."""
    left = killed_and_rerun
    assert left["table written"].parent.name.removesuffix(".db") in DBT_SCHEMAS
    assert "_temporary" in left["its files"] and "_SUCCESS" not in left["its files"]
    assert {"db.lck", "dbex.lck"} <= set(left["metastore"])


def test_the_rerun_gives_the_marts_of_an_undisturbed_build(killed_and_rerun):
    duckdb_built, spark_rerun = killed_and_rerun["duckdb"], killed_and_rerun["spark"]
    assert len(spark_rerun) == 13 and all(rows for _, rows in duckdb_built.values())
    assert differences(duckdb_built, spark_rerun) == {}


def versions(settings: Settings, tables: list[str]) -> dict[str, set[str]]:
    """The version folders (finished or still being written) of each handed-over table."""
    from relanalytics_pipeline.spark import table_folder

    folders = {table: table_folder(settings, table) for table in tables}
    return {t: {p.name for p in f.iterdir()} if f.is_dir() else set() for t, f in folders.items()}


def test_an_ingest_killed_while_it_hands_over_then_rerun_leaves_spark_duckdbs_rows(tmp_path):
    """The second ingest of a CRM (a new account landed) is killed once the hand-off has
    switched some of Spark's tables to their new version and not yet the others; the rerun hands
    every table over again, whole, and leaves one version of each."""
    from relanalytics_pipeline.spark import spark_session

    home, landing = tmp_path / "home", write_hand_made_landing(tmp_path / "landing")
    settings = Settings.from_env(spark_settings(home))
    tables = [*(f"crm.{e}" for e in LOAD_ORDER), REMOVED_ROWS]
    finished(pipeline_step(home, "ingest"))
    first = versions(settings, tables)
    assert all(len(v) == 1 for v in first.values()), first

    (landing / "accounts" / "accounts-2.jsonl").write_text(
        '{"account_id": "a3", "name": "Umbrella", "industry": "Health", "owner_id": "u1", '
        '"modified_at": "2026-03-31T09:00:00Z"}\n'
    )

    def switched_some() -> set[str]:
        now = versions(settings, tables)
        return {t for t in tables if not first[t] <= now[t]}  # its first version removed

    switched = kill_when(pipeline_step(home, "ingest"), switched_some, "table switched")
    left = versions(settings, tables)
    not_switched = {t for t in tables if first[t] <= left[t]}
    assert switched and not_switched, f"the kill came outside the hand-off: {left}"

    finished(pipeline_step(home, "ingest"))
    assert all(len(v) == 1 for v in versions(settings, tables).values())
    with spark_session(settings) as session:
        for table in tables:
            columns, rows, _ = duckdb_rows(settings.warehouse, table)
            spark_columns, in_spark, _ = spark_rows(session, table)
            assert differences({table: (columns, rows)}, {table: (spark_columns, in_spark)}) == {}
        accounts = sorted(
            r[0] for r in session.sql("SELECT account_id FROM crm.accounts").collect()
        )
    assert accounts == ["a1", "a2", "a3"]
