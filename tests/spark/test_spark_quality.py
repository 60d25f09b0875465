"""The Python steps on Spark: the session's one-JVM rule, the ingest's hand-off to Spark and the
great-expectations suites on Spark DataFrames, against their pandas outcomes.

Spark really runs (local, one JVM for the module: its session is reused by the code under test,
which leaves a running session of the same warehouse running).
"""

import datetime as dt
from functools import partial

import dagster as dg
import pandas as pd
import pytest
from conftest import query, write_hand_made_landing
from support.quality_cases import (
    SUITES,
    activities_csv,
    check_evaluations,
    hold_the_hand_made_ingest_checks,
    hold_the_second_run,
    ingest_two_runs,
)

from relanalytics_pipeline.defs.ingest.load import ingest_entity
from relanalytics_pipeline.defs.ingest.to_spark import hand_over
from relanalytics_pipeline.defs.quality import suites as quality
from relanalytics_pipeline.defs.quality.checks import SUITE_CHECK
from relanalytics_pipeline.defs.quality.suites import Build, spark_condition, validate
from relanalytics_pipeline.defs.run_settings import RunSettings
from relanalytics_pipeline.settings import Settings

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark


def spark_settings(home, **more) -> Settings:
    environ = {
        "RELANALYTICS_HOME": str(home),
        "RELANALYTICS_ENGINE": "spark",
        # The tests' data is small and the machine shared.
        "RELANALYTICS_SPARK_DRIVER_MEMORY": "1g",
        "RELANALYTICS_AS_OF": "2026-03-31",
    }
    return Settings.from_env(environ | more)


def test_a_session_ends_with_its_jvm(tmp_path):
    """Embedded Derby admits one JVM: after the block, the JVM is gone and another session (dbt's,
    the next step's) opens the same metastore and sees what the first one wrote."""
    from pyspark import SparkContext

    from relanalytics_pipeline.spark import spark_session

    settings = spark_settings(tmp_path)
    with spark_session(settings) as session:
        process = SparkContext._gateway.proc
        session.sql("CREATE DATABASE crm")
    assert process.poll() is not None  # the JVM has exited
    assert SparkContext._gateway is None and SparkContext._active_spark_context is None
    with spark_session(settings) as session:
        databases = {row[0] for row in session.sql("SHOW DATABASES").collect()}
    assert databases == {"crm", "default"}
    assert (tmp_path / "spark-metastore").is_dir() and (tmp_path / "spark-warehouse").is_dir()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("spark-home")


@pytest.fixture(scope="module")
def spark(home):
    from relanalytics_pipeline.spark import spark_session

    with spark_session(spark_settings(home)) as session:
        yield session


def test_a_session_of_another_warehouse_is_refused(spark, tmp_path):
    from relanalytics_pipeline.spark import spark_session

    with pytest.raises(RuntimeError, match="over another warehouse"):
        with spark_session(spark_settings(tmp_path)):
            pass


def test_the_hand_off_gives_spark_the_ingested_rows_with_their_types(spark, home, tmp_path):
    settings = spark_settings(home, RELANALYTICS_WAREHOUSE=str(tmp_path / "w.duckdb"))
    landing = tmp_path / "landing"
    activities_csv(landing / "activities" / "1.csv", [
        "e1,email,completed,2026-03-01T10:00:00Z,,,2026-03-01T10:00:00Z",
        "m1,appointment,open,,2026-04-02T10:00:00+02:00,2026-04-02T11:00:00Z,2026-03-02T10:00:00Z",
        "bad,email,completed,2026-03-01T10:00:00Z,,,",  # no modified_at: quarantined
    ])  # fmt: skip
    report = ingest_entity(settings.warehouse, landing, "activities", run_id="run-1")
    assert report.total("rows_loaded") == 2 and report.total("rows_quarantined") == 1
    handed = hand_over(settings, spark, ["crm.activities", "ingest.removed_rows"])
    assert handed == {"crm.activities": 2, "ingest.removed_rows": 0}
    types = dict(spark.table("crm.activities").dtypes)
    # DuckDB's TIMESTAMP (UTC, without a zone) is Spark's TIMESTAMP in the session's UTC.
    assert (types["modified_at"], types["scheduled_start"], types["_row_number"]) == (
        "timestamp", "timestamp", "bigint"
    )  # fmt: skip
    rows = spark.sql(
        "SELECT activity_id, CAST(scheduled_start AS STRING), _source_file, _row_number "
        "FROM crm.activities ORDER BY activity_id"
    ).collect()
    # 10:00 at +02:00 is 08:00 UTC.
    assert [tuple(r) for r in rows] == [
        ("e1", None, "activities/1.csv", 1),
        ("m1", "2026-04-02 08:00:00", "activities/1.csv", 2),
    ]
    # A second hand-off replaces the table whole; the older version's files are gone.
    activities_csv(landing / "activities" / "2.csv", ["t1,task,completed,2026-03-03T09:00:00Z,,,2026-03-03T10:00:00Z"])  # fmt: skip
    ingest_entity(settings.warehouse, landing, "activities", run_id="run-2")
    assert hand_over(settings, spark, ["crm.activities"]) == {"crm.activities": 3}
    assert spark.table("crm.activities").count() == 3
    from relanalytics_pipeline.spark import table_folder

    assert len(list(table_folder(settings, "crm.activities").iterdir())) == 1
    # A table a later step writes in Spark is handed over only while Spark has none.
    spark.sql("CREATE DATABASE IF NOT EXISTS learn")
    spark.sql("CREATE TABLE learn.won_deal_neighbours (opportunity_id STRING) USING parquet")
    spark.sql("INSERT INTO learn.won_deal_neighbours VALUES ('o1')")
    assert hand_over(settings, spark, [], ["learn.won_deal_neighbours"]) == {}
    assert spark.table("learn.won_deal_neighbours").count() == 1


def test_conditions_read_the_same_in_spark_sql():
    assert spark_condition('status=="completed" and scheduled_start.isna()') == (
        'status=="completed" and scheduled_start IS NULL'
    )
    assert spark_condition("regarding_type.notna()") == "regarding_type IS NOT NULL"
    assert spark_condition("has_enough_history") == "has_enough_history"


def _activity(activity_id: str, status: str, occurred: str | None, start: str | None = None,
              end: str | None = None, regarding: tuple | None = None) -> dict:  # fmt: skip
    time = dt.datetime.fromisoformat
    return {
        "activity_id": activity_id, "status": status,
        "occurred_at": occurred and time(occurred), "scheduled_start": start and time(start),
        "scheduled_end": end and time(end), "created_at": time("2026-03-01T08:00:00"),
        "modified_at": time("2026-03-01T09:00:00"),
        "regarding_type": regarding and regarding[0], "regarding_id": regarding and regarding[1],
        "_source_file": "activities/1.csv", "_row_number": int(activity_id[1:]),
    }  # fmt: skip


def test_a_suite_gives_the_same_outcome_on_pandas_and_spark(spark):
    """The same suite on the same rows, its row conditions included: the same verdict, counts
    and offending rows, passing and failing."""
    suite = SUITES["crm.activities"]
    rows = [
        _activity("a1", "completed", "2026-03-01T10:00:00", regarding=("account", "x1")),
        _activity("a2", "open", None, "2026-04-02T10:00:00", "2026-04-02T11:00:00"),
        # Completed without a time or a schedule; open yet happened; ends before it starts;
        # regarding a type without a record.
        _activity("a3", "completed", None),
        _activity("a4", "open", "2026-03-01T10:00:00"),
        _activity(
            "a5", "completed", "2026-03-01T10:00:00", "2026-03-01T10:00:00", "2026-03-01T09:00:00"
        ),  # fmt: skip
        _activity("a6", "completed", "2026-03-01T10:00:00", regarding=("account", None)),
    ]
    schema = (
        "activity_id string, status string, occurred_at timestamp_ntz, "
        "scheduled_start timestamp_ntz, scheduled_end timestamp_ntz, created_at timestamp_ntz, "
        "modified_at timestamp_ntz, regarding_type string, regarding_id string, "
        "_source_file string, _row_number bigint"
    )
    for count, passes in ((2, True), (6, False)):
        frame = pd.DataFrame(rows[:count])
        on_pandas = validate({suite: frame})[suite.name]
        on_spark = validate({suite: spark.createDataFrame(rows[:count], schema)})[suite.name]
        assert (on_spark.passed, on_spark.rows) == (on_pandas.passed, on_pandas.rows)
        assert on_spark.passed is passes
        assert on_spark.expectations == on_pandas.expectations == len(suite.spec["expectations"])
        assert [(f.expectation, f.unexpected_count) for f in on_spark.failures] == [
            (f.expectation, f.unexpected_count) for f in on_pandas.failures
        ]
        assert [f.sample for f in on_spark.failures] == [f.sample for f in on_pandas.failures]
    failed = [(f.expectation.split("(")[0], [r["activity_id"] for r in f.sample])
              for f in on_spark.failures]  # fmt: skip
    assert failed == [
        ("expect_column_values_to_not_be_null", ["a3"]),
        ("expect_column_values_to_be_null", ["a4"]),
        ("expect_column_pair_values_a_to_be_greater_than_b", ["a5"]),
        ("expect_column_values_to_not_be_null", ["a6"]),
    ]


def test_an_ingest_suite_on_spark_sees_the_rows_of_its_run(spark, home, tmp_path, monkeypatch):
    """tests/pipeline/test_quality.py's ingest case, with the rows handed over to Spark."""
    settings = spark_settings(home, RELANALYTICS_WAREHOUSE=str(tmp_path / "w.duckdb"))
    ingest_two_runs(settings.warehouse, tmp_path / "landing")
    hand_over(settings, spark, ["crm.activities"])
    outcome = hold_the_second_run(partial(quality.validate_new_rows_spark, spark), monkeypatch)
    # The sample keeps the rows' times as they landed (UTC).
    failed = {f.expectation.split("(")[0]: f for f in outcome.failures}
    (row,) = failed["expect_column_values_to_be_null"].sample
    assert row["occurred_at"] == "2026-03-03T09:00:00.000"


def test_a_history_records_its_validated_build_in_spark(spark):
    suite = SUITES["marts.relationship_health_history"]
    spark.sql("CREATE DATABASE IF NOT EXISTS intermediate")
    spark.sql(
        f"CREATE TABLE {suite.writes} (record_type STRING, record_id STRING, written_from DATE, "
        "build_id STRING, previous_build_id STRING) USING parquet"
    )
    spark.sql(f"INSERT INTO {suite.writes} VALUES ('account', 'a1', DATE'2026-03-31', 'b2', 'b1')")
    assert quality.latest_build_spark(spark, suite) == Build("b2", False)
    quality.record_validated_spark(spark, suite, Build("b1", False))
    assert quality.latest_build_spark(spark, suite) == Build("b2", True)
    quality.record_validated_spark(spark, suite, Build("b2", True))  # replaces b1's row
    assert spark.sql("SELECT mart, build_id FROM quality.validated_builds").collect() == [
        ("relationship_health_history", "b2")
    ]
    # What the check reads: the newest 15 days, or of those only what the latest build wrote.
    spark.sql("CREATE DATABASE IF NOT EXISTS marts")
    spark.sql(
        "CREATE TABLE marts.relationship_health_history (record_type STRING, record_id STRING, "
        "as_of_date DATE, health_score DOUBLE, health_status STRING, has_enough_history BOOLEAN, "
        "signal_recency DOUBLE, days_since_two_way INT, weighted_touches DOUBLE, "
        "customer_response_rate DOUBLE, customer_initiated_share DOUBLE, "
        "team_response_hours DOUBLE, customer_response_hours DOUBLE, customer_people INT) "
        "USING parquet"
    )
    spark.sql(
        "INSERT INTO marts.relationship_health_history (record_type, record_id, as_of_date) "
        "VALUES ('account', 'a1', DATE'2026-03-16'), ('account', 'a1', DATE'2026-03-17'), "
        "('account', 'a1', DATE'2026-03-31'), ('account', 'a2', DATE'2026-03-31')"
    )

    def read(build):
        frame = quality.read_mart_spark(spark, suite, build)
        assert frame.columns == [*suite.key, *suite.columns]
        return sorted((r.record_id, r.as_of_date.isoformat()) for r in frame.collect())

    # 2026-03-16 is 15 days before the newest day: out.
    assert read(None) == [("a1", "2026-03-17"), ("a1", "2026-03-31"), ("a2", "2026-03-31")]
    assert read(Build("b2", True)) == [("a1", "2026-03-31")]


def test_ingest_checks_run_on_spark_in_a_dagster_run(spark, home, tmp_path, monkeypatch):
    """crm_landing with the Spark engine: the tables reach Spark and its checks run there with
    the DuckDB engine's outcomes (tests/pipeline/test_quality.py)."""
    from relanalytics_pipeline.defs.ingest.assets import crm_landing

    landing = write_hand_made_landing(tmp_path / "landing")
    warehouse = tmp_path / "w.duckdb"
    for name, value in spark_settings(home).as_environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RELANALYTICS_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("RELANALYTICS_LANDING_DIR", str(landing))
    monkeypatch.setenv("RELANALYTICS_MAX_ACTIVITY_AGE_HOURS", "1")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [crm_landing],
            resources={"settings": RunSettings()},
            instance=instance,
            partition_key="2026-03-31",
        )
    hold_the_hand_made_ingest_checks(check_evaluations(result))
    for table in ("crm.activities", "crm.activity_parties", "crm.opportunities"):
        in_duckdb = query(warehouse, f"SELECT count(*) FROM {table}")[0][0]
        assert spark.table(table).count() == in_duckdb > 0
    newest = spark.sql("SELECT CAST(MAX(modified_at) AS STRING) FROM crm.activities").first()[0]
    assert newest == str(dt.datetime(2026, 4, 1, 0, 30))
    for table in ("privacy.excluded_people", "learn.won_deal_neighbours", "ingest.removed_rows"):
        assert spark.catalog.tableExists(table)


def test_a_failing_mart_check_on_spark_blocks_what_follows_in_a_dagster_run(
    spark, home, monkeypatch
):
    """The marts' check, on Spark's mart: a broken mart fails its blocking check and what reads
    the mart does not run; the clean mart lets it run."""
    from relanalytics_pipeline.defs.quality.checks import _marts_check

    suite = SUITES["marts.account_connections"]
    check = _marts_check("marts_great_expectations", [suite])
    mart = dg.AssetKey(["marts", "account_connections"])

    @dg.asset(deps=[mart])
    def reads_the_mart() -> None:
        return None

    for name, value in spark_settings(home).as_environ().items():
        monkeypatch.setenv(name, value)
    spark.sql("CREATE DATABASE IF NOT EXISTS marts")
    outcomes = {}
    for rows in (
        "('a1', 'u1', 1, 3), ('a1', 'u2', 2, 1)",
        "('a1', 'u1', 1, 3), ('a1', 'u2', 0, 1)",
    ):
        spark.sql("DROP TABLE IF EXISTS marts.account_connections")
        spark.sql(
            "CREATE TABLE marts.account_connections (account_id STRING, user_id STRING, "
            "rank INT, contacts_known BIGINT) USING parquet"
        )
        spark.sql(f"INSERT INTO marts.account_connections VALUES {rows}")
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize(
                [dg.AssetSpec(mart), check, reads_the_mart],
                resources={"settings": RunSettings()},
                instance=instance,
                selection=dg.AssetSelection.checks(dg.AssetCheckKey(mart, SUITE_CHECK))
                | dg.AssetSelection.assets(reads_the_mart),
                raise_on_error=False,
            )
        (evaluation,) = result.get_asset_check_evaluations()
        ran = [m.asset_key for m in result.get_asset_materialization_events()]
        outcomes[rows] = (evaluation.passed, evaluation.metadata["rows_validated"].value, ran)
    clean, broken = outcomes.values()
    assert clean == (True, 2, [reads_the_mart.key])
    # The second row's rank 0: the check fails, and blocks the asset downstream of the mart.
    assert broken == (False, 2, [])
