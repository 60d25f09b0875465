"""The bad-input corpus (tests/support/corpus.py) on the Spark engine: the same quarantine, rows
and reasons, and the same row accounting as on DuckDB, and the Spark tables dbt reads hold exactly
the rows DuckDB kept, with their values and types (hostile ones included).

The ingest step (`crm_landing`) runs in Dagster once per engine over the whole corpus: with
RELANALYTICS_ENGINE=duckdb, and with spark, where it loads DuckDB and hands its tables over. One
local Spark session serves the module (the step reuses it).
"""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from conftest import query
from support.corpus import CASES, HUGE, INJECTION, land_corpus
from support.spark_engine import SPARK_TEST, differences, duckdb_rows, spark_rows

from relanalytics_pipeline.defs.run_settings import RunSettings
from relanalytics_pipeline.raw_contract import LOAD_ORDER
from relanalytics_pipeline.settings import Settings

pytestmark = SPARK_TEST

QUARANTINE = (
    "SELECT entity, source_file, row_number, reason, raw_record FROM quarantine.rejected_rows"
)
ACCOUNTING = (
    "SELECT entity, source_file, status, rows_read, rows_loaded, rows_duplicate, "
    "rows_conflicting, rows_quarantined FROM ingest.files"
)
# DuckDB's types of the canonical columns and the Spark types they must arrive as, by hand.
SPARK_TYPE = {"VARCHAR": "string", "TIMESTAMP": "timestamp", "BOOLEAN": "boolean",
              "BIGINT": "bigint", "DOUBLE": "double", "DECIMAL(18,2)": "decimal(18,2)",
              "DATE": "date"}  # fmt: skip


def settings_of(home: Path, landing: Path, engine: str) -> Settings:
    return Settings.from_env(
        {
            "RELANALYTICS_HOME": str(home),
            "RELANALYTICS_LANDING_DIR": str(landing),
            "RELANALYTICS_ENGINE": engine,
            "RELANALYTICS_SPARK_DRIVER_MEMORY": "1g",
            "RELANALYTICS_AS_OF": "2026-03-31",
        }
    )


def ingest_run(settings: Settings) -> dict[str, dict]:
    """The ingest step of a Dagster run with these settings, without its great-expectations
    checks (tests/spark/test_spark_quality.py runs them); each crm asset's metadata."""
    from relanalytics_pipeline.defs.ingest.assets import crm_landing

    with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
        for name, value in settings.as_environ().items():
            patch.setenv(name, value)
        result = dg.materialize(
            [crm_landing],
            selection=dg.AssetSelection.all().without_checks(),
            resources={"settings": RunSettings()},
            instance=instance,
            partition_key="2026-03-31",
        )
    assert result.success
    return {
        event.asset_key.to_user_string(): {
            name: value.value for name, value in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    from relanalytics_pipeline.spark import spark_session

    root = tmp_path_factory.mktemp("spark-corpus")
    land_corpus(root / "landing")
    on = {
        engine: settings_of(root / engine, root / "landing", engine)
        for engine in ("duckdb", "spark")
    }
    runs = {"duckdb": ingest_run(on["duckdb"]), "settings": on}
    with spark_session(on["spark"]) as session:
        runs["spark"] = ingest_run(on["spark"])
        yield runs | {"session": session}


def test_the_quarantine_is_the_same_on_both_engines(corpus):
    on = corpus["settings"]
    quarantined = {e: sorted(query(on[e].warehouse, QUARANTINE), key=str) for e in on}
    assert quarantined["spark"] == quarantined["duckdb"]
    # And it is the corpus's, worked out by hand from each file: the same rows and reasons.
    by_file = {}
    for _, source_file, row_number, reason, _ in quarantined["spark"]:
        by_file.setdefault(source_file, []).append((row_number, reason))
    for case in CASES:
        found = sorted(by_file.pop(case.file, []), key=str)
        if case.counts is None:  # the whole file, one row: its reason names the problem
            ((row_number, reason),) = found
            assert row_number is None and case.reasons[0][1] in reason, case.kind
        else:
            assert found == sorted(case.reasons, key=str), case.kind
    assert by_file == {}


def test_the_row_accounting_is_the_same_on_both_engines(corpus):
    on = corpus["settings"]
    accounting = {e: sorted(query(on[e].warehouse, ACCOUNTING), key=str) for e in on}
    assert accounting["spark"] == accounting["duckdb"]
    counts = {source_file: rest for _, source_file, *rest in accounting["spark"]}
    for case in CASES:
        status, read, loaded, duplicate, _, quarantined = counts[case.file]
        if case.counts is None:
            assert (status, read, loaded, duplicate, quarantined) == ("quarantined", 0, 0, 0, 0)
        else:
            assert (status, (read, loaded, duplicate, quarantined)) == ("loaded", case.counts)
    # What each crm asset reported (counts, unknown columns) is the same too.
    assert set(corpus["spark"]) == {f"crm/{e}" for e in LOAD_ORDER}
    for asset, metadata in corpus["duckdb"].items():
        spark_metadata = corpus["spark"][asset]
        assert {k: spark_metadata[k] for k in metadata if k.startswith(("rows_", "files_"))} == {
            k: v for k, v in metadata.items() if k.startswith(("rows_", "files_"))
        }, asset
        assert spark_metadata.get("unknown_columns") == metadata.get("unknown_columns"), asset


@pytest.mark.parametrize("entity", LOAD_ORDER)
def test_spark_holds_exactly_the_rows_duckdb_kept(corpus, entity):
    """Every column of every row DuckDB kept, with its type; no quarantined row, no other row; and
    every input row of the entity's files is in Spark, a duplicate or in the quarantine."""
    table = f"crm.{entity}"
    columns, rows, duckdb_types = duckdb_rows(corpus["settings"]["spark"].warehouse, table)
    spark_columns, spark_rows_, spark_types = spark_rows(corpus["session"], table)
    assert spark_types == {c: SPARK_TYPE[duckdb_types[c]] for c in columns}
    assert differences({table: (columns, rows)}, {table: (spark_columns, spark_rows_)}) == {}
    ((read, duplicate, quarantined),) = query(
        corpus["settings"]["spark"].warehouse,
        "SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_duplicate), 0), "
        "coalesce(sum(rows_quarantined), 0) FROM ingest.files "
        "WHERE entity = ?",
        [entity],
    )
    assert read == len(spark_rows_) + duplicate + quarantined


def test_hostile_values_reach_spark_intact(corpus):
    """Values of the corpus read back from Spark, expected as written in the files."""
    session = corpus["session"]

    def rows(sql: str, *args) -> list[tuple]:
        return sorted(tuple(r) for r in session.sql(sql, args=list(args) or None).collect())

    subjects = "SELECT activity_id, subject FROM crm.activities WHERE activity_id IN ({})"
    assert rows(subjects.format("'nu1', 'nu2', 'ünï-١', '42', 'bc1'")) == [
        ("42", '{"text": "nested"}'),
        ("bc1", "with CRLF"),
        ("nu1", "a\x00b"),
        ("nu2", "two\nlines"),
        ("ünï-١", "שלום عليكم 🙂 Ünïcödé"),
    ]
    # The 1 MB subject, whole.
    assert rows("SELECT subject = ? FROM crm.activities WHERE activity_id = 'hg1'", HUGE) == [
        (True,)
    ]
    # Ids and a file name full of quotes and SQL are values, compared as such.
    assert rows("SELECT activity_id FROM crm.activities WHERE subject = activity_id") == sorted(
        [(INJECTION,), ('a"b',), ("x;y",), ("SELECT * FROM crm.users",)]
    )
    assert rows("SELECT _source_file FROM crm.activities WHERE activity_id = 'sf1'") == [
        (f"activities/it's{INJECTION}.csv",)
    ]
    assert rows("SELECT role FROM crm.activity_parties WHERE activity_id = ?", INJECTION) == [
        ("from",)
    ]
    # Header names in another case map to the contract's columns; the one full of SQL is not one.
    assert rows("SELECT subject FROM crm.activities WHERE activity_id = 'uc1'") == [("Hi",)]
    assert 'x"); DROP TABLE crm.users; --' not in dict(session.table("crm.users").dtypes)
    # Typed values: offsets normalised to UTC, decimals at two places, whole numbers.
    assert rows(
        "SELECT activity_id, CAST(occurred_at AS TIMESTAMP_NTZ) FROM crm.activities "
        "WHERE activity_id IN ('of1', 'fy3')"
    ) == [("fy3", dt.datetime(2099, 12, 31, 23, 59, 59)), ("of1", dt.datetime(2026, 3, 1, 4, 30))]
    assert rows(
        "SELECT account_id, annual_revenue, employees FROM crm.accounts "
        "WHERE account_id IN ('th4', 'hn6')"
    ) == [("hn6", Decimal("12.50"), 1000), ("th4", Decimal("1234567.50"), 1200)]
    # No row of a quarantined value: each of these ids had only bad rows.
    bad = ["ut1", "ut2", "ut3", "it1", "fy1", "fy2", "en1", "en3", "du1", "du2", "du3", "bd2"]
    placeholders = ", ".join("?" for _ in bad)
    assert rows(f"SELECT activity_id FROM crm.activities WHERE activity_id IN ({placeholders})",
                *bad) == []  # fmt: skip
