"""What killed runs leave in the Spark warehouse folder goes as the next local Spark session starts
(relanalytics_pipeline.spark.remove_leftovers); every table keeps the files it reads.

tests/spark/test_spark_erasure.py runs it over two runs of the whole pipeline; here each kind of
leftover, on one local session.
"""

import shutil

import pandas as pd
import pytest
from support.spark_engine import SPARK_TEST

from relanalytics_pipeline.settings import Settings

pytestmark = SPARK_TEST


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env(
        {
            "RELANALYTICS_HOME": str(tmp_path),
            "RELANALYTICS_ENGINE": "spark",
            "RELANALYTICS_SPARK_DRIVER_MEMORY": "1g",
        }
    )


def test_leftovers_go_and_every_table_keeps_its_files(settings):
    from relanalytics_pipeline.spark import (
        SparkConnection,
        remove_leftovers,
        spark_session,
        table_folder,
    )

    warehouse = settings.effective_spark_warehouse
    with spark_session(settings) as session:
        spark = SparkConnection(session, settings)
        # A table handed over as versions, twice: the first version went with the second.
        for ids in (["c1"], ["c1", "c2"]):
            spark.replace_table(
                "crm.contacts", pd.DataFrame({"contact_id": ids}), "contact_id string"
            )
        (current,) = table_folder(settings, "crm.contacts").iterdir()
        # A version written but never switched to, and one still being written, by killed runs.
        unswitched = current.with_name("0" * 32)
        partial = current.with_name(".partial-" + "1" * 32)
        for version in (unswitched, partial):
            shutil.copytree(current, version)
        # dbt's tables and views, and what a killed build of dbt-spark leaves: its scratch view and
        # the old table it kept aside (registered), and a table's folder whose creation did not
        # finish (files, no table in the metastore).
        session.sql("CREATE DATABASE marts")
        session.sql("CREATE TABLE marts.kpis USING parquet AS SELECT 'a1' AS record_id, 2 AS n")
        session.sql("CREATE VIEW marts.summary AS SELECT record_id FROM marts.kpis")
        session.sql("CREATE VIEW marts.kpis__dbt_tmp AS SELECT * FROM marts.kpis")
        session.sql("CREATE TABLE marts.kpis__dbt_backup USING parquet AS SELECT 1 AS n")
        session.sql("CREATE TABLE marts.history USING parquet AS SELECT 1 AS n")
        orphan = warehouse / "marts.db" / "health"
        orphan.mkdir()
        (orphan / "part-00000.parquet").write_bytes(b"rows of a table never registered")
        assert (warehouse / "marts.db" / "kpis__dbt_backup").is_dir()

        removed = remove_leftovers(session, settings)

        assert sorted(removed) == sorted([unswitched, partial, orphan])
        assert sorted(p.name for p in (warehouse / "marts.db").iterdir()) == ["history", "kpis"]
        assert list(table_folder(settings, "crm.contacts").iterdir()) == [current]
        tables = {t.name for t in session.catalog.listTables("marts")}
        assert tables == {"kpis", "summary", "history"}
        assert sorted(r[0] for r in session.table("crm.contacts").collect()) == ["c1", "c2"]
        assert [tuple(r) for r in session.table("marts.summary").collect()] == [("a1",)]
        assert session.table("marts.history").count() == 1
        # Nothing more to remove: a rerun finds every table as it was.
        assert remove_leftovers(session, settings) == []


def test_the_scratch_of_killed_jvms_goes_and_the_others_stay(settings):
    from relanalytics_pipeline.spark import spark_session

    scratch = settings.spark_scratch
    # What a JVM killed mid-shuffle leaves in spark.local.dir: its block manager's spill files
    # and its temporary folder, which a JVM that stops removes itself.
    killed = [scratch / "blockmgr-0a1b", scratch / "spark-2c3d"]
    for folder in killed:
        (folder / "0d").mkdir(parents=True)
        (folder / "0d" / "shuffle_0_1_0.data").write_bytes(b"spilled rows")
    # The publication's snapshot, which it makes there before its session starts, is not Spark's.
    snapshot = scratch / "publication-run-1"
    snapshot.mkdir()
    with spark_session(settings) as session:
        assert not any(folder.exists() for folder in killed)
        assert snapshot.is_dir()
        # This session's own block manager is there, and it still shuffles into it.
        (own,) = [p for p in scratch.iterdir() if p.name.startswith("blockmgr-")]
        # 0..999 by their remainder of 7: 1000 = 7 × 142 + 6, so remainders 0 to 5 hold 143.
        grouped = session.range(1000).repartition(3).selectExpr("id % 7 AS k").groupBy("k").count()
        assert sorted(r["count"] for r in grouped.collect()) == [142] + [143] * 6
        assert own.is_dir()
    # The JVM removed its own as it stopped.
    assert not own.exists()
