"""`relanalytics data-docs` with the Spark engine: the pages validate the Spark warehouse's
tables (Spark DataFrames through great-expectations' Spark datasource), as the DuckDB engine's
validate DuckDB's, and load nothing from the network.

The Spark warehouse is made as a run makes it: the hand-made dataset ingested by DuckDB and
handed over; one mart, account_connections, written in Spark with a rank of 0 (its suite says
ranks start at 1), so that its page shows a failure only Spark's rows hold.
"""

import pytest
from conftest import write_hand_made_landing
from support.data_docs import loads
from support.spark_engine import SPARK_TEST

from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.ingest.to_spark import hand_over
from relanalytics_pipeline.raw_contract import ENTITIES
from relanalytics_pipeline.settings import PROJECT_ROOT, Settings

pytestmark = SPARK_TEST

SUITES = sorted((PROJECT_ROOT / "expectations").rglob("*.json"))
# The crm suites (activities, leads, opportunities): each entity's latest load is validated.
CRM_SUITES = sorted(p.stem for p in (PROJECT_ROOT / "expectations" / "crm").glob("*.json"))


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    from relanalytics_pipeline.cli.main import main
    from relanalytics_pipeline.spark import spark_session

    home = tmp_path_factory.mktemp("spark-docs")
    landing = write_hand_made_landing(home / "landing")
    environ = {
        "RELANALYTICS_HOME": str(home),
        "RELANALYTICS_ENGINE": "spark",
        "RELANALYTICS_SPARK_DRIVER_MEMORY": "1g",
    }
    settings = Settings.from_env(environ)
    for entity in ENTITIES:
        ingest_entity(settings.warehouse, landing, entity, run_id="run-1")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        patch.delenv("RELANALYTICS_WAREHOUSE", raising=False)
        with spark_session(settings) as session:
            hand_over(settings, session, [f"crm.{entity}" for entity in ENTITIES])
            session.sql("CREATE DATABASE marts")
            session.sql(
                "CREATE TABLE marts.account_connections (account_id STRING, user_id STRING, "
                "rank INT, contacts_known BIGINT) USING parquet"
            )
            session.sql(
                "INSERT INTO marts.account_connections VALUES ('a1', 'u1', 1, 3), ('a1', 'u2', 0, 1)"
            )
            assert main(["data-docs", "--out", str(home / "docs")]) == 0
    return home / "docs"


def validation_pages(docs) -> dict[str, str]:
    """Each validation page's text, by the name of the suite it validated against (GE files a
    page under `validations/<layer>/<table>/`)."""
    pages = {}
    for page in (docs / "validations").rglob("*.html"):
        layer, table = page.relative_to(docs / "validations").parts[:2]
        pages[f"{layer}.{table}"] = page.read_text(encoding="utf-8")
    return pages


def test_every_page_loads_only_files_of_the_docs_folder(docs):
    pages = sorted(docs.rglob("*.html"))
    # The index, a page per suite, a validation per crm suite and one for the mart.
    assert len(pages) == 1 + len(SUITES) + len(CRM_SUITES) + 1
    for page in pages:
        found = loads(page)
        assert [u for u in found.urls if "://" in u or u.startswith("//")] == [], page
        assert [u for u in found.urls if not (page.parent / u).is_file()] == [], page
        assert found.cross_origin == [], page


def test_the_pages_show_the_suites_results_on_sparks_rows(docs):
    pages = validation_pages(docs)
    # Validated on Spark: against the suites' Spark copies.
    assert sorted(pages) == sorted(
        [f"crm.{name} (spark)" for name in CRM_SUITES] + ["marts.account_connections (spark)"]
    )
    mart = pages["marts.account_connections (spark)"]
    # One of the two rows has rank 0: rank's expectation fails on 1 row, contacts_known's holds.
    assert "Failed" in mart and "1 unexpected values found. 50% of 2 total rows." in mart
    for name in CRM_SUITES:
        assert "Succeeded" in pages[f"crm.{name} (spark)"]
