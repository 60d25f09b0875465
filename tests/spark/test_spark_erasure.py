"""Erasing a person with the Spark engine reaches everything Spark holds, and a night's run on
Spark leaves a bounded warehouse folder (docs/privacy.md, README "On Apache Spark").

tests/pipeline/test_erasure.py's case on Spark: Dan Engineer (contact c2, dan@globex.example) of
the hand-made dataset, with a corrected version of his contact in the quarantine. After a night
on Spark, two leftovers are planted as a killed run leaves them: an older version of the
hand-off of `crm.contacts` (a copy of the current one, Dan in it) and the folder of a table dbt
was writing (a copy of `marts.record_contacts`), which no table of the metastore reads. Then
`relanalytics erase --contact-id c2`, whose rebuild is a second run on Spark. Afterwards no file
under RELANALYTICS_HOME (the Spark warehouse folder included) holds his name, his address or his
contact's id, everyone else's marts are as they were, and the warehouse folder holds the same
table folders as after the first night, each hand-off table one version.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import write_hand_made_landing
from support.person_search import files_holding
from support.runs import environment, materialize_with_the_cli
from support.spark_engine import SPARK_TEST

from relanalytics_pipeline.cli.instance import ensure_dagster_home
from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.ingest.to_spark import REMOVED_ROWS, hand_over
from relanalytics_pipeline.defs.privacy import erasure as erasing
from relanalytics_pipeline.defs.serve import publish
from relanalytics_pipeline.raw_contract import ENTITIES
from relanalytics_pipeline.settings import PROJECT_ROOT, Settings

pytestmark = SPARK_TEST

NAME, ADDRESS, CONTACT_ID = "Dan Engineer", "dan@globex.example", "c2"
NEEDLES = (NAME.lower(), ADDRESS)
# Marts with a row per record (and its contacts): Dan's rows go, everyone else's stay.
MARTS_BY_RECORD = ("relationship_kpis", "relationship_health", "relationship_health_history",
                   "record_contacts", "record_colleagues", "record_summary")  # fmt: skip
# The tables the pipeline hands over to Spark as versions (defs/ingest/to_spark.py), and the
# neighbours the model writes the same way.
HANDED_OVER = "crm.db/", "ingest.db/", "privacy.db/", "learn.db/"


def search(home: Path) -> set[tuple[str, str]]:
    """(file, needle) for every file under `home` holding the name or the address, or Dan's
    contact id as a whole value of a Parquet or DuckDB table."""
    return files_holding(home, NEEDLES, whole=(CONTACT_ID,))


def published_marts(home: Path) -> dict[str, set[tuple]]:
    """The record-level marts of the published DuckDB file (Spark's marts, published), without
    Dan's rows: his record's and his rows among a record's contacts."""
    marts = {}
    with duckdb.connect(str(home / "published" / publish.DUCKDB_FILE), read_only=True) as file:
        for mart in MARTS_BY_RECORD:
            cursor = file.execute(f"SELECT * FROM marts.{mart}")
            columns = [d[0] for d in cursor.description]
            rows = {tuple(r) for r in cursor.fetchall()}
            kind, record = columns.index("record_type"), columns.index("record_id")
            contact = columns.index("contact_id") if "contact_id" in columns else None
            marts[mart] = {
                r for r in rows
                if (r[kind], r[record]) != ("contact", CONTACT_ID)
                and (contact is None or r[contact] != CONTACT_ID)
            }  # fmt: skip
            marts[f"{mart}: rows"] = len(rows)
    return marts


def table_folders(warehouse: Path) -> dict[str, int]:
    """Each table folder of the Spark warehouse (`schema.db/table`), with its number of version
    folders for the tables handed over as versions."""
    return {
        folder.relative_to(warehouse).as_posix(): sum(1 for p in folder.iterdir() if p.is_dir())
        for folder in sorted(warehouse.glob("*.db/*"))
    }


def plant_leftovers(warehouse: Path) -> list[Path]:
    """What a killed run leaves: a hand-off version that never became the table's (a copy of
    `crm.contacts`' current one), and the folder of a table dbt was writing (`record_contacts`'
    files, under a name the metastore does not know)."""
    (current,) = (warehouse / "crm.db" / "contacts").iterdir()
    version = current.with_name("0" * 32)
    shutil.copytree(current, version)
    writing = warehouse / "marts.db" / "record_contacts__dbt_tmp"
    shutil.copytree(warehouse / "marts.db" / "record_contacts", writing)
    return [version, writing]


@pytest.fixture(scope="module")
def erasure(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("spark-erasure")
    landing = write_hand_made_landing(tmp_path / "landing")
    (landing / "contacts" / "corrections.csv").write_text(
        f"contact_id,account_id,full_name,email,modified_at\nc2,a1,{NAME},{ADDRESS},last tuesday\n"
    )
    environ = environment(tmp_path, landing) | {
        "DAGSTER_HOME": str(ensure_dagster_home(tmp_path / "home" / "dagster")),
        "RELANALYTICS_ENGINE": "spark",
        "RELANALYTICS_SPARK_DRIVER_MEMORY": "1g",
    }
    home = tmp_path / "home"
    warehouse = home / "spark-warehouse"
    materialize_with_the_cli(environ)
    night = {"hits": search(home), "folders": table_folders(warehouse)}
    planted = plant_leftovers(warehouse)
    before = {"marts": published_marts(home), "hits": search(home)}
    command = [str(Path(sys.executable).with_name("relanalytics")), "erase", "--contact-id", "c2"]
    result = subprocess.run(command, env=environ, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    after = {"marts": published_marts(home), "hits": search(home),
             "folders": table_folders(warehouse)}  # fmt: skip
    return {"night": night, "planted": planted, "before": before, "after": after}


def test_the_search_finds_dan_in_sparks_tables_and_the_leftovers_before_the_erasure(erasure):
    hits = {where for where, _ in erasure["before"]["hits"]}
    spark = {where.split("/")[1] + "/" + where.split("/")[2]
             for where in hits if where.startswith("spark-warehouse/")}  # fmt: skip
    # The handed-over raw tables, dbt's tables, and both leftovers.
    assert {"crm.db/contacts", "crm.db/activity_parties", "marts.db/record_contacts",
            "marts.db/record_contacts__dbt_tmp"} <= spark, spark  # fmt: skip
    version = erasure["planted"][0].name
    assert any(f"crm.db/contacts/{version}/" in where for where in hits)
    assert any(where.startswith("published/parquet/versions/") for where in hits)


def test_after_the_erasure_dan_is_nowhere(erasure):
    assert erasure["after"]["hits"] == set()


def test_everyone_else_keeps_their_marts(erasure):
    before, after = erasure["before"]["marts"], erasure["after"]["marts"]
    for mart in MARTS_BY_RECORD:
        assert after[mart] == before[mart], mart
        assert after[f"{mart}: rows"] == len(after[mart])  # none of Dan's left
    # Dan had rows (his record's, his among a1's and o1's contacts).
    assert sum(before[f"{m}: rows"] - len(before[m]) for m in MARTS_BY_RECORD) > 0


def test_the_warehouse_folder_stays_as_a_night_left_it(erasure):
    night, after = erasure["night"]["folders"], erasure["after"]["folders"]
    assert all(not p.exists() for p in erasure["planted"])
    assert after.keys() == night.keys()
    # A hand-off table is one version; dbt's tables are their files (no version folders).
    assert {f: n for f, n in after.items() if f.startswith(HANDED_OVER)} == {
        f: 1 for f in after if f.startswith(HANDED_OVER)
    }
    assert {f: n for f, n in after.items() if not f.startswith(HANDED_OVER)} == {
        f: 0 for f in after if not f.startswith(HANDED_OVER)
    }


def test_finishing_an_erasure_replaces_sparks_copy_of_the_removed_rows_log(tmp_path):
    """The erasure logs Dan's contact in `ingest.removed_rows` for dbt, the rebuilding run hands
    that log to Spark, and the erasure's last part takes his id out of it: out of Spark's copy
    too. The activities' ids (e2, m1: his two parties) stay, as on DuckDB."""
    from relanalytics_pipeline.spark import spark_session

    settings = Settings.from_env(
        {
            "RELANALYTICS_HOME": str(tmp_path),
            "RELANALYTICS_ENGINE": "spark",
            "RELANALYTICS_SPARK_DRIVER_MEMORY": "1g",
        }
    )
    landing = write_hand_made_landing(tmp_path / "landing")
    for entity in ENTITIES:
        ingest_entity(settings.warehouse, landing, entity, run_id="run-1")
    erased = erasing.erase_from_warehouse(
        settings, [erasing.hash_for(settings, "contact:c2")], ["c2"]
    )
    query = f"SELECT entity, record_id FROM {REMOVED_ROWS} ORDER BY 1, 2"
    with spark_session(settings) as session:
        hand_over(settings, session, [REMOVED_ROWS])  # as the rebuilding run's ingest does
        logged = [tuple(r) for r in session.sql(query).collect()]
        erasing.finish_erasure(settings, erased, time.time())
        kept = [tuple(r) for r in session.sql(query).collect()]
    assert logged == [("activity_parties", "e2"), ("activity_parties", "m1"), ("contacts", "c2")]
    assert kept == [("activity_parties", "e2"), ("activity_parties", "m1")]
