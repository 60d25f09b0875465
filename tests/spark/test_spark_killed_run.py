"""A run killed in the middle on Spark, then rerun, gives the marts of an undisturbed run.

The hand-made dataset is ingested into DuckDB and handed over to Spark as the ingest does; the
pipeline's dbt step (Dagster, RELANALYTICS_ENGINE=spark) is then killed with SIGKILL, with its
process group (dbt and its JVM), while Spark writes a table; the rerun of the step is held, mart
by mart, against DuckDB's build of the same raw tables (doubles to 1e-9, as tests/spark compare).
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
    mart_names,
    spark_marts,
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
# The pipeline's dbt step on Spark in a Dagster run of its own (the in-process executor, as the
# code location's), without the great-expectations checks of the marts (test_spark_quality).
_DBT_STEP = """
import sys
import dagster as dg
from relanalytics_pipeline.definitions import defs
from relanalytics_pipeline.defs.transform.assets import relanalytics_dbt

result = dg.materialize(
    [relanalytics_dbt], resources=defs.resources, partition_key=sys.argv[1],
    selection=dg.AssetSelection.all().without_checks(),
)
sys.exit(0 if result.success else 1)
"""


def spark_settings(home: Path) -> dict[str, str]:
    return project_free_environ(
        RELANALYTICS_HOME=str(home),
        RELANALYTICS_ENGINE="spark",
        RELANALYTICS_SPARK_DRIVER_MEMORY="1g",
        **HAND_MADE_SETTINGS,
    )


def dbt_step(home: Path) -> subprocess.Popen:
    """The dbt step over the warehouses of `home`, in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "-c", _DBT_STEP, AS_OF], env=spark_settings(home), cwd=PROJECT_ROOT,
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


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

    killed = dbt_step(home)
    started = time.monotonic()
    while (writing := table_being_written(warehouse)) is None:
        assert killed.poll() is None, killed.communicate()[0][-4000:]
        assert time.monotonic() - started < 600, "Spark wrote no table of dbt's in 600 s"
        time.sleep(0.02)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    left = {
        "table written": writing,
        "its files": sorted(str(p.relative_to(writing)) for p in writing.rglob("*")),
        "metastore": sorted(p.name for p in (home / "spark-metastore").iterdir()),
    }

    rerun = dbt_step(home)
    output, _ = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, output[-6000:]

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
