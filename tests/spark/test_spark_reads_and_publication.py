"""The model, the reports and the publication with the Spark engine, against the same steps on
DuckDB: the same tables (handed over from a DuckDB warehouse, as the ingest does) give the same
neighbours, report figures and published marts.

Spark really runs (local, one JVM for the module, reused by the code under test).
"""

import datetime as dt
import json

import dagster as dg
import duckdb
import pytest
from support.deals import deal, frame

from relanalytics_pipeline.defs.ingest.to_spark import hand_over
from relanalytics_pipeline.defs.learn import similar_deals
from relanalytics_pipeline.defs.reports.health_diagnostic import closed_deal_health
from relanalytics_pipeline.defs.reports.warning_outcomes import WarningOutcome, warning_outcomes
from relanalytics_pipeline.defs.serve import publish
from relanalytics_pipeline.settings import Settings

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark

AS_OF = dt.date(2026, 3, 31)


def settings_of(home, engine: str) -> Settings:
    return Settings.from_env(
        {
            "RELANALYTICS_HOME": str(home),
            "RELANALYTICS_ENGINE": engine,
            "RELANALYTICS_SPARK_DRIVER_MEMORY": "1g",
            "RELANALYTICS_AS_OF": AS_OF.isoformat(),
        }
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("spark-home")


@pytest.fixture(scope="module")
def spark(home):
    from relanalytics_pipeline.spark import spark_session

    with spark_session(settings_of(home, "spark")) as session:
        yield session


def duckdb_tables(settings: Settings, *statements: str) -> None:
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse)) as connection:
        for statement in statements:
            connection.execute(statement)


def test_the_model_writes_the_same_neighbours_on_both_engines(spark, home, monkeypatch):
    from relanalytics_pipeline.definitions import defs
    from relanalytics_pipeline.defs.learn.assets import NEIGHBOURS_CHECK, similar_deals_assets

    settings = settings_of(home, "spark")
    deals = frame(
        deal("o1", "open"),
        deal("o2", "open", estimated_value=400_000.0, product="Cloud"),
        deal("w1", "won", 60_000.0),
        deal("w2", "won", 380_000.0, estimated_value=390_000.0, product="Cloud"),
        deal("w3", "won", 9_000.0, estimated_value=10_000.0, account_country="FR"),
        deal("l1", "lost"),
    )
    with duckdb.connect(str(settings.warehouse)) as connection:
        connection.execute("CREATE SCHEMA intermediate")
        connection.register("deals", deals.astype({"actual_value": float}))
        connection.execute(f"CREATE TABLE {similar_deals.FEATURES_TABLE} AS SELECT * FROM deals")
    hand_over(settings, spark, [similar_deals.FEATURES_TABLE])
    neighbours = {}
    for engine in ("duckdb", "spark"):
        for name, value in settings_of(home, engine).as_environ().items():
            monkeypatch.setenv(name, value)
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize(
                [similar_deals_assets], resources=defs.resources, instance=instance
            )
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks[NEIGHBOURS_CHECK] is True
        if engine == "duckdb":
            with duckdb.connect(str(settings.warehouse), read_only=True) as connection:
                rows = connection.execute(
                    f"SELECT * FROM {similar_deals.NEIGHBOURS_TABLE}"
                ).fetchall()
        else:
            rows = [tuple(r) for r in spark.table(similar_deals.NEIGHBOURS_TABLE).collect()]
        neighbours[engine] = sorted(rows, key=lambda row: (row[0], row[2]))
    # Two open deals, three won deals each: the same six rows, ranks and similarities.
    assert len(neighbours["spark"]) == 6
    assert [(r[0], r[2]) for r in neighbours["spark"]] == [
        (o, rank) for o in ("o1", "o2") for rank in (1, 2, 3)
    ]
    assert neighbours["spark"] == neighbours["duckdb"]
    # Nearest first: o1 is w1's twin but for the value; o2 is w2's.
    assert [r[1] for r in neighbours["spark"] if r[2] == 1] == ["w1", "w2"]
    assert dict(spark.table(similar_deals.NEIGHBOURS_TABLE).dtypes)["rank"] == "int"


def test_the_reports_read_the_same_figures_from_both_engines(spark, home):
    from relanalytics_pipeline.spark import SparkConnection

    settings = settings_of(home, "spark")
    duckdb_tables(
        settings,
        "CREATE SCHEMA IF NOT EXISTS intermediate",
        "CREATE SCHEMA IF NOT EXISTS staging",
        "CREATE SCHEMA IF NOT EXISTS marts",
        """CREATE OR REPLACE TABLE intermediate.int_closed_deal_warnings AS SELECT * FROM (VALUES
            ('o1', 'stalled', true, true, DATE '2026-03-31', DATE '2026-03-01'),
            ('o1', 'no_contact', false, true, DATE '2026-03-31', DATE '2026-03-01'),
            ('o2', 'stalled', true, false, DATE '2026-03-20', DATE '2026-02-18'),
            ('o2', 'no_contact', true, false, DATE '2026-03-20', DATE '2026-02-18')
        ) AS t(opportunity_id, warning, is_held, is_won, actual_close_date, warning_day)""",
        """CREATE OR REPLACE TABLE staging.stg_crm__opportunities AS SELECT * FROM (VALUES
            ('o1', 'won', DATE '2026-03-31'), ('o2', 'lost', DATE '2026-03-20'),
            ('o3', 'open', NULL)
        ) AS t(opportunity_id, opportunity_status, actual_close_date)""",
        """CREATE OR REPLACE TABLE marts.relationship_health_history AS SELECT * FROM (VALUES
            ('opportunity', 'o1', DATE '2026-03-01', 71.5, 'Healthy'),
            ('opportunity', 'o1', DATE '2026-03-02', 10.0, 'At risk'),
            ('opportunity', 'o2', DATE '2026-02-18', 35.25, 'At risk')
        ) AS t(record_type, record_id, as_of_date, health_score, health_status)""",
    )
    hand_over(
        settings,
        spark,
        [
            "intermediate.int_closed_deal_warnings",
            "staging.stg_crm__opportunities",
            "marts.relationship_health_history",
        ],
    )
    on_spark = SparkConnection(spark, settings)
    with duckdb.connect(str(settings.warehouse), read_only=True) as connection:
        outcomes = warning_outcomes(connection)
        health = closed_deal_health(connection, 30)
    assert warning_outcomes(on_spark) == outcomes
    # Worked out by hand: o1 won, o2 lost, both 30 days after their warning day.
    assert outcomes.days_before_close == 30 and outcomes.deals_in_history == 2
    assert outcomes.outcomes == [
        WarningOutcome("no_contact", 1, 0, 1, 1),
        WarningOutcome("stalled", 2, 1, 0, 0),
    ]
    health_on_spark = closed_deal_health(on_spark, 30)
    assert health_on_spark.to_dict("records") == health.to_dict("records")
    assert [tuple(r) for r in health_on_spark.itertuples(index=False)] == [
        ("o1", True, True, 71.5, "Healthy"),
        ("o2", False, True, 35.25, "At risk"),
    ]


def test_the_publication_from_spark_holds_the_marts_as_duckdbs_does(spark, home, tmp_path):
    """Marts in Spark (handed over from a DuckDB warehouse) published through the snapshot: the
    published file and Parquet hold the DuckDB warehouse's rows and types, with the descriptions
    Spark holds."""
    from relanalytics_pipeline.defs.serve.publish.from_spark import snapshot

    settings = settings_of(home, "spark")
    duckdb_tables(
        settings,
        "CREATE SCHEMA IF NOT EXISTS marts",
        """CREATE OR REPLACE TABLE marts.deals AS SELECT * FROM (VALUES
            (1::BIGINT, 1234.50::DECIMAL(18, 2), DATE '2026-03-31',
             TIMESTAMP '2026-03-31 23:59:59.123456', true, 'plain', ['a', 'b'], 1 / 3),
            (2, -0.01, DATE '1900-01-01', TIMESTAMP '2026-01-01 00:00:00', false,
             'quote '' comma , newline' || chr(10) || 'end', ['x "y"', NULL, ''], NULL),
            (3, NULL, NULL, NULL, NULL, '', [], 'inf'::DOUBLE)
        ) AS t(deal_id, amount, close_date, seen_at, won, note, tags, score)""",
        "CREATE OR REPLACE TABLE marts.people AS SELECT range::INTEGER AS person_id FROM range(3)",
    )
    hand_over(settings, spark, ["marts.deals", "marts.people"])
    spark.sql("COMMENT ON TABLE marts.deals IS 'One row per deal.'")
    spark.sql(
        "ALTER TABLE marts.deals ALTER COLUMN amount COMMENT 'Value in the deal''s currency.'"
    )
    database = snapshot(spark, ["marts.deals", "marts.people", "marts.absent"], tmp_path / "s")
    folder = tmp_path / "published"
    publication = publish.publish(database, ["deals", "people"], folder, "run-1", AS_OF)
    assert publication.rows == {"deals": 3, "people": 3}
    query = "SELECT * FROM {} ORDER BY 1"
    with duckdb.connect(str(settings.warehouse), read_only=True) as source:
        expected = {
            m: source.execute(query.format(f"marts.{m}")).fetchall() for m in ("deals", "people")
        }
        types = source.execute("DESCRIBE marts.deals").fetchall()
    with duckdb.connect(str(folder / publish.DUCKDB_FILE), read_only=True) as published:
        assert {
            m: published.execute(query.format(f"marts.{m}")).fetchall() for m in expected
        } == expected
        assert published.execute("DESCRIBE marts.deals").fetchall() == types
        comments = published.execute(
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'deals' "
            "AND comment IS NOT NULL"
        ).fetchall()
        (table_comment,) = published.execute(
            "SELECT comment FROM duckdb_tables() WHERE table_name = 'deals'"
        ).fetchone()
    assert comments == [("amount", "Value in the deal's currency.")]
    assert table_comment == "One row per deal."
    current = folder / "parquet" / "current"
    with duckdb.connect() as reader:
        parquet = reader.execute(
            query.format("read_parquet(?)"), [str(current / "deals" / "*.parquet")]
        ).fetchall()
    assert parquet == expected["deals"]
    assert json.loads((current / "_publication.json").read_text())["rows"] == {
        "deals": 3,
        "people": 3,
    }
